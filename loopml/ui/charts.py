"""Metric charts: ``/runs/<id>/metrics/<key>/series``, a metric's points for uPlot, downsampled by the store.

The store answers at most ``points`` points over the asked x range: every
point when the range holds that few, else the min and the max of each of
``points // 2`` equal-width buckets, computed by the database
(``TrackingStore.get_metric_series``), so a million-point metric is never read
whole. Each bucket's two points are put in the order the curve runs
(descending where its neighbours' means fall), so a smooth curve stays a line
and a noisy one becomes its envelope. The answer says how many points the
range holds and how many it shows: the page never downsamples silently.
NaN and ±inf travel as ``null`` (a gap in the line) and are counted.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from loopml.entities.series import MetricBucket, MetricSeries
from loopml.names import check_key
from loopml.store import Store
from loopml.ui.errors import PageRoute

router = APIRouter(route_class=PageRoute)
#: Points a chart may ask for: about one per pixel of a wide chart.
MAX_POINTS = 10_000
_I64 = 2**63


def _y(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _bucket_points(buckets: tuple[MetricBucket, ...]) -> tuple[list[int], list[float | None]]:
    """Each bucket's min and max as two points, in the order the curve runs through them."""
    means = [b.mean if math.isfinite(b.mean) else None for b in buckets]
    xs: list[int] = []
    ys: list[float | None] = []
    for i, b in enumerate(buckets):
        if b.count == b.nan_count:  # nothing but NaN: a gap
            xs.append(b.x_first)
            ys.append(None)
            continue
        if b.count == 1 or b.low == b.high:
            xs.append(b.x_first)
            ys.append(_y(b.low))
            continue
        before = next((m for m in reversed(means[:i]) if m is not None), means[i])
        after = next((m for m in means[i + 1 :] if m is not None), means[i])
        falling = before is not None and after is not None and after < before
        first, second = (b.high, b.low) if falling else (b.low, b.high)
        xs += [b.x_first, b.x_last]
        ys += [_y(first), _y(second)]
    return xs, ys


def series_json(series: MetricSeries, *, run_id: str, requested: int) -> dict[str, Any]:
    """A series as uPlot's columns plus what the page says about it."""
    if series.downsampled:
        xs, ys = _bucket_points(series.buckets)
        nan = sum(b.nan_count for b in series.buckets)
        inf = None  # buckets keep ±inf only as a bucket's extreme: counted as gaps below
    else:
        xs = [p.step if series.x == "step" else p.timestamp for p in series.points]
        ys = [_y(p.value) for p in series.points]
        nan = sum(1 for p in series.points if math.isnan(p.value))
        inf = sum(1 for p in series.points if math.isinf(p.value))
    return {
        "run_id": run_id,
        "key": series.key,
        "x": series.x,
        "total": series.total,
        "shown": len(xs),
        "requested": requested,
        "downsampled": series.downsampled,
        "method": "minmax" if series.downsampled else "none",
        "x_min": series.x_min,
        "x_max": series.x_max,
        "nan": nan,
        "inf": inf,
        "gaps": sum(1 for y in ys if y is None),
        "data": [xs, ys],
    }


@router.get("/runs/{run_id}/metrics/{key:path}/series", include_in_schema=False)
def metric_series(
    request: Request,
    run_id: str,
    key: str,
    x: Literal["step", "time"] = "step",
    x_from: Annotated[int | None, Query(alias="from", ge=-_I64, le=_I64 - 1)] = None,
    x_to: Annotated[int | None, Query(alias="to", ge=-_I64, le=_I64 - 1)] = None,
    points: Annotated[int, Query(ge=2, le=MAX_POINTS)] = 1000,
) -> Response:
    store: Store = request.app.state.store
    series = store.tracking.get_metric_series(
        run_id, check_key(key, "Metric"), x=x, x_from=x_from, x_to=x_to, max_points=points
    )
    return JSONResponse(series_json(series, run_id=run_id, requested=points))
