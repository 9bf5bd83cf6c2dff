"""User-defined business metrics: ``@loopml.metric`` functions of (predictions, labels, features) -> number.

A registered metric is named in gates, the canary judge, monitors and
reports like a built-in one. Each carries the sha256 of its source code
(``code_hash``), which every evidence record that used it stores, so a
decision can be traced to the exact function that scored it.

:func:`evaluate_metric` never raises for the metric's own faults: a metric
that raises, or returns something that is not a finite number, gives a
:class:`MetricValue` with ``value=None`` and the traceback, and the gate that
asked for it fails with that traceback as its evidence.

Example:
    >>> @loopml.metric(higher_is_better=True)  # doctest: +SKIP
    ... def expected_revenue(predictions, labels, features):
    ...     return float(((predictions == 1) & (labels == 1)).sum() * 40 - ((predictions == 1) & (labels == 0)).sum() * 5)
"""

from __future__ import annotations

import hashlib
import inspect
import math
import numbers
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, overload

from loopml.errors import InvalidValueError, did_you_mean

Needs = Literal["label", "proba", "value"]
MetricFunction = Callable[[Any, Any, Any], Any]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
#: The built-in metrics of gates and monitors (``loopml.validation.metrics``, ``loopml.monitoring.spec``):
#: a business metric may not take one of their names. A test keeps the list in step.
BUILT_IN_METRICS = frozenset(
    ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier", "mse", "rmse",
     "mae", "r2", "mape")
)  # fmt: skip
_REGISTRY: dict[str, BusinessMetric] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class BusinessMetric:
    """A registered metric: its function, direction, what predictions it takes, and its code hash.

    ``needs``: ``"label"`` (predicted labels), ``"proba"`` (probability of the positive class) or
    ``"value"`` (the model's ``predict`` output, e.g. for regressors).
    """

    name: str
    fn: MetricFunction
    higher_is_better: bool
    needs: Needs
    code_hash: str
    description: str

    def describe(self) -> dict[str, Any]:
        """What evidence records about the metric."""
        return {
            "metric": self.name,
            "code_hash": self.code_hash,
            "higher_is_better": self.higher_is_better,
            "needs": self.needs,
        }


@dataclass(frozen=True)
class MetricValue:
    """The outcome of one evaluation: a finite ``value``, or ``error`` (the traceback or the reason)."""

    metric: BusinessMetric
    value: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {**self.metric.describe(), "value": self.value}
        if self.error is not None:
            found["error"] = self.error
        return found


def code_hash(fn: Callable[..., Any]) -> str:
    """sha256 of the function's source; of its bytecode and constants where the source cannot be read."""
    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr(fn).encode() if code is None else code.co_code + repr(code.co_consts).encode()
    return hashlib.sha256(text).hexdigest()


@overload
def metric(fn: MetricFunction, /) -> BusinessMetric: ...
@overload
def metric(
    fn: None = None, /, *, name: str | None = None, higher_is_better: bool = True, needs: Needs = "label"
) -> Callable[[MetricFunction], BusinessMetric]: ...
def metric(
    fn: MetricFunction | None = None,
    /,
    *,
    name: str | None = None,
    higher_is_better: bool = True,
    needs: Needs = "label",
) -> BusinessMetric | Callable[[MetricFunction], BusinessMetric]:
    """Register ``fn(predictions, labels, features) -> number`` as a business metric (a decorator).

    ``name`` defaults to the function's name; registering a name again replaces it (a notebook
    re-running its cell), and the new code hash says so in every later evidence record.
    """
    if needs not in ("label", "proba", "value"):
        raise InvalidValueError(f"needs must be 'label', 'proba' or 'value', got {needs!r}.")
    if not isinstance(higher_is_better, bool):
        raise InvalidValueError(f"higher_is_better must be True or False, got {higher_is_better!r}.")

    def register(function: MetricFunction) -> BusinessMetric:
        if not callable(function):
            raise InvalidValueError(f"@loopml.metric decorates a function, got {type(function).__name__}.")
        chosen = name or getattr(function, "__name__", "")
        if not isinstance(chosen, str) or not _NAME.match(chosen):
            raise InvalidValueError(
                f"Invalid metric name {chosen!r}: use 1-128 letters, digits, '_', '.' or '-', starting with a letter."
            )
        if chosen in BUILT_IN_METRICS:
            raise InvalidValueError(f"{chosen!r} is a built-in metric; give the business metric another name.")
        found = BusinessMetric(
            chosen, function, higher_is_better, needs, code_hash(function), inspect.getdoc(function) or ""
        )
        with _LOCK:
            _REGISTRY[chosen] = found
        return found

    return register(fn) if fn is not None else register


def get_business_metric(name: str | BusinessMetric) -> BusinessMetric:
    """A registered metric by name; InvalidValueError listing the registered ones."""
    if isinstance(name, BusinessMetric):
        return name
    with _LOCK:
        found = _REGISTRY.get(name) if isinstance(name, str) else None
        known = sorted(_REGISTRY)
    if found is None:
        listed = ", ".join(known) if known else "none yet (decorate a function with @loopml.metric)"
        raise InvalidValueError(f"No business metric {name!r}; registered: {listed}." + did_you_mean(str(name), known))
    return found


def is_business_metric(name: Any) -> bool:
    """Whether ``name`` is a registered business metric (or one itself)."""
    if isinstance(name, BusinessMetric):
        return True
    with _LOCK:
        return isinstance(name, str) and name in _REGISTRY


def registered_metrics() -> list[BusinessMetric]:
    """Every registered business metric, by name."""
    with _LOCK:
        return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def unregister_metric(name: str) -> None:
    """Forget a registered metric (tests and notebooks); unknown names are ignored."""
    with _LOCK:
        _REGISTRY.pop(name, None)


def evaluate_metric(metric: str | BusinessMetric, predictions: Any, labels: Any, features: Any) -> MetricValue:
    """Call the metric; its exception or a non-number becomes ``MetricValue(error=...)``, never a raise."""
    found = get_business_metric(metric)
    try:
        result = found.fn(predictions, labels, features)
    except Exception:  # the user's code: whatever it raises is evidence, not a crash of the gate
        return MetricValue(found, None, traceback.format_exc(limit=20)[-8000:])
    if isinstance(result, bool) or not isinstance(result, numbers.Real) or not math.isfinite(float(result)):
        return MetricValue(
            found, None, f"{found.name} returned {type(result).__name__} {result!r:.200}, not a finite number."
        )
    return MetricValue(found, float(result))
