"""A check reads only what its checks need: an operations-only monitor loads no reference, parses no input and
reads no feedback; reference frames are cached per process, bounded; the window is read in few store calls."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris, load_wine

from loopml.errors import NotFoundError
from loopml.monitoring.monitors import monitor, run_monitor
from loopml.monitoring.windows import (
    NOT_NEEDED,
    ReferenceCache,
    lineage_reference,
    newest,
    reference_cache,
)
from tests.monitoring.logdata import features, log_requests, predict, reference_frame
from tests.monitoring.test_lineage import NUMERIC, log_model_answers, train
from tests.monitoring.test_windows import NOW, Log


@pytest.fixture(autouse=True)
def _private_tempdir_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The model cache inside this test's folder; an empty reference cache before and after."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    reference_cache.clear()
    yield
    reference_cache.clear()


def test_an_operations_only_monitor_needs_no_reference_and_stores_the_same_figures(client, store):
    train(client, dataset_run=None)  # "churn" v1, whose run and parents logged no training data
    current = features(400, seed=2)
    log_requests(store, "churn", current, rows_per_request=1, labels=predict(current), latency_ms=300.0)
    log_requests(store, "churn", current.head(40), rows_per_request=1, prefix="e", status=500)
    thresholds = {"error_rate_max": 0.02, "p99_latency_ms_max": 100}
    monitor("churn-ops", "churn", checks=["operations"], thresholds=thresholds, client=client)
    monitor("churn-both", "churn", checks=["data_drift", "operations"], thresholds=thresholds, client=client)
    with pytest.raises(NotFoundError, match="No training dataset found for churn version 1"):
        run_monitor("churn-both", client=client)  # drift needs the reference lineage cannot find

    ops = run_monitor("churn-ops", client=client)
    both = run_monitor("churn-both", reference=reference_frame(), client=client)  # the reference given instead

    stored = store.monitoring.list_results("churn-ops")[-1]
    assert stored.result_id == ops.result.result_id and stored.version == 1
    assert stored.figures["operations"] == both.figures["operations"]
    assert stored.figures["operations"]["n"] == 440 and stored.figures["operations"]["server_errors"] == 40
    assert stored.figures["reference"] == {"source": NOT_NEEDED, "dataset": None, "run_id": None, "n_rows": None}
    window = stored.figures["window"]
    assert window["n_requests"] == both.figures["window"]["n_requests"] == 440
    assert (window["n_rows"], window["n_labelled"], window["rows"]) == (None, None, NOT_NEEDED)  # never parsed
    assert both.figures["window"]["n_rows"] == 400 and both.figures["window"]["n_labelled"] == 400
    assert {a.kind: a.details for a in ops.alerts} == {a.kind: a.details for a in both.alerts if a.kind == "operations"}
    assert {k: v for k, v in ops.summary.items() if k != "alerts"} == {
        k: both.summary[k] for k in ("error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "n_requests")
    }
    assert ops.status == "alert" and stored.summary == ops.summary
    assert reference_cache.nbytes == 0  # nothing was loaded for it


def test_the_reference_cache_returns_the_same_frame_for_every_check(client, store):
    X, model = train(client)
    log_model_answers(store, model, features(300, seed=1)[NUMERIC])
    first = lineage_reference(client, "churn", 1)
    again = lineage_reference(client, "churn", 1)
    assert again.frame is first.frame and len(reference_cache) == 1
    pd.testing.assert_frame_equal(first.frame.reset_index(drop=True), X.reset_index(drop=True))

    monitor("churn-drift", "churn", checks=["data_drift", "operations"], client=client)
    results = [run_monitor("churn-drift", client=client) for _ in range(2)]
    assert len(reference_cache) == 1  # the two checks found the frame already loaded
    assert results[0].figures["data_drift"] == results[1].figures["data_drift"]
    assert results[0].figures["reference"] == results[1].figures["reference"] == first.describe()


def test_the_reference_cache_is_bounded_by_entries_and_bytes():
    frames = {name: loader(as_frame=True).frame for name, loader in
              (("iris", load_iris), ("wine", load_wine), ("diabetes", load_diabetes))}  # fmt: skip
    sizes = {name: int(f.memory_usage(index=True, deep=True).sum()) for name, f in frames.items()}

    by_count = ReferenceCache(entries=2, max_bytes=10 * sum(sizes.values()))
    for name, frame in frames.items():
        by_count.put((name,), frame)
        assert by_count.get((name,)) is frame
    assert len(by_count) == 2 and by_count.get(("iris",)) is None  # the least recently used went out

    by_bytes = ReferenceCache(entries=10, max_bytes=sizes["wine"] + sizes["diabetes"])
    by_bytes.put(("wine",), frames["wine"])
    by_bytes.put(("diabetes",), frames["diabetes"])
    assert by_bytes.get(("wine",)) is frames["wine"]  # wine is now the most recently used
    by_bytes.put(("iris",), frames["iris"])
    assert by_bytes.get(("diabetes",)) is None and by_bytes.get(("wine",)) is frames["wine"]
    assert by_bytes.nbytes <= by_bytes.max_bytes

    small = ReferenceCache(entries=10, max_bytes=sizes["iris"] - 1)
    small.put(("iris",), frames["iris"])  # larger than the whole cache: not kept
    assert len(small) == 0 and small.nbytes == 0


def test_a_window_in_the_last_minute_is_one_read_and_an_empty_log_two():
    log = Log([NOW - 1000 + i for i in range(1000)])
    got = newest(log.read, 1000, 0, NOW + 1)
    assert [r.request_id for r in got] == log.expected(1000, 0, NOW + 1) and log.reads == [1000]

    empty = Log([])
    assert newest(empty.read, 1000, 0, NOW + 60_000) == [] and len(empty.reads) == 2

    quiet = Log([NOW - 3_600_000 + i for i in range(500)])  # an hour ago, nothing since
    got = newest(quiet.read, 1000, 0, NOW + 60_000)
    assert [r.request_id for r in got] == quiet.expected(1000, 0, NOW + 60_000) and quiet.reads == [0, 500]


def test_the_command_line_says_an_operations_check_needed_no_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import loopml
    from loopml.tracking import fluent
    from tests.monitoring.test_monitor_cli import CLEARED, invoke

    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    loopml.set_tracking_uri(None)
    try:
        store = fluent.get_tracking_client().store
        loopml.monitor("churn-ops", "churn", checks="operations", thresholds={"error_rate_max": 0.05})
        log_requests(store, "churn", features(200, seed=3), rows_per_request=1)
        done = invoke("monitor", "check", "churn-ops")
        assert done.exit_code == 0, done.output
        text = " ".join(done.output.split())
        assert "check 1 ok (200 requests; churn v1; no reference (not needed by these checks))" in text
    finally:
        if fluent._client is not None:
            fluent._client.close()
        fluent._client, fluent._client_key = None, None
