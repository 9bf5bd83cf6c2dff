"""Model gates: metric thresholds on a holdout, and challenger vs champion on the same holdout.

:func:`compare_models` scores both models on the same rows and decides with

* a **paired bootstrap** of the metric difference (challenger - champion, signed
  so that positive means "challenger better"): both models are scored on the
  same resamples, drawn with a fixed seed and evaluated all at once (see
  ``metrics.py``); the gate asks that the lower end of the ``1 - alpha``
  percentile interval be above ``-margin``. ``margin=0`` asks for a
  significant improvement, a small positive margin for non-inferiority;
* **McNemar's test** for classifiers, on the rows where exactly one model is
  right: exact binomial below 25 such rows, chi-squared with continuity
  correction above; the gate fails when the challenger makes significantly
  more errors;
* **per-segment non-regression**: in no segment may the challenger be worse
  than the champion by more than ``segment_tolerance`` (segments smaller than
  ``min_segment_size``, or where the metric is undefined, are reported as
  skipped).

Every figure goes into the :class:`GateResult`, whose ``to_evidence()`` is
JSON-safe and is stored on the model version with ``result.record(name, version)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidValueError, ValidationFailedError
from loopml.validation.checks import json_safe
from loopml.validation.metrics import ModelMetric, bootstrap_weights, get_metric

if TYPE_CHECKING:
    from loopml.entities.registry import ModelVersion
    from loopml.registry.client import RegistryClient

EXACT_BELOW = 25
_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class GateCheck:
    """One decision inside a gate, with the figures it was taken on."""

    name: str
    passed: bool
    message: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "skipped": self.skipped,
            "message": self.message,
            "figures": json_safe(dict(self.figures)),
        }


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict: passed only when every check passed; ``figures`` holds the headline numbers."""

    gate: str
    passed: bool
    checks: tuple[GateCheck, ...]
    figures: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> tuple[GateCheck, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def summary(self) -> str:
        lines = [f"Gate {self.gate!r} {'passed' if self.passed else 'FAILED'}:"]
        for check in self.checks:
            mark = "SKIP" if check.skipped else ("PASS" if check.passed else "FAIL")
            lines.append(f"  {mark} {check.name}: {check.message}")
        return "\n".join(lines)

    def to_evidence(self) -> dict[str, Any]:
        """Every figure as a JSON-safe dict (NaN and infinities become null)."""
        return {
            "kind": "model",
            "gate": self.gate,
            "passed": self.passed,
            "figures": json_safe(dict(self.figures)),
            "checks": [check.to_dict() for check in self.checks],
        }

    def raise_if_failed(self) -> GateResult:
        """ValidationFailedError naming every failed check; else the result itself."""
        if not self.passed:
            listed = "\n".join(f"  - {check.name}: {check.message}" for check in self.failures)
            raise ValidationFailedError(
                f"Gate {self.gate!r} failed {len(self.failures)} check(s):\n{listed}", report=self
            )
        return self

    def record(
        self,
        name: str,
        version: int,
        *,
        key: str | None = None,
        client: RegistryClient | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Store ``to_evidence()`` on a model version under ``key`` (default: the gate's name).

        Evidence already on the version under other keys is kept, so several
        gates can record on one version.
        """
        if client is None:
            from loopml.registry.fluent import get_registry_client

            client = get_registry_client()
        existing = dict(client.get_model_version(name, version).evidence)
        existing[key or self.gate] = self.to_evidence()
        return client.set_evidence(name, version, existing, actor=actor)


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """The paired bootstrap of ``challenger - champion`` (signed so that positive is better)."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    prob_better: float
    n_boot: int
    n_invalid: int


def paired_bootstrap(
    metric: str | ModelMetric,
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> BootstrapResult:
    """Resample rows with replacement; score both models on each resample; summarise the differences.

    The interval is the ``alpha/2`` and ``1 - alpha/2`` percentiles of the
    resampled differences; ``p_value`` is the two-sided bootstrap p-value
    (twice the smaller share of differences on either side of zero);
    resamples where the metric is undefined are left out and counted.
    """
    scorer = get_metric(metric)
    sign = 1.0 if scorer.higher_is_better else -1.0
    deltas = []
    for weights in bootstrap_weights(len(y), n_boot, seed):
        deltas.append(sign * (scorer.weighted(y, challenger, weights) - scorer.weighted(y, champion, weights)))
    all_deltas = np.concatenate(deltas)
    valid = all_deltas[np.isfinite(all_deltas)]
    point = sign * (scorer.value(y, challenger) - scorer.value(y, champion))
    if not len(valid):
        nan = float("nan")
        return BootstrapResult(point, nan, nan, nan, nan, n_boot, n_boot)
    low, high = np.percentile(valid, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    p_value = min(1.0, 2 * min(float(np.mean(valid <= 0)), float(np.mean(valid >= 0))))
    return BootstrapResult(
        point, float(low), float(high), p_value, float(np.mean(valid > 0)), n_boot, int(n_boot - len(valid))
    )


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on paired classifier errors.

    ``n01``: rows the champion gets right and the challenger wrong;
    ``n10``: rows the challenger gets right and the champion wrong.
    """

    n01: int
    n10: int
    statistic: float
    p_value: float
    method: str


def mcnemar(y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, *, exact: bool | None = None) -> McNemarResult:
    """McNemar's test of the two classifiers' predicted labels against ``y``.

    ``exact`` (default: when fewer than 25 rows are discordant) uses the
    two-sided binomial test, otherwise the chi-squared statistic with
    continuity correction, ``(|n01 - n10| - 1)^2 / (n01 + n10)``, on 1 degree of freedom.
    """
    from scipy import stats

    y, challenger, champion = np.asarray(y), np.asarray(challenger), np.asarray(champion)
    right_new, right_old = challenger == y, champion == y
    n01 = int(np.sum(right_old & ~right_new))
    n10 = int(np.sum(right_new & ~right_old))
    discordant = n01 + n10
    if discordant == 0:
        return McNemarResult(n01, n10, 0.0, 1.0, "none (no discordant rows)")
    if exact if exact is not None else discordant < EXACT_BELOW:
        result = stats.binomtest(min(n01, n10), discordant, 0.5, alternative="two-sided")
        return McNemarResult(n01, n10, float(min(n01, n10)), float(result.pvalue), "exact binomial")
    statistic = (abs(n01 - n10) - 1) ** 2 / discordant
    return McNemarResult(
        n01, n10, float(statistic), float(stats.chi2.sf(statistic, 1)), "chi2 with continuity correction"
    )


# -- gates ----------------------------------------------------------------------------------------


def validate_model(
    model: Any,
    X: Any,
    y: Any,
    thresholds: Mapping[str, float | str],
    *,
    threshold: float = 0.5,
    gate: str = "thresholds",
) -> GateResult:
    """Score ``model`` on the holdout and compare each metric with its threshold.

    ``thresholds`` maps a metric to a bound: a number is a minimum for metrics
    where higher is better and a maximum otherwise; a string states the
    comparison (``">= 0.8"``, ``"< 0.3"``). ``model`` is a fitted model, a
    ``models:/`` or ``runs:/`` URI, or an array of its predictions.
    """
    if not isinstance(thresholds, Mapping) or not thresholds:
        raise InvalidValueError("validate_model needs thresholds, e.g. {'roc_auc': 0.8, 'log_loss': '<= 0.4'}.")
    y_arr = _array(y, "y")
    scored = _Scorer(_resolve(model), X, y_arr, threshold)
    checks, values = [], {}
    from loopml.explain.metrics import is_business_metric

    for name, bound in thresholds.items():
        if is_business_metric(name):  # a @loopml.metric, named like a built-in one
            from loopml.validation.responsible import business_thresholds

            found, scores = business_thresholds(scored.model, X, y_arr, {name: _business_bound(name, bound)})
            checks += found
            values.update(scores)
            continue
        metric = get_metric(name)
        op, limit = _parse_bound(metric, bound)
        value = metric.value(*scored.prepare(metric))
        values[name] = value
        ok = bool(math.isfinite(value) and _compare(value, op, limit))
        checks.append(
            GateCheck(name, ok, f"{value:.6g} {op} {limit:g} required", {"value": value, "op": op, "limit": limit})
        )
    return GateResult(gate, all(c.passed for c in checks), tuple(checks), {"metrics": values, "n": len(y_arr)})


def compare_models(
    challenger: Any,
    champion: Any,
    X: Any,
    y: Any,
    metric: str = "roc_auc",
    segments: Any = None,
    *,
    margin: float = 0.0,
    segment_tolerance: float = 0.01,
    min_segment_size: int = 30,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    mcnemar_test: bool | None = None,
    threshold: float = 0.5,
    gate: str = "challenger_vs_champion",
) -> GateResult:
    """Challenger vs champion on the same holdout (see the module docstring for the tests).

    Args:
        challenger: a fitted model (anything with ``predict`` / ``predict_proba``, including
            loaded packages), a ``models:/`` or ``runs:/`` URI, or an array of predictions.
        champion: the same kinds as ``challenger``.
        X: the holdout's features.
        y: the holdout's labels.
        metric: one of ``loopml.validation.metrics.METRICS``.
        segments: None, a column name of ``X``, an array of segment labels (one per row)
            or a mapping of segment name to boolean mask.
        margin: how much worse (in metric units) the challenger may be: the gate wants the
            lower end of the interval above ``-margin``; 0 asks for a significant improvement.
        segment_tolerance: how much worse the challenger may be in any one segment.
        n_boot: bootstrap resamples.
        alpha: the interval's level is ``1 - alpha``.
        seed: the seed of the resampling generator.
        mcnemar_test: run McNemar's test (default: for classification metrics).
        threshold: turns probabilities given as arrays into labels for McNemar's test.
    """
    scorer = get_metric(metric)
    if not 0 < alpha < 1:
        raise InvalidValueError(f"alpha must be between 0 and 1, got {alpha}.")
    if not isinstance(n_boot, int) or n_boot < 100:
        raise InvalidValueError(f"n_boot must be an integer >= 100, got {n_boot!r}.")
    y_arr = _array(y, "y")
    new = _Scorer(_resolve(challenger), X, y_arr, threshold)
    old = _Scorer(_resolve(champion), X, y_arr, threshold)
    y_metric, pred_new = new.prepare(scorer)
    _, pred_old = old.prepare(scorer)
    value_new, value_old = scorer.value(y_metric, pred_new), scorer.value(y_metric, pred_old)
    boot = paired_bootstrap(scorer, y_metric, pred_new, pred_old, n_boot=n_boot, alpha=alpha, seed=seed)
    direction = "higher" if scorer.higher_is_better else "lower"
    checks = [
        GateCheck(
            "bootstrap",
            bool(math.isfinite(boot.ci_low) and boot.ci_low > -margin),
            f"{metric} {value_new:.6g} vs {value_old:.6g} ({direction} is better): improvement {boot.delta:+.4g}, "
            f"{100 * (1 - alpha):g}% CI [{boot.ci_low:+.4g}, {boot.ci_high:+.4g}], needs lower end > {0.0 - margin:+.4g}",
            {
                "delta": boot.delta,
                "ci": [boot.ci_low, boot.ci_high],
                "p_value": boot.p_value,
                "prob_better": boot.prob_better,
                "margin": margin,
                "n_invalid_resamples": boot.n_invalid,
            },
        )
    ]
    figures: dict[str, Any] = {
        "metric": metric,
        "higher_is_better": scorer.higher_is_better,
        "n": len(y_arr),
        "challenger": value_new,
        "champion": value_old,
        "delta": boot.delta,
        "ci": [boot.ci_low, boot.ci_high],
        "alpha": alpha,
        "n_boot": n_boot,
        "seed": seed,
        "p_value": boot.p_value,
    }
    if mcnemar_test if mcnemar_test is not None else scorer.task != "regression":
        result = mcnemar(y_arr, new.labels(), old.labels())
        worse = result.n01 > result.n10 and result.p_value < alpha
        checks.append(
            GateCheck(
                "mcnemar",
                not worse,
                f"challenger alone right on {result.n10} rows, champion alone on {result.n01}; "
                f"p = {result.p_value:.4g} ({result.method})"
                + ("; the challenger is significantly worse" if worse else ""),
                {
                    "n01": result.n01,
                    "n10": result.n10,
                    "statistic": result.statistic,
                    "p_value": result.p_value,
                    "method": result.method,
                },
            )
        )
        figures["mcnemar"] = {"n01": result.n01, "n10": result.n10, "p_value": result.p_value, "method": result.method}
    segment_figures = []
    for label, mask in _segments(segments, X, len(y_arr)):
        check = _segment_check(scorer, label, mask, y_metric, pred_new, pred_old, segment_tolerance, min_segment_size)
        checks.append(check)
        segment_figures.append({"segment": label, **check.figures, "passed": check.passed, "skipped": check.skipped})
    if segment_figures:
        figures["segments"] = segment_figures
        figures["segment_tolerance"] = segment_tolerance
    return GateResult(gate, all(c.passed for c in checks), tuple(checks), figures)


def _segment_check(
    scorer: ModelMetric,
    label: str,
    mask: np.ndarray,
    y: np.ndarray,
    new: np.ndarray,
    old: np.ndarray,
    tolerance: float,
    min_size: int,
) -> GateCheck:
    n = int(mask.sum())
    name = f"segment {label}"
    if n < min_size:
        return GateCheck(name, True, f"skipped: {n} rows (< {min_size})", {"n": n}, skipped=True)
    value_new, value_old = scorer.value(y[mask], new[mask]), scorer.value(y[mask], old[mask])
    if not (math.isfinite(value_new) and math.isfinite(value_old)):
        return GateCheck(name, True, f"skipped: {scorer.name} undefined on these {n} rows", {"n": n}, skipped=True)
    delta = (value_new - value_old) * (1 if scorer.higher_is_better else -1)
    ok = delta >= -tolerance
    message = f"{value_new:.6g} vs {value_old:.6g} on {n} rows (improvement {delta:+.4g}, tolerance {tolerance:g})"
    return GateCheck(name, ok, message, {"n": n, "challenger": value_new, "champion": value_old, "delta": delta})


# -- scoring helpers ------------------------------------------------------------------------------


class _Scorer:
    """One model's outputs on the holdout, turned into what each metric needs."""

    def __init__(self, model: Any, X: Any, y: np.ndarray, threshold: float) -> None:
        self.model, self.X, self.y, self.threshold = model, X, y, threshold
        self._cache: dict[str, np.ndarray] = {}
        raw = getattr(model, "raw", model)
        classes = getattr(raw, "classes_", None)
        self.classes = None if classes is None else np.asarray(classes)

    def _output(self, kind: str) -> np.ndarray:
        if kind not in self._cache:
            if isinstance(self.model, np.ndarray):
                out = self.model
            elif kind == "proba":
                if not hasattr(self.model, "predict_proba"):
                    raise InvalidValueError(f"{type(self.model).__name__} has no predict_proba; pick a label metric.")
                out = np.asarray(self.model.predict_proba(self.X))
            else:
                out = np.asarray(self.model.predict(self.X))
            if len(out) != len(self.y):
                raise InvalidValueError(f"The model gave {len(out)} predictions for {len(self.y)} rows of y.")
            self._cache[kind] = out
        return self._cache[kind]

    def positive(self) -> Any:
        if self.classes is not None and len(self.classes) == 2:
            return self.classes[1]
        labels = np.unique(self.y)
        if len(labels) > 2:
            raise InvalidValueError(f"A binary metric needs two classes; y has {len(labels)}.")
        if len(labels) == 1 and labels.dtype.kind in "biuf" and labels[0] == 0:
            return labels.dtype.type(1)  # a holdout of negatives only: the positive class is still 1 (True)
        return labels[-1]

    def labels(self) -> np.ndarray:
        """Predicted labels, comparable with y (array probabilities are cut at ``threshold``)."""
        out = self._output("label")
        labels: np.ndarray
        if isinstance(self.model, np.ndarray) and out.ndim == 2:  # probabilities per class, as predict_proba gives
            if out.shape[1] == 2:
                labels = np.where(out[:, 1] >= self.threshold, self.positive(), _negative(self.y, self.positive()))
                return labels
            classes = self.classes if self.classes is not None else np.unique(self.y)
            if len(classes) != out.shape[1]:
                raise InvalidValueError(
                    f"The predictions have {out.shape[1]} columns of probabilities but y has {len(classes)} classes."
                )
            labels = classes[np.argmax(out, axis=1)]
            return labels
        if (
            isinstance(self.model, np.ndarray)
            and out.dtype.kind == "f"
            and out.ndim == 1
            and np.any((out > 0) & (out < 1))
        ):
            labels = np.where(out >= self.threshold, self.positive(), _negative(self.y, self.positive()))
            return labels
        return out

    def prepare(self, metric: ModelMetric) -> tuple[np.ndarray, np.ndarray]:
        """``(y, prediction)`` in the form the metric takes (0/1 for binary metrics)."""
        if metric.needs == "value":
            return self.y.astype(np.float64), self._output("value").astype(np.float64)
        if metric.needs == "label":
            labels = self.labels()
            if metric.task == "binary":
                positive = self.positive()
                return (self.y == positive).astype(np.float64), (labels == positive).astype(np.float64)
            return self.y, labels
        proba = self._output("proba").astype(np.float64)
        if proba.ndim == 2 and proba.shape[1] == 2:
            proba = proba[:, 1]
        if proba.ndim == 1:
            return (self.y == self.positive()).astype(np.float64), proba
        if metric.task == "binary":
            raise InvalidValueError(
                f"{metric.name} is computed for binary classifiers; this one gives {proba.shape[1]} classes."
            )
        classes = self.classes if self.classes is not None else np.unique(self.y)
        return np.searchsorted(classes, self.y).astype(np.float64), proba


def _negative(y: np.ndarray, positive: Any) -> Any:
    others = [label for label in np.unique(y) if label != positive]
    return others[0] if others else 0


def _resolve(model: Any) -> Any:
    """Models pass through; URIs are loaded from the registry; lists become arrays."""
    if isinstance(model, str):
        from loopml.registry.fluent import load_model

        return load_model(model)
    if isinstance(model, list | tuple):
        return np.asarray(model)
    if hasattr(model, "to_numpy") and not hasattr(model, "predict"):
        return np.asarray(model.to_numpy())
    return model


def _array(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if array.ndim != 1 or not len(array):
        raise InvalidValueError(f"{what} must be a non-empty 1-D array, got shape {array.shape}.")
    return array


def _segments(segments: Any, X: Any, n: int) -> list[tuple[str, np.ndarray]]:
    if segments is None:
        return []
    if isinstance(segments, Mapping):
        result = []
        for label, mask in segments.items():
            array = np.asarray(mask, dtype=bool)
            if array.shape != (n,):
                raise InvalidValueError(f"Segment {label!r}: the mask has shape {array.shape}, expected ({n},).")
            result.append((str(label), array))
        return result
    if isinstance(segments, str):
        if not hasattr(X, "columns") or segments not in X.columns:
            raise InvalidValueError(f"segments={segments!r} names no column of X.")
        labels = np.asarray(X[segments].to_numpy())
    else:
        labels = _array(segments, "segments")
    if len(labels) != n:
        raise InvalidValueError(f"segments has {len(labels)} labels for {n} rows.")
    import pandas as pd

    missing = np.asarray(pd.isna(labels), dtype=bool)  # NaN equals nothing, so `labels == nan` would match no row
    result = [(str(value), labels == value) for value in _unique(labels[~missing])]
    if missing.any():
        result.append(("missing", missing))
    return result


def _unique(labels: np.ndarray) -> Sequence[Any]:
    try:
        return list(np.unique(labels))
    except TypeError:  # mixed types: keep first-seen order
        return list(dict.fromkeys(labels.tolist()))


def _parse_bound(metric: ModelMetric, bound: float | str) -> tuple[str, float]:
    if isinstance(bound, int | float) and not isinstance(bound, bool):
        return (">=" if metric.higher_is_better else "<="), float(bound)
    match = _THRESHOLD.match(bound) if isinstance(bound, str) else None
    if match is None:
        raise InvalidValueError(f"Threshold for {metric.name} must be a number or e.g. '>= 0.8', got {bound!r}.")
    return match.group(1), float(match.group(2))


def _business_bound(name: str, bound: float | str) -> float:
    if isinstance(bound, int | float) and not isinstance(bound, bool):
        return float(bound)
    raise InvalidValueError(f"The bound of business metric {name!r} must be a number (a minimum, or a maximum when "
                            f"lower is better), got {bound!r}.")  # fmt: skip


def _compare(value: float, op: str, limit: float) -> bool:
    return {">=": value >= limit, "<=": value <= limit, ">": value > limit, "<": value < limit}[op]
