"""Gates for responsible ML: no group worse off (fairness by segment) and business metrics, as GateResults.

:func:`fairness_gate` scores the challenger (and the champion, when there is
one) per value of a sensitive attribute with fairlearn's definitions
(``loopml.explain.fairness``) and fails when

* in some group the challenger's ``metric`` (TPR by default) is worse than the
  champion's by more than ``tolerance`` ("no group worse off"), or below ``min_group_value``;
* the demographic parity or equalized odds difference exceeds its bound.

A group with fewer than ``min_rows`` rows is reported as "not enough data"
(a skipped check), neither pass nor fail. The sensitive attribute may be a
column of ``X`` that the model does not take (it is dropped before
predicting), or an array given apart (e.g. from the feedback).

:func:`business_metric_gate` scores a ``@loopml.metric`` on both models and
fails when the challenger loses more than ``max_relative_loss`` of the
champion's value (or is below ``min_value``). A metric that raises or returns
a non-number fails the gate with its traceback as the evidence: such a gate
never promotes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from loopml.errors import InvalidValueError, did_you_mean
from loopml.explain.fairness import DEFAULT_MIN_ROWS, GROUP_METRICS, NOT_ENOUGH_DATA, FairnessReport, fairness
from loopml.explain.metrics import BusinessMetric, MetricValue, evaluate_metric, get_business_metric
from loopml.validation.gates import GateCheck, GateResult, _array, _resolve, _Scorer


def _sensitive(X: Any, sensitive: Any, n: int) -> tuple[Any, np.ndarray, str]:
    """(model input, sensitive values, attribute name): a column of X the model does not take is dropped."""
    if isinstance(sensitive, str):
        columns = getattr(X, "columns", None)
        if columns is None or sensitive not in columns:
            listed = [] if columns is None else [str(c) for c in columns]
            raise InvalidValueError(
                f"sensitive={sensitive!r} names no column of X; give the column or an array of one value per row."
                + did_you_mean(sensitive, listed)
            )
        return X, np.asarray(X[sensitive].to_numpy(), dtype=object), sensitive
    values = np.asarray(sensitive.to_numpy() if hasattr(sensitive, "to_numpy") else sensitive, dtype=object)
    if values.shape != (n,):
        raise InvalidValueError(f"sensitive has shape {values.shape}; it needs one value per row of y ({n}).")
    return X, values, str(getattr(sensitive, "name", None) or "sensitive")


def _model_input(model: Any, X: Any, column: str | None) -> Any:
    """X without the sensitive column when the model was not fitted on it."""
    if column is None or not hasattr(X, "columns") or column not in X.columns or isinstance(model, np.ndarray):
        return X
    raw = getattr(model, "raw", model)
    signature = getattr(model, "signature", None)
    names = getattr(raw, "feature_names_in_", None)
    used = signature.input_names if signature is not None else None if names is None else [str(c) for c in names]
    if used is not None and column not in used:
        return X.drop(columns=[column])
    return X


def _labels(model: Any, X: Any, y: np.ndarray, threshold: float, column: str | None) -> tuple[np.ndarray, Any]:
    resolved = _resolve(model)
    scorer = _Scorer(resolved, _model_input(resolved, X, column), y, threshold)
    return scorer.labels(), scorer.positive()


def fairness_gate(
    challenger: Any,
    champion: Any,
    X: Any,
    y: Any,
    sensitive: Any,
    *,
    metric: str = "tpr",
    tolerance: float = 0.05,
    min_group_value: float | None = None,
    max_parity_difference: float | None = None,
    max_equalized_odds_difference: float | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    threshold: float = 0.5,
    gate: str = "fairness",
) -> GateResult:
    """No group worse off: see the module docstring. ``champion`` may be None (absolute bounds only)."""
    if metric not in GROUP_METRICS:
        raise InvalidValueError(
            f"Unknown group metric {metric!r}; use one of {', '.join(GROUP_METRICS)}."
            + did_you_mean(metric, GROUP_METRICS)
        )
    if not (isinstance(tolerance, int | float) and tolerance >= 0):
        raise InvalidValueError(f"tolerance must be a number >= 0, got {tolerance!r}.")
    y_arr = _array(y, "y")
    X, groups, name = _sensitive(X, sensitive, len(y_arr))
    column = sensitive if isinstance(sensitive, str) else None
    new_labels, positive = _labels(challenger, X, y_arr, threshold, column)
    new = fairness(y_arr, new_labels, groups, pos_label=positive, min_rows=min_rows, name=name)
    old: FairnessReport | None = None
    if champion is not None:
        old_labels, _ = _labels(champion, X, y_arr, threshold, column)
        old = fairness(y_arr, old_labels, groups, pos_label=positive, min_rows=min_rows, name=name)
    higher = GROUP_METRICS[metric]
    checks = [_group_check(g.group, metric, higher, new, old, tolerance, min_group_value) for g in new.groups]
    for figure, bound in (
        ("demographic_parity_difference", max_parity_difference),
        ("equalized_odds_difference", max_equalized_odds_difference),
    ):
        if bound is None:
            continue
        value = getattr(new, figure)
        if value is None:
            checks.append(
                GateCheck(figure, True, f"{NOT_ENOUGH_DATA} to compare groups", {"limit": bound}, skipped=True)
            )
        else:
            checks.append(
                GateCheck(figure, value <= bound, f"{value:.4g} (at most {bound:g})", {"value": value, "limit": bound})
            )
    figures: dict[str, Any] = {
        "sensitive": name,
        "metric": metric,
        "tolerance": tolerance,
        "challenger": new.to_dict(),
        "champion": None if old is None else old.to_dict(),
    }
    return GateResult(gate, all(c.passed for c in checks), tuple(checks), figures)


def _group_check(
    group: str,
    metric: str,
    higher: bool,
    new: FairnessReport,
    old: FairnessReport | None,
    tolerance: float,
    floor: float | None,
) -> GateCheck:
    name = f"group {new.sensitive}={group}"
    mine = new.group(group)
    assert mine is not None
    theirs = None if old is None else old.group(group)
    value = mine.value(metric)
    if not mine.enough_data or value is None:
        reason = f"{mine.n} rows < {new.min_rows}" if not mine.enough_data else f"{metric} undefined in this group"
        return GateCheck(
            name, True, f"{NOT_ENOUGH_DATA}: {reason}", {"n": mine.n, "verdict": NOT_ENOUGH_DATA}, skipped=True
        )
    figures: dict[str, Any] = {"n": mine.n, "challenger": value}
    problems = []
    if floor is not None and (value < floor if higher else value > floor):
        problems.append(f"{metric} {value:.4g} {'below' if higher else 'above'} {floor:g}")
    base = None if theirs is None else theirs.value(metric)
    if base is not None:
        delta = (value - base) * (1 if higher else -1)
        figures.update(champion=base, delta=delta)
        if delta < -tolerance:
            problems.append(
                f"{metric} {value:.4g} vs champion {base:.4g}: worse by {-delta:.4g} (tolerance {tolerance:g})"
            )
    if problems:
        return GateCheck(name, False, "; ".join(problems), figures)
    compared = "" if base is None else f" vs champion {base:.4g}"
    return GateCheck(name, True, f"{metric} {value:.4g}{compared} on {mine.n} rows", figures)


# -- business metrics -----------------------------------------------------------------------------


def business_predictions(model: Any, X: Any, y: np.ndarray, needs: str, threshold: float = 0.5) -> np.ndarray:
    """What a business metric takes: predicted labels, the positive class's probability, or ``predict``'s values."""
    scorer = _Scorer(_resolve(model), X, y, threshold)
    if needs == "label":
        return scorer.labels()
    if needs == "proba":
        proba = scorer._output("proba").astype(np.float64)
        return proba[:, -1] if proba.ndim == 2 else proba
    return scorer._output("value")


def score_business_metric(
    metric: str | BusinessMetric, model: Any, X: Any, y: Any, threshold: float = 0.5
) -> MetricValue:
    """The metric on ``model``'s predictions for ``X`` against ``y`` (never raises for the metric's own faults)."""
    found = get_business_metric(metric)
    y_arr = _array(y, "y")
    predictions = business_predictions(model, X, y_arr, found.needs, threshold)
    return evaluate_metric(found, predictions, y_arr, X)


def business_metric_gate(
    metric: str | BusinessMetric,
    challenger: Any,
    champion: Any,
    X: Any,
    y: Any,
    *,
    max_relative_loss: float = 0.01,
    min_value: float | None = None,
    threshold: float = 0.5,
    gate: str | None = None,
) -> GateResult:
    """The challenger may lose at most ``max_relative_loss`` of the champion's value of a business metric."""
    found = get_business_metric(metric)
    if not (isinstance(max_relative_loss, int | float) and max_relative_loss >= 0):
        raise InvalidValueError(f"max_relative_loss must be a number >= 0, got {max_relative_loss!r}.")
    name = gate or f"business:{found.name}"
    new = score_business_metric(found, challenger, X, y, threshold)
    figures: dict[str, Any] = {**found.describe(), "challenger": new.to_dict(), "max_relative_loss": max_relative_loss}
    if not new.ok:
        check = GateCheck(found.name, False, f"the metric failed on the challenger: {_last_line(new)}", new.to_dict())
        return GateResult(name, False, (check,), figures)
    assert new.value is not None
    checks = []
    if min_value is not None:
        ok = new.value >= min_value if found.higher_is_better else new.value <= min_value
        checks.append(GateCheck("minimum", ok, f"{new.value:.6g} ({'>=' if found.higher_is_better else '<='} {min_value:g} required)",
                                {"value": new.value, "limit": min_value}))  # fmt: skip
    if champion is not None:
        old = score_business_metric(found, champion, X, y, threshold)
        figures["champion"] = old.to_dict()
        checks.append(_loss_check(found, new.value, old, max_relative_loss))
    if not checks:
        checks.append(
            GateCheck(found.name, True, f"{new.value:.6g}; no champion to compare with", {"value": new.value})
        )
    return GateResult(name, all(c.passed for c in checks), tuple(checks), figures)


def _loss_check(found: BusinessMetric, value: float, old: MetricValue, max_loss: float) -> GateCheck:
    if not old.ok or old.value is None:
        return GateCheck("vs champion", False, f"the metric failed on the champion: {_last_line(old)}", old.to_dict())
    base = old.value
    gain = (value - base) if found.higher_is_better else (base - value)  # positive: the challenger is better
    allowed = max_loss * abs(base)
    ok = gain >= -allowed and math.isfinite(gain)
    relative = gain / abs(base) if base else (0.0 if gain == 0 else math.copysign(math.inf, gain))
    message = f"{found.name} {value:.6g} vs champion {base:.6g}: {relative:+.2%} (may lose at most {max_loss:.2%})"
    return GateCheck("vs champion", ok, message, {"challenger": value, "champion": base, "relative_change": relative,
                                                   "allowed_loss": allowed})  # fmt: skip


def _last_line(value: MetricValue) -> str:
    return (value.error or "").strip().splitlines()[-1] if value.error else "no value"


def business_thresholds(
    model: Any, X: Any, y: Any, bounds: dict[str, float], *, threshold: float = 0.5
) -> tuple[list[GateCheck], dict[str, float | None]]:
    """Checks of registered business metrics against minimums (maximums when lower is better)."""
    checks, values = [], {}
    for metric_name, bound in bounds.items():
        result = score_business_metric(metric_name, model, X, y, threshold)
        values[metric_name] = result.value
        if result.value is None:
            checks.append(GateCheck(metric_name, False, f"the metric failed: {_last_line(result)}", result.to_dict()))
            continue
        op = ">=" if result.metric.higher_is_better else "<="
        ok = result.value >= bound if op == ">=" else result.value <= bound
        checks.append(GateCheck(metric_name, ok, f"{result.value:.6g} {op} {bound:g} required",
                                {**result.to_dict(), "op": op, "limit": bound}))  # fmt: skip
    return checks, values


def names_of(metrics: Sequence[str]) -> list[str]:
    """The business metrics among ``metrics`` (names of built-in metrics left out)."""
    from loopml.explain.metrics import is_business_metric

    return [m for m in metrics if is_business_metric(m)]
