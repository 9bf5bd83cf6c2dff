"""The responsible-ML checks of a monitor: fairness by segment, business metrics, attribution drift.

Each runs only when the monitor names it in ``checks`` (none is a default):

* ``fairness``: fairlearn's group figures (``loopml.explain.fairness``) of the
  labelled requests per value of ``segments``, the sensitive attribute, which
  is an input column or ``"feedback.<key>"``: a key of feedback labels sent as
  objects (``{"label": 1, "group": "b"}``), so the attribute need never reach
  the model. Alerts on ``parity_difference_max`` and ``equalized_odds_difference_max``;
  groups under ``min_group_rows`` are "not enough data".
* ``business``: every ``@loopml.metric`` in ``metrics`` on the labelled requests;
  ``metric.<name>_min`` / ``_max`` thresholds alert; a metric that fails is an error of the result.
* ``attribution_drift``: the mean |SHAP| per feature on (up to 200) current requests against
  the reference's (``loopml.explain.drift``); alerts when the ranking or the sizes moved.

Their figures go into the result under ``responsible`` (and headline numbers into its summary),
so ``loopml.search_monitor_results`` follows them over time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.entities.monitoring import AlertSpec
from loopml.errors import InvalidValueError, LoopMLError

if TYPE_CHECKING:
    import pandas as pd

    from loopml.monitoring.checks import Evaluation
    from loopml.monitoring.spec import MonitorSpec
    from loopml.monitoring.windows import Current, Reference
    from loopml.tracking.client import TrackingClient

FEEDBACK = "feedback."
MAX_EXPLAINED = 200


def check_options(checks: Sequence[str], segments: Any, metrics: Any) -> tuple[str | None, tuple[str, ...]]:
    """Validate ``segments`` and ``metrics`` against the checks that use them (InvalidValueError)."""
    if segments is not None and (not isinstance(segments, str) or not segments.strip()):
        raise InvalidValueError(
            f"segments must name the sensitive attribute (a column or 'feedback.<key>'), got {segments!r}."
        )
    if "fairness" in checks and segments is None:
        raise InvalidValueError(
            "The fairness check needs segments=<the sensitive attribute: a column or 'feedback.<key>'>."
        )
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, Sequence) or not all(isinstance(m, str) and m for m in metrics):
        raise InvalidValueError(f"metrics must be a list of @loopml.metric names, got {metrics!r}.")
    if "business" in checks and not metrics:
        raise InvalidValueError("The business check needs metrics=[<@loopml.metric names>].")
    return segments, tuple(dict.fromkeys(metrics))


def run_checks(
    spec: MonitorSpec,
    tracking: TrackingClient,
    model: str,
    version: int | None,
    reference: Reference,
    current: Current,
    found: Evaluation,
) -> dict[str, Any]:
    """Run the responsible checks the spec names; alerts, notes and errors go to ``found``."""
    figures: dict[str, Any] = {}
    labelled = _labelled(current.rows)
    if "fairness" in spec.checks:
        figures["fairness"] = _fairness(spec, labelled, found)
    if "business" in spec.checks:
        figures["business"] = _business(spec, labelled, current, found)
    if "attribution_drift" in spec.checks:
        figures["attribution_drift"] = _attribution_drift(spec, tracking, model, version, reference, current, found)
    return figures


def summary(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers of :func:`run_checks`' figures, flat."""
    flat: dict[str, Any] = {}
    fair = figures.get("fairness") or {}
    for key in ("demographic_parity_difference", "equalized_odds_difference"):
        if key in fair:
            flat[key] = fair[key]
    for name, value in (figures.get("business") or {}).items():
        flat[f"metric.{name}"] = value.get("value")
    drift = figures.get("attribution_drift") or {}
    for key in ("rank_correlation", "share_shift"):
        if key in drift:
            flat[f"attribution_{key}"] = drift[key]
    return flat


def _labelled(rows: pd.DataFrame) -> pd.DataFrame:
    if "label" not in rows.columns or "prediction" not in rows.columns:
        return rows.iloc[0:0]
    return rows[rows["label"].notna() & rows["prediction"].notna()]


def _label_values(labels: pd.Series) -> np.ndarray:
    """The labels, taking ``label`` out of feedback sent as objects."""
    return np.asarray([v.get("label") if isinstance(v, Mapping) else v for v in labels], dtype=object)


def _fairness(spec: MonitorSpec, rows: pd.DataFrame, found: Evaluation) -> dict[str, Any]:
    from loopml.explain.fairness import fairness

    assert spec.segments is not None
    if rows.empty:
        found.notes.append("fairness skipped: no labels yet (send feedback to measure it)")
        return {"n": 0}
    if spec.segments.startswith(FEEDBACK):
        key = spec.segments[len(FEEDBACK) :]
        groups = [v.get(key) if isinstance(v, Mapping) else None for v in rows["label"]]
    elif spec.segments in rows.columns:
        groups = rows[spec.segments].tolist()
    else:
        found.errors.append(
            f"fairness failed: the requests carry no column {spec.segments!r} (give the column, or "
            f"'{FEEDBACK}<key>' for a key of the feedback labels)"
        )
        return {"n": len(rows)}
    labels = _label_values(rows["label"])
    predictions = np.asarray(rows["prediction"].tolist(), dtype=object)
    try:
        report = fairness(labels, predictions, groups, min_rows=int(spec.threshold("min_group_rows") or 30),
                          name=spec.segments)  # fmt: skip
    except (InvalidValueError, TypeError, ValueError) as exc:
        found.errors.append(f"fairness failed: {exc}")
        return {"n": len(rows)}
    figures = report.to_dict()
    found.notes.extend(f"fairness: {note}" for note in report.notes)
    for key, figure in (("parity_difference_max", "demographic_parity_difference"),
                        ("equalized_odds_difference_max", "equalized_odds_difference")):  # fmt: skip
        bound, value = spec.thresholds.get(key), getattr(report, figure)
        if bound is not None and value is not None and value > bound:
            found.alerts.append(AlertSpec(
                "fairness", f"{figure.replace('_', ' ')} {value:.3f} > {bound:g} across {spec.segments}",
                {"figure": figure, "value": value, "max": bound, "groups": figures["groups"]},
            ))  # fmt: skip
    return figures


def _business(spec: MonitorSpec, rows: pd.DataFrame, current: Current, found: Evaluation) -> dict[str, Any]:
    from loopml.explain.metrics import evaluate_metric

    values: dict[str, Any] = {}
    if rows.empty:
        found.notes.append("business metrics skipped: no labels yet (send feedback to measure them)")
        return values
    labels = _label_values(rows["label"])
    predictions = np.asarray(rows["prediction"].tolist())
    features = rows[[c for c in current.features if c in rows.columns]]
    for name in spec.metrics:
        try:
            result = evaluate_metric(name, predictions, labels, features)
        except LoopMLError as exc:  # not registered in this process
            found.errors.append(f"business metric {name} failed: {exc.message}")
            continue
        values[name] = {**result.to_dict(), "n": len(rows)}
        if result.value is None:
            found.errors.append(f"business metric {name} failed: {(result.error or '').strip().splitlines()[-1]}")
            continue
        low, high = spec.thresholds.get(f"metric.{name}_min"), spec.thresholds.get(f"metric.{name}_max")
        if (low is not None and result.value < low) or (high is not None and result.value > high):
            bound = f"< {low:g}" if low is not None and result.value < low else f"> {high:g}"
            found.alerts.append(AlertSpec("business", f"{name} {result.value:.6g} {bound} on {len(rows)} labelled requests",
                                          {"metric": name, "value": result.value, "min": low, "max": high,
                                           "code_hash": result.metric.code_hash}))  # fmt: skip
    return values


def _attribution_drift(
    spec: MonitorSpec,
    tracking: TrackingClient,
    model: str,
    version: int | None,
    reference: Reference,
    current: Current,
    found: Evaluation,
) -> dict[str, Any] | None:
    from loopml.explain.drift import attribution_drift
    from loopml.explain.importance import importance_of
    from loopml.explain.local import explainer_for
    from loopml.registry.client import RegistryClient

    if version is None:
        found.notes.append("attribution drift skipped: no model version to explain")
        return None
    registry = RegistryClient(tracking)
    try:
        loaded = registry.load_model(f"models:/{model}/{version}")
        ref_frame = reference.frame
        columns = [c for c in current.features if c in ref_frame.columns]
        explainer = explainer_for(loaded, ref_frame[columns])
        stored = importance_of(registry.get_model_version(model, version).evidence)
        if stored is None:
            stored = explainer.explain(ref_frame[columns].head(MAX_EXPLAINED)).mean_abs()
        rows = current.rows[[c for c in columns if c in current.rows.columns]].dropna().tail(MAX_EXPLAINED)
        now = explainer.explain(rows).mean_abs() if len(rows) else {}
    except LoopMLError as exc:
        found.errors.append(f"attribution drift failed: {exc.message}")
        return None
    result = attribution_drift(
        stored, now, n_current=len(rows),
        min_rank_correlation=spec.thresholds.get("attribution_rank_correlation_min", 0.5),
        max_share_shift=spec.thresholds.get("attribution_share_shift_max", 0.2),
    )  # fmt: skip
    if result.drifted is None:
        found.notes.append(f"attribution drift: {result.message}")
    elif result.drifted:
        found.alerts.append(AlertSpec("attribution_drift", result.message, result.to_dict()))
    return result.to_dict()
