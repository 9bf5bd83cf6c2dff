"""The contracts for monitors (their results and alerts) and for continuous-training tasks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.entities.monitoring import RESULT_STATUSES, Alert, AlertSpec, LoopTask, Monitor, MonitorResult
from loopml.entities.scale import Lease
from loopml.errors import InvalidValueError

TASK_STATES = ("running", "succeeded", "rejected", "failed")
TRIGGERS = ("alert", "schedule", "manual")


class MonitoringStore(ABC):
    """Monitors are audited when defined or removed; each alert is an audit event with its evidence."""

    @abstractmethod
    def put_monitor(self, name: str, model: str, spec: Mapping[str, Any], *, actor: str) -> Monitor:
        """Create the monitor, or replace the spec of the one with that name."""

    @abstractmethod
    def get_monitor(self, name: str) -> Monitor:
        """MonitorNotFoundError when there is none."""

    @abstractmethod
    def list_monitors(self, model: str | None = None) -> list[Monitor]:
        """Monitors by name."""

    @abstractmethod
    def delete_monitor(self, name: str, *, actor: str) -> None:
        """Remove the monitor; its results and alerts stay."""

    @abstractmethod
    def record_result(
        self,
        monitor: str,
        *,
        model: str,
        version: int | None,
        status: str,
        summary: Mapping[str, Any],
        figures: Mapping[str, Any],
        alerts: Sequence[AlertSpec],
        actor: str,
    ) -> tuple[MonitorResult, list[Alert]]:
        """Store a check's result and its alerts in one transaction (each alert also an audit event)."""

    @abstractmethod
    def record_action_failures(self, monitor: str, failures: Sequence[Mapping[str, Any]], *, actor: str) -> None:
        """Audit each failed alert action of ``monitor`` (webhook down, ...) as ``monitor.action.failed``.

        Each failure is a mapping with at least ``error``; MonitorNotFoundError for an unknown monitor.
        """

    @abstractmethod
    def list_results(
        self, monitor: str, *, since: int | None = None, until: int | None = None, max_results: int = 1000
    ) -> list[MonitorResult]:
        """Results with ``since <= time < until``, the newest ``max_results``, oldest first."""

    @abstractmethod
    def latest_results(self) -> list[MonitorResult]:
        """The newest result of every monitor that has one, by monitor name, without ``figures`` (left empty).

        One query for a list of monitors with their last status, however many monitors there are.
        """

    @abstractmethod
    def list_alerts(
        self, *, monitor: str | None = None, model: str | None = None, after_id: int = 0, max_results: int = 1000
    ) -> list[Alert]:
        """Alerts with an id above ``after_id``, oldest first (a cursor for whoever reacts to them)."""


class LoopStore(ABC):
    """Continuous-training tasks, and each policy's cursor over the alerts it has seen."""

    @abstractmethod
    def start_task(
        self,
        policy: str,
        model: str,
        *,
        trigger: str,
        trigger_ref: str | None,
        actor: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> LoopTask | None:
        """Start a running task, or return None when the policy already has one running (no duplicates).

        Either way the decision is audited: ``loop.task.start``, or ``loop.trigger.skipped``
        with ``evidence`` (what fired) when a task was already in flight.
        """

    @abstractmethod
    def record_canary_verdict(
        self, task_id: int, *, version: int, passed: bool, reason: str, evidence: Mapping[str, Any], actor: str
    ) -> None:
        """Audit a running task's canary verdict on ``version`` as ``loop.canary.pass`` or ``loop.canary.fail``.

        TaskNotFoundError, or TaskEndedError when the task is no longer running.
        """

    @abstractmethod
    def update_task(self, task_id: int, *, stage: str | None = None, details: Mapping[str, Any] | None = None) -> LoopTask:
        """Record progress (stage, merged details) and refresh the heartbeat."""

    @abstractmethod
    def finish_task(
        self, task_id: int, *, state: str, outcome: str, details: Mapping[str, Any] | None, actor: str
    ) -> LoopTask:
        """End a running task (audited as ``loop.task.<state>``); ConflictError if it already ended."""

    @abstractmethod
    def get_task(self, task_id: int) -> LoopTask:
        """TaskNotFoundError when there is none."""

    @abstractmethod
    def list_tasks(
        self, *, policy: str | None = None, state: str | None = None, max_results: int = 100
    ) -> list[LoopTask]:
        """Tasks, newest first."""

    @abstractmethod
    def get_cursor(self, policy: str) -> Mapping[str, int]:
        """The policy's cursors (``alert_id``, ``schedule_ms``, ...); zeros when never set."""

    @abstractmethod
    def set_cursor(self, policy: str, values: Mapping[str, int]) -> None:
        """Merge ``values`` into the policy's cursors."""

    @abstractmethod
    def acquire_lease(self, name: str, holder: str, *, ttl_s: float) -> Lease | None:
        """Take or renew lease ``name`` for ``holder`` until ``ttl_s`` seconds from now; None while another holds it.

        A lease whose expiry has passed goes to the first holder that asks; each new holder gets
        the next epoch, audited as ``loop.leader.elected``. Renewals by the holder keep the epoch.
        """

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Let lease ``name`` go now if ``holder`` holds it (a clean shutdown); nothing otherwise."""

    @abstractmethod
    def get_lease(self, name: str) -> Lease | None:
        """Lease ``name`` as stored (possibly expired), or None when never taken."""


def check_status(status: object) -> str:
    if status not in RESULT_STATUSES:
        raise InvalidValueError(f"Unknown result status {status!r}; use one of {', '.join(RESULT_STATUSES)}.")
    return str(status)


def check_state(state: object, *, ended: bool = False) -> str:
    allowed = TASK_STATES[1:] if ended else TASK_STATES
    if state not in allowed:
        raise InvalidValueError(f"Unknown task state {state!r}; use one of {', '.join(allowed)}.")
    return str(state)


def check_trigger(trigger: object) -> str:
    if trigger not in TRIGGERS:
        raise InvalidValueError(f"Unknown trigger {trigger!r}; use one of {', '.join(TRIGGERS)}.")
    return str(trigger)


def check_spec(spec: object) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidValueError(f"A monitor spec must be a mapping, got {type(spec).__name__}.")
    return spec


def check_cursor(values: Mapping[str, Any]) -> dict[str, int]:
    checked: dict[str, int] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValueError(f"A cursor value must be an integer, got {value!r} for {key!r}.")
        checked[key] = value
    return checked


def check_lease(name: object, holder: object, ttl_s: object = 1.0) -> float:
    """The lease's ttl in seconds once ``name``, ``holder`` and ``ttl_s`` are checked (InvalidValueError naming the bad one)."""
    for what, value, most in (("lease name", name, 128), ("lease holder", holder, 256)):
        if not isinstance(value, str) or not value or len(value) > most or value.strip() != value:
            raise InvalidValueError(f"A {what} must be 1-{most} characters without surrounding spaces, got {value!r}.")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not 0.1 <= ttl_s <= 86_400:
        raise InvalidValueError(f"ttl_s must be a number of seconds from 0.1 to 86400, got {ttl_s!r}.")
    return float(ttl_s)


def check_limit(value: object, most: int = 100_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidValueError(f"max_results must be an integer from 1 to {most}, got {value!r}.")
    return value
