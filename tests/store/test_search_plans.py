"""Searches answer the same whichever plan the SQL store picks (issue 17, "the slow paths").

A default-order search with a value filter may walk the newest runs instead of sorting every
match (``_page_by_walking``), and an ordering on a metric the filter keeps non-null drops its
NULLS LAST clause. The thresholds that choose are shrunk here so that 40 runs take every branch:
the walk that fills the page, the walk that falls short and falls back, and the plain plan.
"""

from __future__ import annotations

import math

import pytest

from loopml.entities.tracking import Metric
from loopml.store.sql import tracking as sql_tracking
from loopml.tracking.search import parse_filter, parse_order_by

N_RUNS = 40


@pytest.fixture
def runs(store):
    """40 runs, two per start time (ties), acc cycling 0, 0.25, 0.5, 0.75, every 7th without acc, one NaN."""
    tracking = store.tracking
    experiment = tracking.create_experiment("plans")
    expected = []
    for i in range(N_RUNS):
        run = tracking.create_run(
            experiment.experiment_id, name=f"r{i}", user="tester", start_time=1000 + i // 2, params={"i": str(i)}
        )
        acc = None if i % 7 == 0 else math.nan if i == 13 else (i % 4) / 4
        if acc is not None:
            tracking.log_batch(run.info.run_id, metrics=[Metric("acc", acc, 0, 1)])
        expected.append((run.info.run_id, 1000 + i // 2, acc, i))
    return store.tracking, experiment.experiment_id, expected


def _all_pages(tracking, experiment_id, filter, order_by, size):
    ids, token = [], None
    while True:
        page = tracking.search_runs([experiment_id], parse_filter(filter), parse_order_by(order_by), size, token)
        ids += [run.info.run_id for run in page.runs]
        token = page.next_page_token
        if token is None:
            return ids


@pytest.mark.parametrize("walk_factor", [1, 3, 20])
@pytest.mark.parametrize("size", [1, 4, 100])
def test_default_order_pages_are_the_same_whether_the_runs_are_walked_or_sorted(runs, monkeypatch, walk_factor, size):
    tracking, experiment_id, rows = runs
    monkeypatch.setattr(sql_tracking, "_FEW_MATCHES", 3)
    monkeypatch.setattr(sql_tracking, "_WALK_FACTOR", walk_factor)
    newest_first = sorted(rows, key=lambda r: (-r[1], r[0]))
    cases = {
        "metrics.acc > 0.3": [r for r in newest_first if r[2] is not None and r[2] > 0.3],
        "metrics.acc >= 0.75": [r for r in newest_first if r[2] is not None and r[2] >= 0.75],
        "not metrics.acc > 0.3": [r for r in newest_first if r[2] is not None and not math.isnan(r[2]) and r[2] <= 0.3],
        "metrics.acc is null": [r for r in newest_first if r[2] is None],
        "params.i > 29": [r for r in newest_first if r[3] > 29],
    }
    for filter, want in cases.items():
        assert _all_pages(tracking, experiment_id, filter, None, size) == [r[0] for r in want], filter


def test_an_ordering_the_filter_keeps_non_null_sorts_as_with_nulls_last(runs):
    tracking, experiment_id, rows = runs
    kept = [r for r in rows if r[2] is not None and not math.isnan(r[2]) and r[2] > 0.3]
    for order, sign in (("metrics.acc DESC", -1), ("metrics.acc ASC", 1)):
        want = [r[0] for r in sorted(kept, key=lambda r: (sign * r[2], -r[1], r[0]))]
        assert _all_pages(tracking, experiment_id, "metrics.acc > 0.3", [order], 3) == want
    # without that filter, runs missing acc (and the NaN) still come last in both directions
    for order in ("metrics.acc DESC", "metrics.acc ASC"):
        ids = _all_pages(tracking, experiment_id, None, [order], 7)
        missing = {r[0] for r in rows if r[2] is None or math.isnan(r[2])}
        assert set(ids[-len(missing) :]) == missing


@pytest.fixture
def ranked(store):
    """60 runs over two experiments: start times and acc values tie, some runs lack acc, some are NaN or -0.0."""
    tracking = store.tracking
    experiment = tracking.create_experiment("ranked")
    other = tracking.create_experiment("ranked-other")
    rows = []
    for i in range(60):
        experiment_id = other.experiment_id if i % 11 == 5 else experiment.experiment_id
        run = tracking.create_run(
            experiment_id, name=f"r{i}", user="tester", start_time=1000 + (i * 7) % 9, params={"i": str(i)}
        )
        acc = None if i % 6 == 0 else math.nan if i % 13 == 4 else -0.0 if i == 17 else float((i * 5) % 8) / 8
        metrics = [Metric("loss", float(i % 5), 0, 1)]
        if acc is not None:
            metrics.append(Metric("acc", acc, 0, 1))
        tracking.log_batch(run.info.run_id, metrics=metrics)
        rows.append(run.info.run_id)
    return tracking, experiment.experiment_id


@pytest.mark.parametrize("walk_factor", [1, 5, 100])
@pytest.mark.parametrize("size", [2, 7, 100])
def test_metric_order_pages_are_the_same_whether_the_metric_is_walked_or_sorted(ranked, monkeypatch, walk_factor, size):
    tracking, experiment_id = ranked
    filters = [
        "params.i > 9",
        "metrics.loss < 3",
        "metrics.loss >= 1 and params.i != '20'",
        "metrics.acc > 0.3",
        "metrics.acc is null",
        "not metrics.acc > 0.3",
        "params.i in ('1', '2', '3', '8', '9', '10', '11', '12', '14', '15')",
    ]
    orders = ["metrics.acc DESC", "metrics.acc ASC", "metrics.loss DESC", "metrics.missing ASC"]
    want = {}
    monkeypatch.setattr(sql_tracking, "_page_by_metric_walk", lambda *args: None)
    for filter in filters:
        for order in orders:
            want[filter, order] = _all_pages(tracking, experiment_id, filter, [order], size)
    monkeypatch.undo()
    monkeypatch.setattr(sql_tracking, "_METRIC_WALK_FACTOR", walk_factor)
    walked = []
    real = sql_tracking._page_by_metric_walk
    monkeypatch.setattr(sql_tracking, "_page_by_metric_walk", lambda *args: walked.append(real(*args)) or walked[-1])
    for (filter, order), ids in want.items():
        assert _all_pages(tracking, experiment_id, filter, [order], size) == ids, (filter, order)
    if getattr(getattr(tracking, "_engine", None), "name", None) == "sqlite":
        if walk_factor >= 5 and size < 100:
            assert any(page is not None for page in walked)  # the walk answered some pages itself
        assert any(page is None for page in walked)  # and fell back on others
