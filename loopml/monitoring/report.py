"""One self-contained HTML monitoring report: drift, data quality, performance and drift over time.

The file holds everything it shows: CSS in a ``<style>`` element, figures as
inline SVG (:mod:`loopml.monitoring.plots`), no scripts and no link to anything
outside it, so it opens offline, can be mailed or stored as a run artifact, and
cannot leak what it shows to a third-party server. Every string taken from the
data (column names, categories) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.errors import InvalidValueError
from loopml.monitoring.drift import ColumnDrift, DriftReport
from loopml.monitoring.grouping import BUCKET
from loopml.monitoring.operations import OPERATIONS_COLUMNS
from loopml.monitoring.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS
from loopml.monitoring.plots import distribution_svg, lines_svg
from loopml.monitoring.quality import QualityReport

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1f2328; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.meta { color: #656d76; font-size: .85rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem 1rem; min-width: 10rem; }
.card .value { font-size: 1.3rem; font-weight: 600; }
.bad { color: #b42318; } .good { color: #1a7f37; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border-bottom: 1px solid #d0d7de; padding: .25rem .6rem; text-align: right; }
th { background: #f6f8fa; } td.text, th.text { text-align: left; }
tr.flag td { background: #fff1f0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
.wide svg { max-width: 100%; height: auto; }
"""


def render_report(
    path: str | Path,
    drift: DriftReport | None = None,
    quality: QualityReport | None = None,
    performance: pd.DataFrame | None = None,
    history: pd.DataFrame | Mapping[Any, DriftReport] | None = None,
    title: str = "loopml monitoring report",
    *,
    operations: pd.DataFrame | None = None,
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
    """
    if drift is None and quality is None and performance is None and history is None and operations is None:
        raise InvalidValueError("Nothing to report: pass drift=, quality=, performance=, history= or operations=.")
    sections = [_header(title, drift, quality)]
    if drift is not None:
        sections.append(_drift_section(drift))
    if quality is not None:
        sections.append(_quality_section(quality))
    if performance is not None:
        sections.append(_over_time("Performance over time", performance, "performance"))
    if operations is not None:
        sections.append(_over_time("Traffic, errors and latency", operations, "operations"))
    if history is not None:
        sections.append(_history_section(history))
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
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


def _header(title: str, drift: DriftReport | None, quality: QualityReport | None) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cards = []
    if drift is not None:
        verdict = "drift" if drift.dataset_drift else "no drift"
        cards.append(_card("Dataset", verdict, drift.dataset_drift))
        cards.append(
            _card(
                "Drifted columns",
                f"{len(drift.drifted_columns)} of {len(drift.columns)} ({drift.share_drifted:.0%})",
                drift.dataset_drift,
            )
        )
        if drift.prediction is not None:
            cards.append(
                _card("Prediction", "drift" if drift.prediction.drifted else "no drift", drift.prediction.drifted)
            )
    if quality is not None:
        cards.append(_card("Quality problems", str(len(quality.problems)), not quality.ok))
    from loopml import __version__

    return (
        f'<h1>{_e(title)}</h1>\n<p class="meta">Generated {now} by loopml {_e(__version__)}.</p>\n'
        f'<div class="cards">{"".join(cards)}</div>'
    )


def _card(label: str, value: str, bad: bool) -> str:
    return (
        f'<div class="card"><div>{_e(label)}</div><div class="value {"bad" if bad else "good"}">{_e(value)}</div></div>'
    )


def _drift_section(report: DriftReport) -> str:
    rows = [_drift_row(result, result is report.prediction) for result in report.results]
    head = ["column", "kind", "test", "statistic", "p-value", "threshold", "drifted", "n reference", "n current"]
    figures = [
        f"<figure>{distribution_svg(r.distribution, _figure_title(r))}</figure>"
        for r in report.results
        if r.distribution is not None
    ]
    return (
        "<h2>Drift</h2>\n"
        f"<p>The dataset drifts when at least {report.drift_share:.0%} of the columns drift "
        f"({report.share_drifted:.0%} did). p-value tests flag drift below their threshold, distances at or above it.</p>\n"
        + _table(head, rows, text_columns=3)
        + "\n<h2>Distributions: reference against current</h2>\n"
        + f'<div class="grid">{"".join(figures)}</div>'
    )


def _drift_row(result: ColumnDrift, is_prediction: bool) -> tuple[list[str], bool]:
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


def _quality_section(report: QualityReport) -> str:
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
    problem_table = (
        _table(["column", "check", "count", "share", "what"], problems, text_columns=2, last_text=True)
        if problems
        else '<p class="good">No problems found.</p>'
    )
    return (
        f"<h2>Data quality</h2>\n<p>{report.n_current:,} current rows checked against {report.n_reference:,} reference rows.</p>\n"
        + problem_table
        + "\n"
        + _table(head, rows, text_columns=2)
    )


def _over_time(heading: str, frame: pd.DataFrame, what: str) -> str:
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
    return f'<h2>{_e(heading)}</h2>\n<div class="wide">{figure}</div>\n' + _table(
        list(shown.columns), rows, text_columns=1 + len(keys)
    )


def _history_section(history: pd.DataFrame | Mapping[Any, DriftReport]) -> str:
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
        per_time = frame.groupby("time", as_index=False)["share_drifted"].last()
        share = lines_svg(per_time, "time", [("share of drifted columns", ["share_drifted"])])
    return f'<h2>Drift over time</h2>\n<div class="wide">{figure}</div>\n<div class="wide">{share}</div>'


# -- HTML helpers ------------------------------------------------------------------------------------------


def _table(
    head: Sequence[str], rows: Sequence[tuple[list[str], bool]], *, text_columns: int, last_text: bool = False
) -> str:
    def cls(i: int) -> str:
        return ' class="text"' if i < text_columns or (last_text and i == len(head) - 1) else ""

    header = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(head))
    flagged = '<tr class="flag">'
    body = "".join(
        (flagged if flag else "<tr>") + "".join(f"<td{cls(i)}>{_e(v)}</td>" for i, v in enumerate(cells)) + "</tr>"
        for cells, flag in rows
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


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


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
