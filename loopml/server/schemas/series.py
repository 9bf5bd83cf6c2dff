"""The body of ``GET /runs/{run_id}/metrics/series``: a metric reduced for a chart (``MetricSeries``)."""

from __future__ import annotations

from typing import Literal

from loopml.server.schemas.common import Float, Int64, Schema
from loopml.server.schemas.tracking import MetricJson

#: Most points one series request may ask for (a chart needs about one per pixel).
MAX_SERIES_POINTS = 20_000


class MetricBucketJson(Schema):
    x_first: Int64
    x_last: Int64
    count: int
    nan_count: int
    low: Float
    high: Float
    mean: Float


class MetricSeriesOut(Schema):
    key: str
    x: Literal["step", "time"]
    total: int
    x_min: Int64 | None
    x_max: Int64 | None
    points: list[MetricJson]
    buckets: list[MetricBucketJson]
