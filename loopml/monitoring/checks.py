"""One check of a monitor: every configured test on the current data against the reference, its figures, and the
alerts for the thresholds it crossed.

:func:`evaluate` is pure computation over two DataFrames (no store, no
network), so a check's verdict can be tested and reproduced apart from where
the data came from. Its figures are JSON-ready: the drift table row of every
column with the counts the report plots, the quality counts and problems,
the performance metrics of the labelled rows, the operational figures.

A check that cannot run on the data it got (no successful prediction in the
window, no labels yet, predictions that are not single values) is noted,
not raised: the result says what was skipped and why. A check that fails on
the data is an *error* of the result. Bad configuration (a column the
reference lacks, an unknown test) raises before anything is stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.entities.monitoring import AlertSpec
from loopml.errors import ColumnNotFoundError, InvalidValueError, did_you_mean
from loopml.monitoring.drift import ColumnDrift, DriftReport, DriftTest, drift, prediction_drift
from loopml.monitoring.operations import operations
from loopml.monitoring.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS, performance
from loopml.monitoring.quality import QualityReport, quality
from loopml.monitoring.spec import (
    EVERY_COLUMN,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    OPERATIONS_LIMITS,
    PREDICTION,
    MonitorSpec,
)
from loopml.monitoring.windows import Current, Reference

SHOWN = 5  # columns or problems named in an alert message
OPERATIONS_FIGURES = ("error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")  # in the summary
# What each check reads. Only these compare against the reference (the others never load it):
REFERENCE_CHECKS = ("data_drift", "prediction_drift", "quality", "attribution_drift")
# and these read only the requests (time, status, latency): no logged input is parsed, no feedback is read.
REQUEST_CHECKS = ("operations",)


@dataclass(frozen=True)
class Needs:
    """What a monitor's checks read: the reference, and the rows (inputs, predictions, feedback labels)."""

    reference: bool
    rows: bool


def needs(spec: MonitorSpec) -> Needs:
    """What ``spec``'s checks read (see ``REFERENCE_CHECKS`` and ``REQUEST_CHECKS``)."""
    checks = set(spec.checks)
    return Needs(reference=bool(checks & set(REFERENCE_CHECKS)), rows=bool(checks - set(REQUEST_CHECKS)))


@dataclass
class Evaluation:
    """What a check found: the reports, the JSON figures and summary to store, and the alerts to raise."""

    drift: DriftReport | None = None
    quality: QualityReport | None = None
    performance: dict[str, Any] | None = None
    operations: dict[str, Any] | None = None
    feature_skew: dict[str, Any] | None = None  # computed by monitors.run_monitor (it reads the feature store)
    responsible: dict[str, Any] | None = None  # fairness, business metrics, attribution drift (responsible.py)
    alerts: list[AlertSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "alert" if self.alerts else "error" if self.errors else "ok"


def evaluate(
    spec: MonitorSpec, reference: Reference, current: Current, *, reference_predictions: pd.Series | None = None
) -> Evaluation:
    """Run the spec's checks on ``current`` against ``reference``; ``reference_predictions`` (the model's
    outputs on the reference) serve prediction drift when the reference has no ``prediction`` column."""
    found = Evaluation(features=_features(spec, reference, current))
    has_rows = len(current.rows) > 0
    if not has_rows and current.rows_read:
        found.notes.append("no successful prediction in the window: drift, quality and performance were skipped")
    if has_rows and ("data_drift" in spec.checks or "prediction_drift" in spec.checks):
        found.drift = _drift(spec, reference, current, found, reference_predictions)
    if has_rows and "quality" in spec.checks:
        present = [c for c in found.features if c in current.rows.columns]
        found.quality = quality(reference.frame[found.features], current.rows[present])
        limit = spec.threshold("quality_problems_max") or 0
        if len(found.quality.problems) > limit:
            found.alerts.append(_quality_alert(found.quality, int(limit)))
    if has_rows and "performance" in spec.checks:
        found.performance = _performance(spec, current, found)
    if "operations" in spec.checks:
        found.operations = _operations(spec, current, found)
    return found


def figures_of(found: Evaluation) -> dict[str, Any]:
    """Every figure of the check, as JSON (what the store keeps and the report is rebuilt from)."""
    figures: dict[str, Any] = {"features": found.features, "notes": found.notes, "errors": found.errors}
    if found.drift is not None:
        figures["data_drift"] = {
            "share_drifted": found.drift.share_drifted,
            "drift_share": found.drift.drift_share,
            "dataset_drift": found.drift.dataset_drift,
            "drifted_columns": found.drift.drifted_columns,
            "columns": [column_figures(c) for c in found.drift.columns],
        }
        figures["prediction_drift"] = None if found.drift.prediction is None else column_figures(found.drift.prediction)
    if found.quality is not None:
        figures["quality"] = found.quality.to_dict()
    if found.performance is not None:
        figures["performance"] = found.performance
    if found.operations is not None:
        figures["operations"] = found.operations
    if found.feature_skew is not None:
        figures["feature_skew"] = found.feature_skew
    if found.responsible is not None:
        figures["responsible"] = found.responsible
    plain: dict[str, Any] = jsonable(figures)  # a mapping comes back as a dict
    return plain


def summary_of(found: Evaluation) -> dict[str, Any]:
    """The headline figures of the check, flat (one row of ``loopml.search_monitor_results``)."""
    summary: dict[str, Any] = {"alerts": [a.kind for a in found.alerts]}
    if found.drift is not None and found.drift.columns:
        summary.update(share_drifted=found.drift.share_drifted, drifted_columns=found.drift.drifted_columns,
                       dataset_drift=found.drift.dataset_drift)  # fmt: skip
    if found.drift is not None and found.drift.prediction is not None:
        summary["prediction_drift"] = found.drift.prediction.drifted
        summary["prediction_statistic"] = found.drift.prediction.statistic
    if found.quality is not None:
        summary["quality_problems"] = len(found.quality.problems)
    if found.performance is not None:
        summary.update({k: v for k, v in found.performance.items() if k not in ("task", "n")})
        summary["n_labelled"] = found.performance.get("n", 0)
    if found.operations is not None:
        summary.update({k: found.operations[k] for k in OPERATIONS_FIGURES if k in found.operations})
        summary["n_requests"] = found.operations.get("n", 0)
    if found.feature_skew is not None:
        summary["feature_skew_share"] = found.feature_skew["skew_share"]
        lags = [v for v in found.feature_skew["materialization_lag_s"].values() if v is not None]
        summary["materialization_lag_s"] = max(lags) if lags else None
    if found.responsible is not None:
        from loopml.monitoring.responsible import summary as responsible_summary

        summary.update(responsible_summary(found.responsible))
    if found.notes:
        summary["notes"] = found.notes
    if found.errors:
        summary["errors"] = found.errors
    plain: dict[str, Any] = jsonable(summary)  # a mapping comes back as a dict
    return plain


def column_figures(result: ColumnDrift) -> dict[str, Any]:
    """A column's drift row with the counts the report plots (``distribution``)."""
    row = result.to_dict()
    dist = result.distribution
    row["distribution"] = None if dist is None else {
        "edges": None if dist.edges is None else list(dist.edges),
        "labels": None if dist.labels is None else list(dist.labels),
        "reference": list(dist.reference),
        "current": list(dist.current),
    }  # fmt: skip
    return row


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN and infinities as None, tuples as lists, times as ISO text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


# -- the checks ----------------------------------------------------------------------------------------------


def _features(spec: MonitorSpec, reference: Reference, current: Current) -> list[str]:
    if not reference.needed:  # no check compares columns against a reference
        return list(spec.columns) if spec.columns is not None else []
    ref_columns = list(reference.frame.columns)
    if spec.columns is not None:
        for name in spec.columns:
            if name not in ref_columns:
                raise ColumnNotFoundError(
                    f"The monitor watches column {name!r}, which the reference lacks."
                    + did_you_mean(name, map(str, ref_columns))
                )
        return list(spec.columns)
    shared = [c for c in ref_columns if c in current.features]
    if not shared and (len(current.rows) or current.source == "frame"):
        raise InvalidValueError(
            f"The reference and the current data share no column: the reference has {', '.join(map(str, ref_columns[:10]))}; "
            f"the current data has {', '.join(map(str, current.features[:10])) or 'no input column'}. "
            "Name the columns to watch with columns=[...]."
        )
    return shared


def _drift(
    spec: MonitorSpec, reference: Reference, current: Current, found: Evaluation, scored: pd.Series | None
) -> DriftReport:
    share = spec.threshold("drift_share") or 0.5
    tests = spec.drift_tests()
    columns: tuple[ColumnDrift, ...] = ()
    if "data_drift" in spec.checks:
        present = [c for c in found.features if c in current.rows.columns]
        feature_tests = tests
        if isinstance(tests, dict):
            watched = list(spec.columns) if spec.columns is not None else list(reference.frame.columns)
            for name in tests:
                if name != PREDICTION and name not in watched:
                    why = "columns=[...] leaves it out" if spec.columns is not None else "the reference lacks it"
                    raise ColumnNotFoundError(
                        f"The monitor forces a drift test on column {name!r}, which it does not watch ({why})."
                        + did_you_mean(name, map(str, watched))
                    )
            # a watched column missing from this window is a quality problem (missing_column), not a bad definition
            feature_tests = {k: v for k, v in tests.items() if k in present}
        if present:
            report = drift(reference.frame[present], current.rows[present], columns=present,
                           tests=feature_tests or None, drift_share=share)  # fmt: skip
            columns = report.columns
            if report.share_drifted >= share:
                found.alerts.append(_drift_alert(report, share))
    predicted = None
    if "prediction_drift" in spec.checks:
        predicted = _prediction_drift(spec, reference, current, found, scored)
        if predicted is not None and predicted.drifted:
            found.alerts.append(
                AlertSpec(
                    "prediction_drift",
                    f"the predictions drifted ({_verdict(predicted)})",
                    jsonable(predicted.to_dict()),
                )
            )
    return DriftReport(columns, predicted, share)


def _prediction_drift(
    spec: MonitorSpec, reference: Reference, current: Current, found: Evaluation, scored: pd.Series | None
) -> ColumnDrift | None:
    ref = reference.frame[PREDICTION] if PREDICTION in reference.frame.columns else scored
    if ref is None:
        found.notes.append("prediction drift skipped: the reference has no 'prediction' column")
        return None
    if PREDICTION not in current.rows.columns:
        found.notes.append("prediction drift skipped: the current data has no 'prediction' column")
        return None
    cur = current.rows[PREDICTION]
    if not (_scalars(ref) and _scalars(cur)):
        found.notes.append("prediction drift skipped: the predictions are not single values (lists or records)")
        return None
    forced = spec.tests.get(PREDICTION) or spec.tests.get(EVERY_COLUMN)
    test = None if forced is None else DriftTest(*forced)
    return prediction_drift(ref.rename(PREDICTION).reset_index(drop=True), cur.rename(PREDICTION), test=test)


def _performance(spec: MonitorSpec, current: Current, found: Evaluation) -> dict[str, Any]:
    rows = current.rows
    if "label" not in rows.columns or PREDICTION not in rows.columns:
        found.notes.append("performance skipped: the current data has no 'label' and 'prediction' columns")
        return {"n": 0}
    labelled = rows[rows["label"].notna() & rows[PREDICTION].notna()]
    if labelled.empty:
        found.notes.append("performance skipped: no labels yet (send feedback to measure it)")
        return {"n": 0}
    if not (_scalars(labelled["label"]) and _scalars(labelled[PREDICTION])):
        found.errors.append("performance failed: labels or predictions are not single values")
        return {"n": len(labelled)}
    try:
        table = performance(labelled[[PREDICTION, "label"]].reset_index(drop=True).infer_objects())
    except (InvalidValueError, TypeError, ValueError) as exc:
        found.errors.append(f"performance failed: {exc}")
        return {"n": len(labelled)}
    metrics = [m for m in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS) if m in table.columns]
    figures: dict[str, Any] = {
        "task": "classification" if "accuracy" in table.columns else "regression",
        "n": int(table["n"].iloc[0]),
    }
    figures.update({m: _number(table[m].iloc[0]) for m in metrics})
    minimum = int(spec.threshold("min_labels") or 1)
    if figures["n"] < minimum:
        found.notes.append(f"performance not judged: {figures['n']} labelled rows, fewer than min_labels={minimum}")
        return figures
    # a threshold on a metric this check cannot measure would otherwise never alert, without a word
    unmeasured = [f"{m}_{side}" for side, metrics in (("min", HIGHER_IS_BETTER), ("max", LOWER_IS_BETTER))
                  for m in metrics if f"{m}_{side}" in spec.thresholds and figures.get(m) is None]  # fmt: skip
    if unmeasured:
        found.notes.append(
            f"performance threshold(s) {', '.join(unmeasured)} not judged: not measured on these {figures['task']} "
            "labels (ROC AUC and log loss need scores and both classes)"
        )
    crossed: dict[str, dict[str, float]] = {}
    for metric in HIGHER_IS_BETTER:
        bound = spec.thresholds.get(f"{metric}_min")
        if bound is not None and figures.get(metric) is not None and figures[metric] < bound:
            crossed[metric] = {"value": figures[metric], "min": bound}
    for metric in LOWER_IS_BETTER:
        bound = spec.thresholds.get(f"{metric}_max")
        if bound is not None and figures.get(metric) is not None and figures[metric] > bound:
            crossed[metric] = {"value": figures[metric], "max": bound}
    if crossed:
        text = ", ".join(f"{m} {v['value']:.4g} {'<' if 'min' in v else '>'} {v.get('min', v.get('max')):g}"
                         for m, v in crossed.items())  # fmt: skip
        found.alerts.append(AlertSpec("performance", f"performance crossed its thresholds on {figures['n']} "
                                      f"labelled rows: {text}", {"crossed": crossed, "n": figures["n"]}))  # fmt: skip
    return figures


def _operations(spec: MonitorSpec, current: Current, found: Evaluation) -> dict[str, Any] | None:
    if current.requests is None:
        found.notes.append("operations skipped: the current data has no 'status' and 'latency_ms' columns")
        return None
    if len(current.requests) == 0:
        return {"n": 0}
    table = operations(current.requests, bucket=None)
    figures: dict[str, Any] = {column: _number(table[column].iloc[0]) for column in table.columns}
    figures.update({column: int(table[column].iloc[0]) for column in ("n", "client_errors", "server_errors")})
    crossed = {}
    for key, figure in OPERATIONS_LIMITS.items():
        bound = spec.thresholds.get(key)
        value = figures.get(figure)
        if bound is not None and value is not None and value > bound:
            crossed[figure] = {"value": value, "max": bound}
    if crossed:
        text = ", ".join(f"{m} {v['value']:.4g} > {v['max']:g}" for m, v in crossed.items())
        found.alerts.append(AlertSpec("operations", f"operations crossed their thresholds on {figures['n']} "
                                      f"requests: {text}", {"crossed": crossed, "n": figures["n"]}))  # fmt: skip
    return figures


# -- alerts ---------------------------------------------------------------------------------------------------


def _drift_alert(report: DriftReport, share: float) -> AlertSpec:
    names = report.drifted_columns
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    message = (
        f"{len(names)} of {len(report.columns)} columns drifted ({report.share_drifted:.0%}; "
        f"threshold {share:.0%}): {shown}"
    )
    details = {
        "drifted_columns": names,
        "share_drifted": report.share_drifted,
        "drift_share": share,
        "columns": {c.column: {"test": c.test, "statistic": c.statistic, "p_value": c.p_value} for c in report.columns
                    if c.drifted},
    }  # fmt: skip
    return AlertSpec("data_drift", message, jsonable(details))


def _quality_alert(report: QualityReport, limit: int) -> AlertSpec:
    problems = report.problems
    shown = "; ".join(f"{p.column}: {p.message}" for p in problems[:SHOWN])
    more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    details = {"problems": [{"column": p.column, "check": p.check, "count": p.count, "share": p.share}
                            for p in problems], "max": limit}  # fmt: skip
    return AlertSpec("quality", f"{len(problems)} data-quality problem(s) (at most {limit} allowed): {shown}{more}",
                     jsonable(details))  # fmt: skip


def _verdict(result: ColumnDrift) -> str:
    """``ks p-value 0.0012 < 0.05`` or ``wasserstein 0.31 >= 0.1``."""
    if math.isnan(result.p_value):
        return f"{result.test} {result.statistic:.3g} >= {result.threshold:g}"
    return f"{result.test} p-value {result.p_value:.3g} < {result.threshold:g}"


# -- helpers --------------------------------------------------------------------------------------------------


def _scalars(series: pd.Series) -> bool:
    """True when the column holds single values (not lists, dicts or arrays), judged on its first value."""
    values = series.dropna()
    return values.empty or not isinstance(values.iloc[0], (list, dict, tuple, np.ndarray))


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
