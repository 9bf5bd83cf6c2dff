"""Compare runs: ``/compare?run=<id>&run=<id>…``, the page the runs table's checkboxes submit to.

The runs are read with one search (``run_id IN (…)``, across every
experiment), never one request per run, and at most ``MAX_RUNS`` of them:
past that the page says how many were asked and compares the first ones.
It shows the metric charts (``metric_charts.html`` and ``charts.js``, one
series per run, each downsampled by the server), a table of params and latest
metrics with one column per run whose differing rows are marked, a
param-vs-metric scatter and a parallel-coordinates view. Both plots are SVG
drawn here (geometry computed in Python, markup in the template, so every
label is escaped) and work without script; changing the scatter's selects
re-fetches the page with htmx and swaps in only the scatter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from loopml.entities.search import Comparison
from loopml.entities.tracking import Run
from loopml.store import Store
from loopml.ui import table
from loopml.ui.errors import PageRoute
from loopml.ui.render import page

router = APIRouter(route_class=PageRoute)
#: Most runs one compare page shows.
MAX_RUNS = 50
#: Axes of the parallel-coordinates view when none are chosen (the columns whose values differ, first).
DEFAULT_AXES = 8
#: The series colours of charts.js, in the same order, so a run has one colour on the whole page.
COLOURS = ("#0969da", "#bf3989", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#116329", "#0550ae", "#953800", "#57606a")

_SCATTER = {"width": 560, "height": 360, "left": 64, "right": 24, "top": 16, "bottom": 56}
_PARALLEL = {"height": 360, "top": 40, "bottom": 40, "side": 70, "gap": 150}


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # pixel position along the axis
    label: str


@dataclass(frozen=True, slots=True)
class Axis:
    """How one column's values map to [0, 1]: linear over its range, or evenly spaced categories."""

    key: str
    numeric: bool
    low: float
    high: float
    categories: tuple[str, ...]
    missing: bool  # some run has no value: they sit at 0, below the others

    def position(self, value: str | None) -> float:
        base = 0.12 if self.missing else 0.0
        if value is None:
            return 0.0
        if self.numeric:
            share = 0.5 if self.high == self.low else (float(value) - self.low) / (self.high - self.low)
        else:
            n = len(self.categories)
            share = 0.5 if n == 1 else self.categories.index(value) / (n - 1)
        return base + (1 - base) * share

    def ticks(self, length: float, flip: bool) -> list[Tick]:
        """Labels along an axis ``length`` pixels long (``flip``: 0 at the far end, as a vertical SVG axis runs)."""
        if self.numeric:
            values = [self.low] if self.high == self.low else [self.low, (self.low + self.high) / 2, self.high]
            pairs = [(self.position(repr(v)), table.format_number(v)) for v in values]
        else:
            pairs = [(self.position(c), c) for c in self.categories]
        if self.missing:
            pairs.append((0.0, "none"))
        return [Tick(at=round((1 - p if flip else p) * length, 1), label=label) for p, label in pairs]


def _value(run: Run, column: str) -> str | None:
    kind, _, key = column.partition(".")
    if kind == "metrics":
        metric = run.metrics.get(key)
        return None if metric is None or not math.isfinite(metric) else repr(metric)
    return run.params.get(key)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def make_axis(column: str, values: Sequence[str | None]) -> Axis:
    present = [v for v in values if v is not None]
    numeric = bool(present) and all(_is_number(v) for v in present)
    numbers = [float(v) for v in present] if numeric else []
    return Axis(
        key=column,
        numeric=numeric,
        low=min(numbers, default=0.0),
        high=max(numbers, default=0.0),
        categories=() if numeric else tuple(sorted(set(present))),
        missing=len(present) < len(values),
    )


def _differs(values: Sequence[object]) -> bool:
    return len(set(values)) > 1


def _table_rows(runs: Sequence[Run], columns: Sequence[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for column in columns:
        kind, _, key = column.partition(".")
        if kind == "metrics":
            raw: list[object] = [r.metrics.get(key) for r in runs]
            shown = [table.cell(r, column) for r in runs]
        else:
            raw = [r.params.get(key) for r in runs]
            shown = [r.params.get(key, "") for r in runs]
        rows.append({"kind": kind, "key": key, "values": shown, "differs": _differs(raw)})
    return rows


def _scatter(runs: Sequence[Run], colours: Sequence[str], x_key: str, y_key: str) -> dict[str, object]:
    s = _SCATTER
    plot_w, plot_h = s["width"] - s["left"] - s["right"], s["height"] - s["top"] - s["bottom"]
    with_both = [
        (r, c)
        for r, c in zip(runs, colours, strict=True)
        if _value(r, x_key) is not None and _value(r, y_key) is not None
    ]
    x_axis = make_axis(x_key, [_value(r, x_key) for r, _ in with_both])
    y_axis = make_axis(y_key, [_value(r, y_key) for r, _ in with_both])
    points = [
        {
            "run": r,
            "colour": c,
            "cx": round(s["left"] + _pad(x_axis.position(_value(r, x_key))) * plot_w, 1),
            "cy": round(s["top"] + (1 - _pad(y_axis.position(_value(r, y_key)))) * plot_h, 1),
            "x": _value(r, x_key),
            "y": table.cell(r, y_key),
        }
        for r, c in with_both
    ]
    x_ticks = [
        Tick(round(s["left"] + _pad(t.at / plot_w) * plot_w, 1), t.label) for t in x_axis.ticks(plot_w, flip=False)
    ]
    y_ticks = [
        Tick(round(s["top"] + (1 - _pad(1 - t.at / plot_h)) * plot_h, 1), t.label)
        for t in y_axis.ticks(plot_h, flip=True)
    ]
    return {
        "x_key": x_key,
        "y_key": y_key,
        "points": points,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "left_out": len(runs) - len(with_both),
        "box": s,
        "plot_w": plot_w,
        "plot_h": plot_h,
    }


def _pad(share: float) -> float:
    """Keep marks off the frame: [0, 1] into [0.05, 0.95]."""
    return 0.05 + 0.9 * share


def _parallel(runs: Sequence[Run], colours: Sequence[str], columns: Sequence[str]) -> dict[str, object]:
    p = _PARALLEL
    axes = [make_axis(c, [_value(r, c) for r in runs]) for c in columns]
    length = p["height"] - p["top"] - p["bottom"]
    xs = [p["side"] + i * p["gap"] for i in range(len(axes))]
    lines = [
        {
            "run": r,
            "colour": c,
            "points": " ".join(
                f"{x},{round(p['top'] + (1 - axis.position(_value(r, axis.key))) * length, 1)}"
                for x, axis in zip(xs, axes, strict=True)
            ),
        }
        for r, c in zip(runs, colours, strict=True)
    ]
    return {
        "axes": [
            {
                "key": a.key,
                "x": x,
                "ticks": [Tick(round(p["top"] + t.at, 1), t.label) for t in a.ticks(length, flip=True)],
            }
            for a, x in zip(axes, xs, strict=True)
        ],
        "lines": lines,
        "width": 2 * p["side"] + max(len(axes) - 1, 0) * p["gap"],
        "height": p["height"],
        "top": p["top"],
        "bottom": p["height"] - p["bottom"],
    }


def _first_differing(runs: Sequence[Run], columns: Sequence[str]) -> str:
    for column in columns:
        if _differs([_value(r, column) for r in runs]):
            return column
    return columns[0] if columns else ""


def fetch_runs(store: Store, run_ids: Sequence[str]) -> list[Run]:
    """The runs, in the order asked, read by one search across every experiment."""
    if not run_ids:
        return []
    found = store.tracking.search_runs(
        None, Comparison("attribute", "run_id", "in", tuple(run_ids)), (), len(run_ids), None
    )
    by_id = {r.run_id: r for r in found.runs}
    return [by_id[i] for i in run_ids if i in by_id]


@router.get("/compare", include_in_schema=False)
def compare_page(
    request: Request,
    run: Annotated[list[str] | None, Query()] = None,
    sx: str = "",
    sy: str = "",
    axis: Annotated[list[str] | None, Query()] = None,
) -> Response:
    store: Store = request.app.state.store
    asked = list(dict.fromkeys(i.strip() for i in run or [] if i.strip()))
    run_ids = asked[:MAX_RUNS]
    runs = fetch_runs(store, run_ids)
    found = {r.run_id for r in runs}
    missing = [i for i in run_ids if i not in found]
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(runs))]
    params = sorted({f"params.{k}" for r in runs for k in r.params})
    metrics = sorted({f"metrics.{k}" for r in runs for k in r.metrics})
    x_key = sx if sx in params + metrics else _first_differing(runs, params) or (metrics[0] if metrics else "")
    y_key = sy if sy in metrics + params else _first_differing(runs, metrics) or (params[0] if params else "")
    chosen = [a for a in dict.fromkeys(axis or []) if a in params + metrics]
    differing = [c for c in params + metrics if _differs([_value(r, c) for r in runs])]
    axes = chosen or (differing or params + metrics)[:DEFAULT_AXES]
    return page(
        request,
        "compare.html",
        title=f"Compare {len(runs)} runs · loopml",
        runs=runs,
        colours=colours,
        asked=len(asked),
        max_runs=MAX_RUNS,
        missing=missing,
        rows=_table_rows(runs, params + metrics),
        params=params,
        metrics=metrics,
        chart_keys=[m.partition(".")[2] for m in metrics],
        chart_runs=[r.run_id for r in runs],
        chart_names=[[r.run_id, r.info.name] for r in runs],
        scatter=_scatter(runs, colours, x_key, y_key) if runs and x_key and y_key else None,
        axes=axes,
        chosen_axes=chosen,
        parallel=_parallel(runs, colours, axes) if runs and axes else None,
    )
