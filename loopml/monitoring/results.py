"""A monitor's stored results, read back: as a DataFrame, as drift over time, and as one HTML report.

Every check stores its figures (see :mod:`.checks`), including the counts the
report plots, so the report is drawn from the store alone: no reference data
or prediction log is read again, and a report of last month's checks shows
what those checks saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from loopml.entities.monitoring import MonitorResult
from loopml.errors import NotFoundError
from loopml.monitoring.checks import OPERATIONS_FIGURES
from loopml.monitoring.drift import ColumnDrift, DriftReport
from loopml.monitoring.grouping import BUCKET
from loopml.monitoring.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS
from loopml.monitoring.quality import ColumnQuality, QualityProblem, QualityReport
from loopml.monitoring.samples import Distribution

if TYPE_CHECKING:
    from loopml.tracking.client import TrackingClient

Moment = datetime | int | float | str | None
LEADING = ("time", "result_id", "monitor", "model", "version", "status", "alerts")
SUMMARY_ORDER = (
    "share_drifted", "dataset_drift", "drifted_columns", "prediction_drift", "prediction_statistic",
    "quality_problems", "n_labelled", *CLASSIFICATION_METRICS, *REGRESSION_METRICS,
    "n_requests", "error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "notes", "errors",
)  # fmt: skip
NUMERIC = ("share_drifted", "prediction_statistic", *CLASSIFICATION_METRICS, *REGRESSION_METRICS, *OPERATIONS_FIGURES)
HISTORY_COLUMNS = ("time", "column", "test", "statistic", "p_value", "drifted", "share_drifted")


def search_monitor_results(
    name: str,
    since: Moment = None,
    until: Moment = None,
    *,
    max_results: int = 1000,
    client: TrackingClient | None = None,
) -> pd.DataFrame:
    """The monitor's results, oldest first, one row each: time (UTC), result_id, monitor, model, version,
    status, alerts, then the headline figures (share_drifted, drifted_columns, quality_problems, accuracy,
    error_rate, latency_p99_ms, …; a figure the check did not compute is missing).

    ``since`` and ``until`` are datetimes, ISO strings or milliseconds; ``max_results`` keeps the newest.
    """
    return results_frame(_results(name, since, until, max_results, client))


def monitor_history(
    name: str,
    since: Moment = None,
    until: Moment = None,
    *,
    max_results: int = 1000,
    client: TrackingClient | None = None,
) -> pd.DataFrame:
    """Drift over time, one row per check and column: time, column, test, statistic, p_value, drifted,
    share_drifted (the frame ``render_report(history=...)`` plots; the prediction column is included)."""
    return history_frame(_results(name, since, until, max_results, client))


def write_monitor_report(
    name: str,
    path: str | Path,
    since: Moment = None,
    until: Moment = None,
    *,
    max_results: int = 1000,
    title: str | None = None,
    client: TrackingClient | None = None,
) -> Path:
    """Write one self-contained HTML report of the monitor and return its path: the latest check's reference
    and current distributions and drift table, its data-quality table, drift scores over time, and
    performance and operations over time, all from the stored results.

    Raises:
        MonitorNotFoundError: no monitor has that name.
        NotFoundError: the monitor has no result in the range yet.
    """
    from loopml.monitoring.report import render_report
    from loopml.monitoring.report_responsible import responsible_history

    results = _results(name, since, until, max_results, client)
    if not results:
        if since is None and until is None:
            raise NotFoundError(f"Monitor {name!r} has no results yet: run `loopml monitor check {name}` first.")
        raise NotFoundError(
            f"Monitor {name!r} has no results between {since if since is not None else 'its first'} and "
            f"{until if until is not None else 'now'}: widen the range, or leave it out for every result."
        )
    latest_drift = next(
        (r for r in reversed(results) if r.figures.get("data_drift") or r.figures.get("prediction_drift")), None
    )
    latest_quality = next((r for r in reversed(results) if r.figures.get("quality")), None)
    latest_responsible = next((r for r in reversed(results) if r.figures.get("responsible")), None)
    frame = results_frame(results)
    history = history_frame(results)
    last = results[-1]
    version = "" if last.version is None else f" v{last.version}"
    return render_report(
        path,
        drift=None if latest_drift is None else drift_report(latest_drift.figures),
        quality=None if latest_quality is None else quality_report(latest_quality.figures["quality"]),
        performance=_over_time(frame, (*CLASSIFICATION_METRICS, *REGRESSION_METRICS), "n_labelled"),
        history=history if len(history) else None,
        operations=_over_time(frame, OPERATIONS_FIGURES, "n_requests"),
        responsible=None if latest_responsible is None else latest_responsible.figures["responsible"],
        responsible_history=responsible_history(frame),
        title=title or f"Monitor {name}: {last.model}{version}, {len(results)} check(s)",
    )


# -- frames ---------------------------------------------------------------------------------------------------


def results_frame(results: Sequence[MonitorResult]) -> pd.DataFrame:
    """Stored results as the frame of :func:`search_monitor_results`."""
    rows = []
    for r in results:
        row: dict[str, Any] = {"time": r.time, "result_id": r.result_id, "monitor": r.monitor, "model": r.model,
                               "version": r.version, "status": r.status}  # fmt: skip
        summary = dict(r.summary)
        row["alerts"] = ", ".join(summary.pop("alerts", []) or [])
        for key in ("drifted_columns", "notes", "errors"):
            if isinstance(summary.get(key), list):
                summary[key] = ("; " if key != "drifted_columns" else ", ").join(map(str, summary[key]))
        row.update(summary)
        rows.append(row)
    known = [c for c in SUMMARY_ORDER if any(c in row for row in rows)]
    other = sorted({k for row in rows for k in row} - {*LEADING, *known})
    frame = pd.DataFrame(rows, columns=[*LEADING, *known, *other])
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    for column in (c for c in NUMERIC if c in frame.columns):
        frame[column] = pd.to_numeric(frame[column].astype(object).where(frame[column].notna()), errors="coerce")
    return frame


def history_frame(results: Sequence[MonitorResult]) -> pd.DataFrame:
    """Drift rows of every stored result (see :func:`monitor_history`)."""
    rows = []
    for r in results:
        figures = r.figures.get("data_drift") or {}
        columns = list(figures.get("columns") or [])
        if r.figures.get("prediction_drift"):
            columns.append(r.figures["prediction_drift"])
        for column in columns:
            rows.append({"time": r.time, "column": column["column"], "test": column["test"],
                         "statistic": column.get("statistic"), "p_value": column.get("p_value"),
                         "drifted": bool(column["drifted"]), "share_drifted": figures.get("share_drifted")})  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame.astype({"statistic": "float64", "p_value": "float64", "share_drifted": "float64"})


# -- reports rebuilt from stored figures ----------------------------------------------------------------------


def drift_report(figures: Mapping[str, Any]) -> DriftReport:
    """The DriftReport a check stored (``figures["data_drift"]`` and ``figures["prediction_drift"]``)."""
    data = figures.get("data_drift") or {}
    predicted = figures.get("prediction_drift")
    return DriftReport(
        tuple(_column(c) for c in data.get("columns") or ()),
        None if not predicted else _column(predicted),
        float(data.get("drift_share") or 0.5),
    )


def quality_report(data: Mapping[str, Any]) -> QualityReport:
    """The QualityReport a check stored (``figures["quality"]``, from ``QualityReport.to_dict``)."""
    columns = tuple(
        ColumnQuality(
            **{k: v for k, v in c.items() if k != "unseen_values"}, unseen_values=tuple(c.get("unseen_values") or ())
        )
        for c in data.get("columns") or ()
    )
    problems = tuple(QualityProblem(**p) for p in data.get("problems") or ())
    return QualityReport(columns, problems, tuple(data.get("unexpected_columns") or ()), int(data.get("n_reference") or 0),
                         int(data.get("n_current") or 0))  # fmt: skip


def _column(row: Mapping[str, Any]) -> ColumnDrift:
    dist = row.get("distribution")
    distribution = None
    if dist:
        distribution = Distribution(
            None if dist.get("edges") is None else tuple(dist["edges"]),
            None if dist.get("labels") is None else tuple(dist["labels"]),
            tuple(dist.get("reference") or ()),
            tuple(dist.get("current") or ()),
        )
    nan = float("nan")
    return ColumnDrift(
        column=row["column"],
        kind=row["kind"],
        test=row["test"],
        statistic=nan if row.get("statistic") is None else float(row["statistic"]),
        p_value=nan if row.get("p_value") is None else float(row["p_value"]),
        threshold=float(row["threshold"]),
        drifted=bool(row["drifted"]),
        n_reference=int(row["n_reference"]),
        n_current=int(row["n_current"]),
        distribution=distribution,
    )


def _over_time(frame: pd.DataFrame, metrics: Sequence[str], count: str) -> pd.DataFrame | None:
    """One row per check that measured ``metrics``: ``bucket`` (the check's time), ``n`` and the metrics."""
    present = [m for m in metrics if m in frame.columns]
    if not present or count not in frame.columns:
        return None
    rows = frame[frame[present].notna().any(axis=1)]
    if rows.empty:
        return None
    table = rows[["time", count, *present]].rename(columns={"time": BUCKET, count: "n"})
    return table.astype({c: "float64" for c in present}).reset_index(drop=True)


def _results(
    name: str, since: Moment, until: Moment, max_results: int, client: TrackingClient | None
) -> list[MonitorResult]:
    from loopml.monitoring.monitors import _tracking
    from loopml.timestamps import to_ms

    store = _tracking(client).store
    store.monitoring.get_monitor(name)  # MonitorNotFoundError with a suggestion, rather than an empty frame
    return store.monitoring.list_results(name, since=to_ms(since), until=to_ms(until), max_results=max_results)
