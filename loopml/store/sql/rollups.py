"""A metric's history reduced for a chart, from raw points or from per-block roll-ups (``metric_rollups``).

A long series is cut into equal-width x buckets and each bucket keeps its
points' count, NaN count, min, max and mean (``MetricBucket``). Where those
buckets fall is decided by ``plan_grid`` from the x range alone: the bucket
width is a whole number of blocks of one of the fixed roll-up widths (powers of
4) and the buckets start on a block boundary. So the same request gives the
same buckets whether they are computed from the raw points (``GROUP BY`` over
``metrics``) or by merging whole roll-up blocks: a million-point metric is
read as a few thousand roll-up rows, with the same extremes.

Roll-ups are built from the history the first time a chart asks for a metric
of more than ``BUILD_MIN_POINTS`` points of a run that has ended: a run that
has ended can no longer log points (``RunNotActiveError``) and runs are never
deleted, so they never go stale and need no upkeep on the metric write path.
Building reads the history once (about as long as one raw whole-run chart) in
a write transaction. A running run's charts are computed from its points.

A zoomed step range reads whole blocks from the roll-ups and only the points of
the two partial blocks at its ends (``ix_metrics_run_id_key_step`` finds them).
The points have no timestamp index, so a zoomed *time* range is computed from
the points; the whole time range uses the roll-ups.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, null, select, text

from loopml.entities.series import MetricBucket, MetricSeries, SeriesX
from loopml.entities.tracking import Metric, RunStatus
from loopml.errors import InvalidValueError
from loopml.store.sql import tables as t
from loopml.store.sql.engine import read_transaction, write_transaction

#: Block widths kept per axis, finest first, each 4 times the last: 16 steps .. 2**36 steps; 256 ms .. 2**36 ms
#: (about 2 years). A chart of ``n`` buckets reads between ``n`` and ``4 n`` roll-up rows.
WIDTHS: dict[str, tuple[int, ...]] = {
    "step": tuple(4**k for k in range(2, 19)),
    "time": tuple(4**k for k in range(4, 19)),
}
#: A metric with fewer points is always charted from its points (a few milliseconds at most).
BUILD_MIN_POINTS = 4096

_AXIS_COLUMN = {"step": '"step"', "time": '"timestamp"'}


@dataclass(frozen=True, slots=True)
class Grid:
    """Buckets ``(x - origin) // bucket`` over a range; ``block`` is the roll-up width they are made of (1: none)."""

    block: int
    origin: int
    bucket: int


def plan_grid(low: int, high: int, buckets: int, axis: SeriesX) -> Grid:
    """The buckets for points with x in ``[low, high]``: at most ``buckets`` of them, each whole blocks.

    The coarsest roll-up width that still cuts the range into ``buckets`` blocks or
    more is used, and each bucket takes ``ceil(blocks / buckets)`` of them; a range
    too narrow for any width is cut into buckets of whole x units.
    """
    for width in reversed(WIDTHS[axis]):
        first, last = low // width, high // width
        blocks = last - first + 1
        if blocks >= buckets:
            return Grid(width, first * width, -(-blocks // buckets) * width)
    return Grid(1, low, -(-(high - low + 1) // buckets))


def metric_series(
    engine: Engine,
    run_id: str,
    key: str,
    *,
    x: SeriesX,
    x_from: int | None,
    x_to: int | None,
    max_points: int,
    not_found: Callable[[Connection], Exception],
) -> MetricSeries:
    """``TrackingStore.get_metric_series`` on SQL: from the roll-ups when built, else from the points.

    ``not_found(conn)`` makes the error for a run without that metric (it raises
    RunNotFoundError itself when the run does not exist).
    """
    if x not in ("step", "time"):
        raise InvalidValueError(f"x must be 'step' or 'time', not {x!r}.")
    if max_points < 2:
        raise InvalidValueError(f"max_points must be 2 or more, not {max_points}.")
    with read_transaction(engine) as conn:
        series = _from_rollups(conn, run_id, key, x, x_from, x_to, max_points)
        if series is not None:
            return series
        build = _ended(conn, run_id) and not _built(conn, run_id, key, x) and _long(conn, run_id, key)
        if not build:
            return _from_points(conn, run_id, key, x, x_from, x_to, max_points, not_found)
    if build_rollups(engine, run_id, key):
        with read_transaction(engine) as conn:
            series = _from_rollups(conn, run_id, key, x, x_from, x_to, max_points)
            if series is not None:
                return series
    with read_transaction(engine) as conn:
        return _from_points(conn, run_id, key, x, x_from, x_to, max_points, not_found)


def _long(conn: Connection, run_id: str, key: str) -> bool:
    """Whether the metric has ``BUILD_MIN_POINTS`` points or more (reads at most that many index entries)."""
    m = t.metrics.c
    some = select(m.step).where(m.run_id == run_id, m.key == key).limit(BUILD_MIN_POINTS).subquery()
    return int(conn.execute(select(func.count()).select_from(some)).scalar_one()) >= BUILD_MIN_POINTS


# -- building -----------------------------------------------------------------------------------


def _block_of(expr: str, width: int) -> str:
    """SQL for ``floor(expr / width)`` on integers of either sign (``/`` truncates toward zero on both backends)."""
    return f"CASE WHEN {expr} >= 0 THEN {expr} / {width} ELSE -((-({expr} + 1)) / {width}) - 1 END"


_COLUMNS = (
    '"run_id", "key", "axis", "width", "block", "count", "nan_count", "low", "high", "total", "x_first", "x_last"'
)


#: The sum of the finer blocks' sums, NULL where one of them is: SQLite stores +inf + -inf (NaN) as NULL.
_SUM_TOTALS = "CASE WHEN sum(CASE WHEN tot IS NULL AND c > n THEN 1 ELSE 0 END) > 0 THEN NULL ELSE sum(tot) END"


def build_rollups(engine: Engine, run_id: str, key: str) -> bool:
    """Fill ``metric_rollups`` for one metric of a run that has ended; False when the run is still running.

    Idempotent: nothing is written when the roll-ups exist already (another request built them); two
    requests building at once on PostgreSQL write the same rows, the second one's ``ON CONFLICT DO
    NOTHING`` (SQLite's write lock serialises them before the check).
    """
    with write_transaction(engine) as conn:
        if not _ended(conn, run_id):
            return False
        if _built(conn, run_id, key, "step"):
            return True
        for axis, widths in WIDTHS.items():
            column = _AXIS_COLUMN[axis]
            finest = widths[0]
            conn.execute(
                text(
                    f"INSERT INTO metric_rollups ({_COLUMNS}) "
                    f"SELECT :run_id, :key, :axis, {finest}, blk, count(*), "
                    'sum(CASE WHEN "is_nan" THEN 1 ELSE 0 END), min("value"), max("value"), sum("value"), '
                    "min(x), max(x) "
                    f'FROM (SELECT "value", "is_nan", {column} AS x, {_block_of(column, finest)} AS blk '
                    'FROM metrics WHERE "run_id" = :run_id AND "key" = :key) AS points GROUP BY blk ON CONFLICT DO NOTHING'
                ),
                {"run_id": run_id, "key": key, "axis": axis},
            )
            for finer, width in itertools.pairwise(widths):
                coarser = _block_of('"block"', width // finer)
                conn.execute(
                    text(
                        f"INSERT INTO metric_rollups ({_COLUMNS}) "
                        f"SELECT :run_id, :key, :axis, {width}, blk, sum(c), sum(n), min(lo), max(hi), {_SUM_TOTALS}, "
                        "min(xf), max(xl) "
                        f'FROM (SELECT "count" AS c, "nan_count" AS n, "low" AS lo, "high" AS hi, "total" AS tot, '
                        f'"x_first" AS xf, "x_last" AS xl, {coarser} AS blk '
                        'FROM metric_rollups WHERE "run_id" = :run_id AND "key" = :key AND "axis" = :axis '
                        f'AND "width" = {finer}) AS finer GROUP BY blk ON CONFLICT DO NOTHING'
                    ),
                    {"run_id": run_id, "key": key, "axis": axis},
                )
    return True


def _ended(conn: Connection, run_id: str) -> bool:
    status = conn.execute(select(t.runs.c.status).where(t.runs.c.run_id == run_id)).scalar()
    return status is not None and RunStatus(status).is_terminal


def _built(conn: Connection, run_id: str, key: str, axis: str) -> bool:
    r = t.metric_rollups.c
    query = select(r.block).where(r.run_id == run_id, r.key == key, r.axis == axis, r.width == WIDTHS[axis][-1])
    return conn.execute(query.limit(1)).first() is not None


# -- reading from the roll-ups --------------------------------------------------------------------


@dataclass
class _Acc:
    """A bucket being merged from roll-up blocks and edge points."""

    x_first: int
    x_last: int
    count: int = 0
    nan_count: int = 0
    low: float | None = None
    high: float | None = None
    total: float | None = None

    def add(self, x_first: int, x_last: int, count: int, nan: int, low: Any, high: Any, total: Any) -> None:
        self.x_first, self.x_last = min(self.x_first, x_first), max(self.x_last, x_last)
        self.count += count
        self.nan_count += nan
        if low is not None:
            self.low = float(low) if self.low is None else min(self.low, float(low))
        if high is not None:
            self.high = float(high) if self.high is None else max(self.high, float(high))
        if total is None and count > nan:  # +inf and -inf summed to NaN, which SQLite stores as NULL
            total = math.nan
        if total is not None:
            self.total = float(total) if self.total is None else self.total + float(total)

    def bucket(self) -> MetricBucket:
        finite = self.count - self.nan_count
        mean = math.nan if self.total is None or not finite else self.total / finite
        return MetricBucket(
            x_first=self.x_first,
            x_last=self.x_last,
            count=self.count,
            nan_count=self.nan_count,
            low=math.nan if self.low is None else self.low,
            high=math.nan if self.high is None else self.high,
            mean=mean,
        )


def _from_rollups(
    conn: Connection, run_id: str, key: str, x: SeriesX, x_from: int | None, x_to: int | None, max_points: int
) -> MetricSeries | None:
    """The series from the roll-ups, or None where the points must be read (none built, few points, time zoom)."""
    r = t.metric_rollups.c
    top = WIDTHS[x][-1]
    total, low, high = conn.execute(
        select(func.sum(r.count), func.min(r.x_first), func.max(r.x_last)).where(
            r.run_id == run_id, r.key == key, r.axis == x, r.width == top
        )
    ).one()
    if total is None:
        return None
    low, high = int(low), int(high)
    if x_from is not None and x_from <= low:
        x_from = None
    if x_to is not None and x_to >= high:
        x_to = None
    if x_from is None and x_to is None:
        if int(total) <= max_points:
            return None
        grid = plan_grid(low, high, max_points // 2, x)
        if grid.block == 1:
            return None
        return _bucketed(conn, run_id, key, x, grid, int(total), low, high, None, None, [])
    if x != "step":
        return None  # no timestamp index: a zoomed time range is read from the points
    lo_req = low if x_from is None else x_from
    hi_req = high if x_to is None else x_to
    if lo_req > hi_req:
        return MetricSeries(key=key, x=x, total=0, x_min=None, x_max=None)
    m = t.metrics.c
    inside = [m.run_id == run_id, m.key == key, m.step >= lo_req, m.step <= hi_req]
    first = conn.execute(select(m.step).where(*inside).order_by(m.step).limit(1)).scalar()
    if first is None:
        return MetricSeries(key=key, x=x, total=0, x_min=None, x_max=None)
    last = int(conn.execute(select(m.step).where(*inside).order_by(m.step.desc()).limit(1)).scalar_one())
    grid = plan_grid(int(first), last, max_points // 2, x)
    if grid.block == 1:
        return None
    width = grid.block
    full_first, full_last = -(-lo_req // width), (hi_req + 1) // width - 1  # blocks wholly inside the range
    if full_first > full_last:
        return None
    edges = [(lo_req, full_first * width - 1), ((full_last + 1) * width, hi_req)]
    edges = [(a, b) for a, b in edges if a <= b]
    blocks = [r.run_id == run_id, r.key == key, r.axis == x, r.width == width]
    in_blocks = conn.execute(
        select(func.coalesce(func.sum(r.count), 0)).where(*blocks, r.block >= full_first, r.block <= full_last)
    ).scalar_one()
    at_edges = sum(
        conn.execute(
            select(func.count()).where(m.run_id == run_id, m.key == key, m.step >= a, m.step <= b)
        ).scalar_one()
        for a, b in edges
    )
    count = int(in_blocks) + int(at_edges)
    if count <= max_points:
        return None
    return _bucketed(conn, run_id, key, x, grid, count, int(first), last, full_first, full_last, edges)


def _bucketed(
    conn: Connection,
    run_id: str,
    key: str,
    x: SeriesX,
    grid: Grid,
    total: int,
    low: int,
    high: int,
    full_first: int | None,
    full_last: int | None,
    edges: Sequence[tuple[int, int]],
) -> MetricSeries:
    r = t.metric_rollups.c
    per_bucket = grid.bucket // grid.block
    bucket = ((r.block - grid.origin // grid.block) // per_bucket).label("bucket")
    where = [r.run_id == run_id, r.key == key, r.axis == x, r.width == grid.block]
    if full_first is not None:
        where.append(r.block >= full_first)
    if full_last is not None:
        where.append(r.block <= full_last)
    rows = list(
        conn.execute(
            select(
                bucket,
                func.min(r.x_first),
                func.max(r.x_last),
                func.sum(r.count),
                func.sum(r.nan_count),
                func.min(r.low),
                func.max(r.high),
                case(
                    (func.sum(case((and_(r.total.is_(None), r.count > r.nan_count), 1), else_=0)) > 0, null()),
                    else_=func.sum(r.total),
                ),
            )
            .where(*where)
            .group_by(bucket)
        ).all()
    )
    m = t.metrics.c
    for a, b in edges:
        point_bucket = ((m.step - grid.origin) // grid.bucket).label("bucket")
        rows += conn.execute(
            select(
                point_bucket,
                func.min(m.step),
                func.max(m.step),
                func.count(),
                func.sum(case((m.is_nan, 1), else_=0)),
                func.min(m.value),
                func.max(m.value),
                func.sum(m.value),
            )
            .where(m.run_id == run_id, m.key == key, m.step >= a, m.step <= b)
            .group_by(point_bucket)
        ).all()
    merged: dict[int, _Acc] = {}
    for row in rows:
        acc = merged.setdefault(int(row[0]), _Acc(int(row[1]), int(row[2])))
        acc.add(int(row[1]), int(row[2]), int(row[3]), int(row[4] or 0), row[5], row[6], row[7])
    buckets = tuple(merged[b].bucket() for b in sorted(merged))
    return MetricSeries(key=key, x=x, total=total, x_min=low, x_max=high, buckets=buckets)


# -- reading the points ---------------------------------------------------------------------------


def _from_points(
    conn: Connection,
    run_id: str,
    key: str,
    x: SeriesX,
    x_from: int | None,
    x_to: int | None,
    max_points: int,
    not_found: Callable[[Connection], Exception],
) -> MetricSeries:
    """The series computed from the points."""
    m = t.metrics.c
    column = m.step if x == "step" else m.timestamp
    where = [m.run_id == run_id, m.key == key]
    if x_from is not None:
        where.append(column >= x_from)
    if x_to is not None:
        where.append(column <= x_to)
    low, high, total = conn.execute(select(func.min(column), func.max(column), func.count()).where(*where)).one()
    if not total:
        if conn.execute(select(m.id).where(m.run_id == run_id, m.key == key).limit(1)).first() is None:
            raise not_found(conn)
        return MetricSeries(key=key, x=x, total=0, x_min=None, x_max=None)
    if total <= max_points:
        rows = conn.execute(
            select(m.value, m.is_nan, m.negative_zero, m.step, m.timestamp)
            .where(*where)
            .order_by(column, m.step, m.timestamp, m.id)
        ).all()
        points = tuple(Metric(key, _value(r.value, r.is_nan, r.negative_zero), r.step, r.timestamp) for r in rows)
        return MetricSeries(key=key, x=x, total=total, x_min=low, x_max=high, points=points)
    grid = plan_grid(int(low), int(high), max_points // 2, x)
    bucket = ((column - grid.origin) // grid.bucket).label("bucket")
    grouped = conn.execute(
        select(
            bucket,
            func.min(column),
            func.max(column),
            func.count(),
            func.sum(case((m.is_nan, 1), else_=0)),
            func.min(m.value),
            func.max(m.value),
            func.avg(m.value),
        )
        .where(*where)
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    buckets = tuple(
        MetricBucket(
            x_first=int(r[1]),
            x_last=int(r[2]),
            count=int(r[3]),
            nan_count=int(r[4] or 0),
            low=math.nan if r[5] is None else float(r[5]),
            high=math.nan if r[6] is None else float(r[6]),
            mean=math.nan if r[7] is None else float(r[7]),
        )
        for r in grouped
    )
    return MetricSeries(key=key, x=x, total=total, x_min=low, x_max=high, buckets=buckets)


def _value(value: float | None, is_nan: bool, negative_zero: bool) -> float:
    if negative_zero:
        return -0.0
    return math.nan if is_nan or value is None else float(value)
