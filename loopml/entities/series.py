"""A metric's history reduced for a chart: every point when few, else the min and max of each x bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loopml.entities.tracking import Metric

#: What a series is plotted against: the step, or the wall time of the point (ms since the epoch).
SeriesX = Literal["step", "time"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricBucket:
    """The points of one x range of a downsampled series.

    ``low`` and ``high`` are the smallest and largest value among its points
    that are not NaN (±inf included); both are NaN when every point of the
    bucket is NaN. ``mean`` is their mean (NaN likewise), used only to tell
    which way the curve goes. ``x_first``/``x_last`` are the x of its first
    and last point.
    """

    x_first: int
    x_last: int
    count: int
    nan_count: int
    low: float
    high: float
    mean: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSeries:
    """One metric of one run over ``[x_from, x_to]``.

    ``total`` is how many points the range holds. When it is at most the
    ``max_points`` asked for, ``points`` holds them all (by x) and ``buckets``
    is empty; otherwise ``points`` is empty and ``buckets`` holds at most
    ``max_points // 2`` buckets of equal x width, in x order, each standing for
    two points (its min and its max).
    """

    key: str
    x: SeriesX
    total: int
    x_min: int | None  # the x of the first and last point in the range; None when it holds none
    x_max: int | None
    points: tuple[Metric, ...] = ()
    buckets: tuple[MetricBucket, ...] = ()

    @property
    def downsampled(self) -> bool:
        return bool(self.buckets)
