"""One self-contained HTML monitoring report: drift, data quality, performance and drift over time.

The file holds everything it shows: CSS in a ``<style>`` element, figures as
inline SVG (:mod:`loopml.monitoring.plots`), no scripts and no link to anything
outside it, so it opens offline, can be mailed or stored as a run artifact, and
cannot leak what it shows to a third-party server.

The page is ``loopml/templates/monitoring/report.html`` on the shared
``base.html`` (:mod:`loopml.templates`); this module turns the reports into
rows of text for it. The template escapes every string, so column names and
categories from the data stay text; only the SVG drawn here is passed as markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

from loopml.errors import InvalidValueError
from loopml.monitoring.drift import ColumnDrift, DriftReport
from loopml.monitoring.grouping import BUCKET
from loopml.monitoring.operations import OPERATIONS_COLUMNS
from loopml.monitoring.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS
from loopml.monitoring.plots import distribution_svg, lines_svg
from loopml.monitoring.quality import QualityReport
from loopml.templates import environment

Row = tuple[list[str], bool]  # a table row's cells, and whether it is flagged


def render_report(
    path: str | Path,
    drift: DriftReport | None = None,
    quality: QualityReport | None = None,
    performance: pd.DataFrame | None = None,
    history: pd.DataFrame | Mapping[Any, DriftReport] | None = None,
    title: str = "loopml monitoring report",
    *,
    operations: pd.DataFrame | None = None,
    responsible: Mapping[str, Any] | None = None,
    responsible_history: pd.DataFrame | None = None,
) -> Path:
    """Write the report to ``path`` (parent folders are created) and return the path.

    Args:
        drift: a :class:`DriftReport`: its table and one distribution plot per column.
        quality: a :class:`QualityReport`: its counts and problems.
        performance: the frame of :func:`loopml.monitoring.performance.performance` (with ``bucket``):
            each metric over time, one line per segment.
        history: drift over time: a mapping time -> DriftReport, or a frame with the columns ``time``,
            ``column`` and ``statistic`` (what :func:`drift_history` returns).
        operations: the frame of :func:`loopml.monitoring.operations.operations`: requests, error
            rate and latency over time.
        responsible: a check's ``responsible`` figures (fairness by group, business metrics, attribution
            drift; see ``loopml.monitoring.responsible``), and ``responsible_history`` their summary over time.
    """
    from loopml.monitoring.report_responsible import responsible_section

    extra = responsible_section(responsible, responsible_history)
    if drift is None and quality is None and performance is None and history is None and operations is None and not extra:
        raise InvalidValueError("Nothing to report: pass drift=, quality=, performance=, history= or operations=.")
    from loopml import __version__

    page = (
        environment()
        .get_template("monitoring/report.html")
        .render(
            title=title,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            cards=_cards(drift, quality),
            drift=None if drift is None else _drift_section(drift),
            quality=None if quality is None else _quality_section(quality),
            over_time=[
                _over_time(heading, frame, what)
                for heading, frame, what in (
                    ("Performance over time", performance, "performance"),
                    ("Traffic, errors and latency", operations, "operations"),
                )
                if frame is not None
            ],
            history=None if history is None else _history_section(history),
            responsible=extra,
        )
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def drift_history(reports: Mapping[Any, DriftReport]) -> pd.DataFrame:
    """Stack reports taken at different times into one frame: time, column, test, statistic, p_value, drifted,
    share_drifted (the report's). Feed it to ``render_report(history=...)`` or plot it."""
    frames = [
        report.to_frame().assign(time=pd.Timestamp(when), share_drifted=report.share_drifted)
        for when, report in reports.items()
    ]
    if not frames:
        return pd.DataFrame(columns=["time", "column", "test", "statistic", "p_value", "drifted", "share_drifted"])
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[["time", "column", "test", "statistic", "p_value", "drifted", "share_drifted"]]


# -- sections ----------------------------------------------------------------------------------------------


def _cards(drift: DriftReport | None, quality: QualityReport | None) -> list[tuple[str, str, bool]]:
    cards = []
    if drift is not None:
        cards.append(("Dataset", "drift" if drift.dataset_drift else "no drift", drift.dataset_drift))
        cards.append(
            (
                "Drifted columns",
                f"{len(drift.drifted_columns)} of {len(drift.columns)} ({drift.share_drifted:.0%})",
                drift.dataset_drift,
            )
        )
        if drift.prediction is not None:
            cards.append(("Prediction", "drift" if drift.prediction.drifted else "no drift", drift.prediction.drifted))
    if quality is not None:
        cards.append(("Quality problems", str(len(quality.problems)), not quality.ok))
    return cards


def _drift_section(report: DriftReport) -> dict[str, Any]:
    return {
        "drift_share": f"{report.drift_share:.0%}",
        "share_drifted": f"{report.share_drifted:.0%}",
        "head": ["column", "kind", "test", "statistic", "p-value", "threshold", "drifted", "n reference", "n current"],
        "rows": [_drift_row(result, result is report.prediction) for result in report.results],
        "figures": [
            Markup(distribution_svg(r.distribution, _figure_title(r)))
            for r in report.results
            if r.distribution is not None
        ],
    }


def _drift_row(result: ColumnDrift, is_prediction: bool) -> Row:
    name = f"{result.column} (prediction)" if is_prediction else result.column
    cells = [
        name,
        result.kind,
        result.test,
        _number(result.statistic),
        _number(result.p_value),
        _number(result.threshold),
        "yes" if result.drifted else "no",
        f"{result.n_reference:,}",
        f"{result.n_current:,}",
    ]
    return cells, result.drifted


def _figure_title(result: ColumnDrift) -> str:
    verdict = "drifted" if result.drifted else "stable"
    return f"{result.column} — {result.test} {_number(result.statistic)} ({verdict})"


def _quality_section(report: QualityReport) -> dict[str, Any]:
    head = [
        "column",
        "expected",
        "present",
        "missing",
        "missing share",
        "reference missing",
        "out of range",
        "unseen",
        "type violations",
        "constant",
    ]
    flagged = {p.column for p in report.problems}
    rows = [
        (
            [
                c.column,
                c.expected,
                "yes" if c.present else "no",
                f"{c.missing:,}",
                f"{c.missing_share:.1%}",
                f"{c.reference_missing_share:.1%}",
                f"{c.out_of_range:,}",
                f"{c.unseen:,}",
                f"{c.type_violations:,}",
                "yes" if c.constant else "no",
            ],
            c.column in flagged,
        )
        for c in report.columns
    ]
    problems = [([p.column, p.check, f"{p.count:,}", f"{p.share:.1%}", p.message], True) for p in report.problems]
    return {
        "n_current": f"{report.n_current:,}",
        "n_reference": f"{report.n_reference:,}",
        "problem_head": ["column", "check", "count", "share", "what"],
        "problems": problems,
        "head": head,
        "rows": rows,
    }


def _over_time(heading: str, frame: pd.DataFrame, what: str) -> dict[str, Any]:
    if BUCKET not in frame.columns:
        raise InvalidValueError(
            f"The {what} frame needs a {BUCKET!r} column: compute it with bucket='1h' (or another offset)."
        )
    known = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, *OPERATIONS_COLUMNS)
    keys = [c for c in frame.columns if c not in (BUCKET, *known)]
    if what == "operations":
        panels = [
            ("requests", ["n"]),
            ("error rate (4xx + 5xx)", ["error_rate"]),
            ("latency, ms", ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]),
        ]
    else:
        panels = [(metric, [metric]) for metric in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)]
    figure = lines_svg(frame, BUCKET, panels, keys)
    shown = frame.copy()
    if pd.api.types.is_datetime64_any_dtype(shown[BUCKET].dtype):
        shown[BUCKET] = shown[BUCKET].dt.strftime("%Y-%m-%d %H:%M")  # the bucket start, UTC when the times were
    shown[BUCKET] = shown[BUCKET].astype(str)
    rows = [([_cell(v) for v in row], False) for row in shown.itertuples(index=False)]
    return {
        "heading": heading,
        "figure": Markup(figure),
        "head": [str(c) for c in shown.columns],
        "rows": rows,
        "text_columns": 1 + len(keys),
    }


def _history_section(history: pd.DataFrame | Mapping[Any, DriftReport]) -> dict[str, Markup]:
    frame = drift_history(history) if isinstance(history, Mapping) else history
    missing = {"time", "column", "statistic"} - set(frame.columns)
    if missing:
        raise InvalidValueError(f"The history frame lacks the column(s) {', '.join(sorted(missing))}.")
    wide = frame.pivot_table(index="time", columns="column", values="statistic", aggfunc="last").reset_index()
    columns = [c for c in wide.columns if c != "time"]
    long = wide.melt(id_vars="time", value_vars=columns, var_name="column", value_name="statistic")
    figure = lines_svg(long, "time", [("drift statistic per column", ["statistic"])], ["column"])
    share = ""
    if "share_drifted" in frame.columns:
        per_time = frame.groupby("time", as_index=False)[["share_drifted"]].last()
        share = lines_svg(per_time, "time", [("share of drifted columns", ["share_drifted"])])
    return {"figure": Markup(figure), "share": Markup(share)}


# -- cells ----------------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == 0:
        return "0"
    return f"{value:.3g}" if abs(value) < 1e-3 else f"{value:.4f}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    return str(value)
