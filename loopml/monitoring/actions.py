"""What a monitor does when a check raises an alert: POST to a webhook, log a line, or call a Python function.

Actions are stored with the monitor as JSON (``{"type": "webhook", "url": …}``,
``{"type": "log"}``, ``{"type": "callable", "target": "module.qualname"}``).
A function cannot be stored, so it is kept in a registry of this process,
keyed by monitor name; in another process (``loopml monitor check`` from a
shell) the stored ``module.qualname`` is imported instead, which works for
module-level functions. This is the hook the continuous-training agent, or
any code of yours, uses to react at once; the agent also reads alerts back
from the store, so nothing is lost when no process holds the function.

Actions run after the result and its alerts are stored, so each one sees the
alert's id. An action that fails (a webhook that does not answer, a function
that raises) never fails the check: it is logged on the ``loopml.monitoring``
logger, recorded as a ``monitor.action.failed`` audit event, and returned in
:attr:`MonitorRunResult.actions <loopml.monitoring.monitors.MonitorRunResult.actions>`.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

from loopml.entities.monitoring import Alert
from loopml.errors import InvalidValueError

logger = logging.getLogger("loopml.monitoring")

DEFAULT_TIMEOUT_S = 5.0
LEVELS = ("debug", "info", "warning", "error", "critical")
_registry: dict[str, list[Callable[[Alert], Any]]] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Webhook:
    """POST each alert as JSON to ``url``. A header value ``"env:NAME"`` is read from the environment when sent,
    so a secret never lands in the store."""

    url: str
    timeout: float = DEFAULT_TIMEOUT_S
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": "webhook", "url": self.url, "timeout": self.timeout, "headers": dict(self.headers)}


@dataclass(frozen=True, slots=True)
class Log:
    """Log each alert on the ``loopml.monitoring`` logger (at ``level``, warning by default)."""

    level: str = "warning"

    def to_json(self) -> dict[str, Any]:
        return {"type": "log", "level": self.level}


@dataclass(frozen=True, slots=True)
class Call:
    """Call ``fn(alert)`` for each alert, in this process."""

    fn: Callable[[Alert], Any]

    @property
    def target(self) -> str:
        module = getattr(self.fn, "__module__", None) or "builtins"
        return f"{module}.{getattr(self.fn, '__qualname__', type(self.fn).__qualname__)}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "callable", "target": self.target}


Action: TypeAlias = Webhook | Log | Call


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """How one action went for one alert: ``ok``, and on failure the error text."""

    action: str  # "webhook http://…", "log", "callable pkg.mod.fn"
    alert_id: int
    ok: bool
    error: str | None = None
    status_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "alert_id": self.alert_id, "ok": self.ok, "error": self.error,
                "status_code": self.status_code}  # fmt: skip


def webhook(url: str, *, timeout: float = DEFAULT_TIMEOUT_S, headers: Mapping[str, str] | None = None) -> Webhook:
    """An action that POSTs each alert as JSON to ``url`` (http or https), waiting at most ``timeout`` seconds.

    Example:
        >>> loopml.monitor("churn-drift", "churn", actions=[loopml.webhook("https://hooks.example.com/ml")])  # doctest: +SKIP
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"A webhook URL must start with http:// or https://, got {url!r}.")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise InvalidValueError(f"A webhook timeout must be a number of seconds in (0, 300], got {timeout!r}.")
    headers = dict(headers or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidValueError("Webhook headers must map strings to strings.")
    return Webhook(url, float(timeout), headers)


def log(level: str = "warning") -> Log:
    """An action that logs each alert on the ``loopml.monitoring`` logger."""
    if level not in LEVELS:
        raise InvalidValueError(f"Unknown log level {level!r}; use one of {', '.join(LEVELS)}.")
    return Log(level)


def call(fn: Callable[[Alert], Any]) -> Call:
    """An action that calls ``fn(alert)`` in this process (a bare function in ``actions=[...]`` means the same)."""
    if not callable(fn):
        raise InvalidValueError(f"call() needs a callable, got {fn!r}.")
    return Call(fn)


def as_action(value: Any) -> Action:
    """An action from what a user or the store gives: an action, ``"log"``, a function, or the stored JSON."""
    if isinstance(value, (Webhook, Log, Call)):
        return value
    if value == "log":
        return Log()
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "webhook":
            return webhook(
                cast(str, value.get("url")),  # webhook() checks the URL and refuses anything else, None included
                timeout=value.get("timeout", DEFAULT_TIMEOUT_S),
                headers=value.get("headers"),
            )
        if kind == "log":
            return log(value.get("level", "warning"))
        if kind == "callable" and isinstance(value.get("target"), str):
            return Call(_Unresolved(value["target"]))
        raise InvalidValueError(f"Unknown action {dict(value)!r}; actions are webhook(url), log() and call(fn).")
    if callable(value):
        return Call(value)
    raise InvalidValueError(f"Unknown action {value!r}; use loopml.webhook(url), 'log', or a function.")


def register_callables(monitor: str, actions: Sequence[Action]) -> None:
    """Keep the monitor's functions in this process (replacing any it had), for :func:`run_actions`."""
    functions = [a.fn for a in actions if isinstance(a, Call) and not isinstance(a.fn, _Unresolved)]
    with _lock:
        if functions:
            _registry[monitor] = functions
        else:
            _registry.pop(monitor, None)


def forget_callables(monitor: str) -> None:
    """Drop the monitor's functions from this process (when the monitor is deleted)."""
    with _lock:
        _registry.pop(monitor, None)


def run_actions(monitor: str, stored: Sequence[Mapping[str, Any]], alerts: Sequence[Alert]) -> list[ActionOutcome]:
    """Run every stored action for every alert; failures are logged and returned, never raised."""
    if not alerts or not stored:
        return []
    with _lock:
        registered = list(_registry.get(monitor, ()))
    outcomes: list[ActionOutcome] = []
    for entry in stored:
        action = as_action(entry)
        if isinstance(action, Call):
            target = action.fn.target if isinstance(action.fn, _Unresolved) else action.target
            same = [f for f in registered if Call(f).target == target]
            fn = same[0] if same else action.fn
            if same:
                registered.remove(fn)
            outcomes.extend(_call(fn, target, alert) for alert in alerts)
        elif isinstance(action, Webhook):
            outcomes.extend(_post(action, monitor, alert) for alert in alerts)
        else:
            outcomes.extend(_log(action, alert) for alert in alerts)
    return outcomes


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The JSON a webhook receives for one alert."""
    return {
        "alert_id": alert.alert_id,
        "monitor": alert.monitor,
        "result_id": alert.result_id,
        "time": alert.time,
        "model": alert.model,
        "version": alert.version,
        "kind": alert.kind,
        "message": alert.message,
        "details": dict(alert.details),
    }


# -- running one action --------------------------------------------------------------------------------


class _Unresolved:
    """A stored ``module.qualname`` that no function of this process was registered for: imported on first call."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, alert: Alert) -> Any:
        return _import(self.target)(alert)


def _import(target: str) -> Callable[[Alert], Any]:
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                value = getattr(value, attribute)
        except AttributeError:
            break
        if callable(value):
            found: Callable[[Alert], Any] = value  # the user's function; that it takes an alert is their promise
            return found
        break
    raise LookupError(
        f"{target} is not registered in this process and cannot be imported (a lambda or a local function "
        "only runs in the process that defined the monitor)"
    )


def _call(fn: Callable[[Alert], Any], target: str, alert: Alert) -> ActionOutcome:
    try:
        fn(alert)
    except Exception as exc:  # an action never fails the check
        logger.warning(
            "Monitor %s: action callable %s failed on alert %s: %s", alert.monitor, target, alert.alert_id, exc
        )
        return ActionOutcome(f"callable {target}", alert.alert_id, False, f"{type(exc).__name__}: {exc}")
    return ActionOutcome(f"callable {target}", alert.alert_id, True)


def _post(action: Webhook, monitor: str, alert: Alert) -> ActionOutcome:
    import httpx

    headers = {name: _header_value(value) for name, value in action.headers.items()}
    headers.setdefault("User-Agent", "loopml-monitor")
    name = f"webhook {action.url}"
    try:
        response = httpx.post(action.url, json=alert_payload(alert), headers=headers, timeout=action.timeout)
    except httpx.HTTPError as exc:
        logger.warning("Monitor %s: webhook %s failed on alert %s: %s", monitor, action.url, alert.alert_id, exc)
        return ActionOutcome(name, alert.alert_id, False, f"{type(exc).__name__}: {exc}")
    if response.status_code >= 400:
        logger.warning("Monitor %s: webhook %s answered %s on alert %s", monitor, action.url, response.status_code,
                       alert.alert_id)  # fmt: skip
        return ActionOutcome(name, alert.alert_id, False, f"HTTP {response.status_code}", response.status_code)
    return ActionOutcome(name, alert.alert_id, True, None, response.status_code)


def _header_value(value: str) -> str:
    if value.startswith("env:"):
        return os.environ.get(value[4:], "")
    return value


def _log(action: Log, alert: Alert) -> ActionOutcome:
    level = getattr(logging, action.level.upper())
    version = "" if alert.version is None else f" v{alert.version}"
    logger.log(
        level, "Monitor %s alert on %s%s [%s]: %s", alert.monitor, alert.model, version, alert.kind, alert.message
    )
    return ActionOutcome("log", alert.alert_id, True)
