"""Chart series of long metrics from roll-ups: the same buckets as from the points, on every backend."""

from __future__ import annotations

import math
import random

import pytest
import sqlalchemy as sa

from loopml.entities.series import MetricSeries
from loopml.entities.tracking import Metric, RunStatus
from loopml.errors import RunNotActiveError
from loopml.store.sql.rollups import BUILD_MIN_POINTS, plan_grid

N_POINTS = BUILD_MIN_POINTS + 1500


def _random_points(seed: int) -> list[Metric]:
    """Steps and timestamps of either sign with gaps and repeats, values with spikes, NaN and ±inf."""
    rng = random.Random(seed)
    points = []
    for _ in range(N_POINTS):
        step = rng.randrange(-60_000, 140_000)
        value = rng.choice([rng.gauss(0, 1), rng.gauss(0, 1), rng.uniform(-1e6, 1e6), math.nan, math.inf, -math.inf])
        points.append(Metric("loss", value, step, 1_700_000_000_000 + rng.randrange(-3_000_000, 9_000_000)))
    return points


def _assert_same(raw: MetricSeries, rolled: MetricSeries) -> None:
    assert (rolled.total, rolled.x_min, rolled.x_max, rolled.downsampled) == (
        raw.total,
        raw.x_min,
        raw.x_max,
        raw.downsampled,
    )
    assert [(b.x_first, b.x_last, b.count, b.nan_count) for b in rolled.buckets] == [
        (b.x_first, b.x_last, b.count, b.nan_count) for b in raw.buckets
    ]
    for a, b in zip(raw.buckets, rolled.buckets, strict=True):
        for mine, theirs in ((a.low, b.low), (a.high, b.high)):  # extremes are exact
            assert mine == theirs or (math.isnan(mine) and math.isnan(theirs))
        assert math.isnan(a.mean) == math.isnan(b.mean)
        if math.isfinite(a.mean):
            assert b.mean == pytest.approx(a.mean, rel=1e-9, abs=1e-6)
        else:
            assert a.mean == b.mean or math.isnan(a.mean)
    assert [(p.step, p.timestamp) for p in rolled.points] == [(p.step, p.timestamp) for p in raw.points]


REQUESTS = [
    {"max_points": 1000},
    {"max_points": 100},
    {"max_points": 4000},
    {"x": "time", "max_points": 1000},
    {"x": "time", "max_points": 60},
    {"x_from": -12_345, "x_to": 98_765, "max_points": 300},
    {"x_from": 0, "x_to": 4095, "max_points": 50},  # block-aligned on both ends: no edge points read
    {"x_from": 1000, "max_points": 500},
    {"x_to": -1, "max_points": 200},
    {"x_from": 50_000, "x_to": 50_400, "max_points": 2000},  # few points: every point comes back
    {"x_from": 200_000, "max_points": 100},  # past the last point: empty
    {"x": "time", "x_from": 1_700_001_000_000, "x_to": 1_700_004_000_000, "max_points": 400},
]


def test_a_long_metric_of_an_ended_run_is_charted_from_rollups_with_the_same_buckets(store):
    experiment = store.tracking.create_experiment("rollups")
    run_id = store.tracking.create_run(experiment.experiment_id, name="r", user="t", start_time=1).run_id
    points = _random_points(7)
    store.tracking.log_batch(run_id, metrics=points[: N_POINTS // 2])
    store.tracking.log_batch(run_id, metrics=points[N_POINTS // 2 :])
    # while the run runs, charts are computed from the points
    raw = [store.tracking.get_metric_series(run_id, "loss", **request) for request in REQUESTS]
    assert raw[0].downsampled and raw[0].total == N_POINTS and sum(b.count for b in raw[0].buckets) == N_POINTS
    assert raw[0].x_min == min(p.step for p in points) and raw[0].x_max == max(p.step for p in points)
    assert max(b.high for b in raw[0].buckets) == math.inf and min(b.low for b in raw[0].buckets) == -math.inf
    assert sum(b.nan_count for b in raw[0].buckets) == sum(1 for p in points if math.isnan(p.value))
    assert raw[10].total == 0 and not raw[9].downsampled and raw[9].points
    store.tracking.end_run(run_id, RunStatus.FINISHED, 2)
    # the first chart of the ended run builds its roll-ups; every request then answers the same buckets
    for request, expected in zip(REQUESTS, raw, strict=True):
        _assert_same(expected, store.tracking.get_metric_series(run_id, "loss", **request))
    engine = getattr(store.tracking, "_engine", None)
    if engine is not None:  # the SQL backends: the roll-ups are there (the REST one reaches them through its server)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT axis, count(*) FROM metric_rollups WHERE run_id = :r GROUP BY axis ORDER BY axis"),
                {"r": run_id},
            ).all()
        assert [axis for axis, _ in rows] == ["step", "time"] and all(n > 0 for _, n in rows)
    with pytest.raises(RunNotActiveError):  # why the roll-ups never go stale: an ended run's history is final
        store.tracking.log_batch(run_id, metrics=[Metric("loss", 1.0, 10**6, 1)])


def test_a_short_metric_of_an_ended_run_builds_no_rollups(store):
    experiment = store.tracking.create_experiment("short")
    run_id = store.tracking.create_run(experiment.experiment_id, name="r", user="t", start_time=1).run_id
    store.tracking.log_batch(run_id, metrics=[Metric("acc", i / 3000, i * 7, 10 + i) for i in range(3000)])
    store.tracking.end_run(run_id, RunStatus.FINISHED, 2)
    series = store.tracking.get_metric_series(run_id, "acc", max_points=100)
    assert series.downsampled and series.total == 3000 and 25 <= len(series.buckets) <= 50
    assert series.buckets[0].low == 0.0 and series.buckets[-1].high == 2999 / 3000
    engine = getattr(store.tracking, "_engine", None)
    if engine is not None:
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM metric_rollups WHERE run_id = :r"), {"r": run_id})
            assert count.scalar_one() == 0


@pytest.mark.parametrize(
    ("low", "high", "buckets", "axis"),
    [(0, 999_999, 500, "step"), (-7, 3, 2, "step"), (5, 9, 10, "step"), (-(2**40), 2**40, 1000, "time")],
)
def test_the_grid_never_makes_more_buckets_than_asked_and_covers_the_range(low, high, buckets, axis):
    grid = plan_grid(low, high, buckets, axis)
    assert grid.bucket % grid.block == 0 and grid.origin % grid.block == 0 and grid.origin <= low
    used = (high - grid.origin) // grid.bucket + 1
    assert used <= buckets
    assert used >= min(buckets, high - low + 1) // 2  # never less than half the resolution asked for
