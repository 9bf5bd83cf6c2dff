"""``TrackingStore.get_metric_series`` on every backend: whole when short, min/max buckets when long."""

from __future__ import annotations

import math

import pytest

from loopml.entities.tracking import Metric
from loopml.errors import InvalidValueError, MetricNotFoundError, RunNotFoundError


@pytest.fixture
def run_id(store):
    experiment = store.tracking.create_experiment("exp")
    run = store.tracking.create_run(experiment.experiment_id, name="r", user="tester", start_time=1000)
    return run.run_id


def test_a_short_series_comes_back_whole_with_non_finite_values(store, run_id):
    values = [math.nan, math.inf, -math.inf, -0.0, 1.5]
    store.tracking.log_batch(run_id, metrics=[Metric("m", v, i, 100 + i) for i, v in enumerate(values)])
    series = store.tracking.get_metric_series(run_id, "m")
    assert (series.total, series.x_min, series.x_max, series.downsampled) == (5, 0, 4, False)
    assert math.isnan(series.points[0].value)
    assert [p.value for p in series.points[1:]] == [math.inf, -math.inf, -0.0, 1.5]
    by_time = store.tracking.get_metric_series(run_id, "m", x="time", x_from=102, x_to=103)
    assert [p.step for p in by_time.points] == [2, 3] and (by_time.x_min, by_time.x_max) == (102, 103)


def test_a_long_series_is_bucketed_keeping_each_buckets_extremes(store, run_id):
    points = [Metric("loss", float(i % 10), i, 10_000 + i) for i in range(1000)]
    points[500] = Metric("loss", 1e6, 500, 10_500)  # a spike must survive
    points[700] = Metric("loss", math.nan, 700, 10_700)
    points[800] = Metric("loss", -math.inf, 800, 10_800)
    store.tracking.log_batch(run_id, metrics=points)
    series = store.tracking.get_metric_series(run_id, "loss", max_points=100)
    assert series.downsampled and series.total == 1000 and not series.points
    assert len(series.buckets) <= 50
    assert sum(b.count for b in series.buckets) == 1000
    assert sum(b.nan_count for b in series.buckets) == 1
    assert max(b.high for b in series.buckets) == 1e6
    assert min(b.low for b in series.buckets) == -math.inf
    assert [b.x_first for b in series.buckets] == sorted(b.x_first for b in series.buckets)
    assert series.buckets[0].x_first == 0 and series.buckets[-1].x_last == 999
    # a narrower range has fewer points: whole again
    zoomed = store.tracking.get_metric_series(run_id, "loss", x_from=490, x_to=509, max_points=100)
    assert not zoomed.downsampled and [p.step for p in zoomed.points] == list(range(490, 510))
    assert zoomed.points[10].value == 1e6


def test_an_empty_range_and_missing_metrics(store, run_id):
    store.tracking.log_batch(run_id, metrics=[Metric("acc", 0.5, 3, 1)])
    empty = store.tracking.get_metric_series(run_id, "acc", x_from=10)
    assert (empty.total, empty.x_min, empty.points, empty.buckets) == (0, None, (), ())
    with pytest.raises(MetricNotFoundError, match="Did you mean 'acc'"):
        store.tracking.get_metric_series(run_id, "ac")
    with pytest.raises(RunNotFoundError):
        store.tracking.get_metric_series("a" * 32, "acc")
    with pytest.raises(InvalidValueError):
        store.tracking.get_metric_series(run_id, "acc", max_points=1)
