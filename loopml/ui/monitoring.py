"""Monitoring pages: every monitor with its last status, and a monitor's drift, performance, alerts and report.

``/monitors`` is two queries whatever the number of monitors: the monitors,
and the newest result of each (``MonitoringStore.latest_results``). A monitor's
open alerts are the alerts its latest check raised: a later check that comes
back ok closes them, so the count is read off that result's summary.

``/monitors/<name>`` reads the monitor's newest ``MAX_CHECKS`` results (one
query) and its alerts (one query), and draws from the stored figures alone:

- drift per column over time as a heatmap, an HTML table whose cells carry a
  fixed set of CSS classes (drifted, stable, not checked; no inline style under
  the strict CSP) and the test, statistic and p-value in their ``title``;
- performance and operations over time as uPlot charts; the data rides in a
  ``<script type="application/json">`` block (data, never run) that
  ``/ui/static/monitoring.js`` draws;
- the latest drift check's reference and current distributions, the SVG the
  monitoring report draws, as ``data:`` images (matplotlib's SVG styles itself inline);
- the alerts, newest first.

``/monitors/<name>/report`` serves the self-contained HTML report
(``write_monitor_report``). It inlines its CSS in a ``<style>`` element, which
the UI's policy (``style-src 'self'``) would block, so that one answer carries
its own ``REPORT_CSP``: inline style and ``data:`` images only, no script at all,
nothing fetched, no framing. The report escapes every string from the data, so
allowing inline style there lets no one run code.
"""

from __future__ import annotations

import base64
import math
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopml.entities.monitoring import Alert, MonitorResult
from loopml.monitoring.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS
from loopml.monitoring.plots import distribution_svg
from loopml.monitoring.results import drift_report, write_monitor_report
from loopml.store import Store
from loopml.tracking.client import TrackingClient
from loopml.ui import table
from loopml.ui.errors import PageRoute
from loopml.ui.render import page
from loopml.ui.responsible import monitor_view

router = APIRouter(route_class=PageRoute)
#: Most checks a monitor page reads (the heatmap's windows and the charts' points); the page says when it stops.
MAX_CHECKS = 60
#: Most alerts a monitor page lists, newest first.
MAX_ALERTS = 200
#: The report's own policy: its inline <style> and data: images, nothing else (see the module docstring).
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
CHARTS = (
    ("performance", "Performance (labelled requests)", (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)),
    ("error-rate", "Error rate", ("error_rate",)),
    ("latency", "Latency, ms", ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")),
)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _open_alerts(result: MonitorResult | None) -> int:
    return 0 if result is None else len(result.summary.get("alerts") or [])


@router.get("/monitors", include_in_schema=False)
def monitors_page(request: Request) -> Response:
    store = _store(request)
    monitors = store.monitoring.list_monitors()
    latest = {r.monitor: r for r in store.monitoring.latest_results()}
    rows = [{"monitor": m, "last": latest.get(m.name), "open": _open_alerts(latest.get(m.name))} for m in monitors]
    return page(request, "monitors.html", title="Monitors · loopml", rows=rows, format_time=table.format_time)


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.3g}"


def _heatmap(results: list[MonitorResult]) -> dict[str, Any]:
    """Columns x checks: each cell's CSS class (drifted, stable, none) and its tooltip."""
    checks = [
        r for r in results if (r.figures.get("data_drift") or {}).get("columns") or r.figures.get("prediction_drift")
    ]
    names: list[str] = []
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for r in checks:
        columns = list((r.figures.get("data_drift") or {}).get("columns") or [])
        if r.figures.get("prediction_drift"):
            columns.append(
                {**r.figures["prediction_drift"], "column": f"{r.figures['prediction_drift']['column']} (prediction)"}
            )
        for c in columns:
            if c["column"] not in names:
                names.append(c["column"])
            verdict = "drifted" if c["drifted"] else "stable"
            cells[(c["column"], r.result_id)] = {
                "class": "drift-yes" if c["drifted"] else "drift-no",
                "text": _number(c.get("statistic")),
                "title": f"{c['column']} at {table.format_time(r.time)}: {c['test']} statistic "
                f"{_number(c.get('statistic'))}, p-value {_number(c.get('p_value'))}, threshold "
                f"{_number(c.get('threshold'))}: {verdict}",
            }
    rows = [
        {"column": name, "cells": [cells.get((name, r.result_id), {"class": "drift-none", "text": "", "title":
                                   f"{name}: not checked at {table.format_time(r.time)}"}) for r in checks]}
        for name in names
    ]  # fmt: skip
    return {"checks": [{"time": table.format_time(r.time), "id": r.result_id} for r in checks], "rows": rows}


def _charts(results: list[MonitorResult]) -> list[dict[str, Any]]:
    """uPlot's data for each chart with a figure: x in seconds, one series per metric the checks stored."""
    charts = []
    for chart_id, title, metrics in CHARTS:
        measured = [r for r in results if any(isinstance(r.summary.get(m), int | float) for m in metrics)]
        present = [m for m in metrics if any(isinstance(r.summary.get(m), int | float) for r in measured)]
        if not present:
            continue
        series = {m: [_finite(r.summary.get(m)) for r in measured] for m in present}
        charts.append({"id": chart_id, "title": title, "x": [r.time / 1000 for r in measured], "series": series})
    return charts


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _distributions(results: list[MonitorResult]) -> tuple[MonitorResult | None, list[dict[str, str]], list[list[str]]]:
    """The latest drift check, its reference-vs-current figures, and its table rows (for columns without one)."""
    latest = next(
        (r for r in reversed(results) if r.figures.get("data_drift") or r.figures.get("prediction_drift")), None
    )
    if latest is None:
        return None, [], []
    report = drift_report(latest.figures)
    figures = [
        {"alt": f"{c.column}: reference vs current", "src": _data_uri(distribution_svg(c.distribution, _caption(c)))}
        for c in report.results
        if c.distribution is not None
    ]
    rows = [
        [c.column, c.kind, c.test, _number(c.statistic), _number(c.p_value), "yes" if c.drifted else "no",
         f"{c.n_reference:,}", f"{c.n_current:,}"]
        for c in report.results
    ]  # fmt: skip
    return latest, figures, rows


def _caption(column: Any) -> str:
    return f"{column.column} — {column.test} {_number(column.statistic)}"


def _data_uri(svg: str) -> str:
    """Matplotlib's SVG styles itself inline, which the page's CSP forbids; as a ``data:`` image it is its own
    document (``img-src 'self' data:``), drawn as a picture that runs nothing."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _alerts(store: Store, name: str) -> tuple[list[Alert], bool]:
    found = store.monitoring.list_alerts(monitor=name, max_results=MAX_ALERTS + 1)
    return list(reversed(found[:MAX_ALERTS])), len(found) > MAX_ALERTS


@router.get("/monitors/{name}", include_in_schema=False)
def monitor_page(request: Request, name: str) -> Response:
    store = _store(request)
    monitor = store.monitoring.get_monitor(name)
    results = store.monitoring.list_results(name, max_results=MAX_CHECKS)
    latest_drift, figures, drift_rows = _distributions(results)
    alerts, more_alerts = _alerts(store, name)
    return page(
        request,
        "monitor.html",
        title=f"{name} · monitor · loopml",
        monitor=monitor,
        results=results,
        last=results[-1] if results else None,
        capped=len(results) == MAX_CHECKS,
        heatmap=_heatmap(results),
        charts=_charts(results),
        latest_drift=latest_drift,
        figures=figures,
        drift_rows=drift_rows,
        alerts=alerts,
        more_alerts=more_alerts,
        open_alerts=_open_alerts(results[-1] if results else None),
        responsible=monitor_view(results),
        format_time=table.format_time,
    )


@router.get("/monitors/{name}/report", include_in_schema=False)
def monitor_report(request: Request, name: str) -> Response:
    """The self-contained HTML report of the monitor's stored results, under its own policy."""
    with tempfile.TemporaryDirectory(prefix="loopml-report-") as folder:
        path = write_monitor_report(name, Path(folder) / "report.html", client=TrackingClient(_store(request)))
        html = path.read_text(encoding="utf-8")
    return Response(html, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": REPORT_CSP})
