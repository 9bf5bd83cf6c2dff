"""The prediction log written by a child process (``loopml serve``'s writer): stored, restarted, retried."""

from __future__ import annotations

import json
import os
import signal

import pytest

from loopml.serving.logwriter import LogWriterError, LogWriterProcess
from loopml.serving.predlog import PredictionLog
from loopml.store import open_store
from loopml.timestamps import now_ms
from tests.serving.predlog_helpers import make_models, record


@pytest.fixture
def sqlite_uri(tmp_path, monkeypatch):
    """A SQLite store both this process and the writer process open (the child inherits the environment)."""
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    uri = f"sqlite:///{tmp_path / 'loopml.db'}"
    store = open_store(uri)
    make_models(store, "churn")
    yield uri, store
    store.close()


def _writer(uri: str, store) -> LogWriterProcess:
    return LogWriterProcess(uri, sink=store.serving.prediction_sink, batching=store.serving.log_batching())


def test_batches_are_stored_by_the_child_in_order_in_pieces(sqlite_uri, monkeypatch):
    uri, store = sqlite_uri
    monkeypatch.setattr("loopml.serving.logwriter.PIECE_BYTES", 1_000)  # a batch crosses the pipe in pieces
    writer = _writer(uri, store)
    now = now_ms()
    body = json.dumps({"records": [{"x": i, "pad": "p" * 300} for i in range(3)]})
    try:
        writer.log_predictions([record(f"r{i}", now + i, body) for i in range(20)])
        assert writer.pid is not None and writer.pid != os.getpid() and writer.started == 1
    finally:
        writer.close()
    logged = store.serving.read_predictions("churn")
    assert [r.request_id for r in logged] == [f"r{i}" for i in range(20)] and logged[7].inputs == body
    assert writer.pid is None  # closed: the child is gone


def test_a_killed_writer_fails_its_batch_and_the_next_call_starts_a_new_one(sqlite_uri):
    uri, store = sqlite_uri
    writer = _writer(uri, store)
    now = now_ms()
    try:
        writer.log_predictions([record("a", now)])
        os.kill(writer.pid, signal.SIGKILL)
        with pytest.raises(LogWriterError, match="retried"):
            writer.log_predictions([record("b", now + 1)])
        writer.log_predictions([record("b", now + 1)])  # the retry: a new child
        assert writer.started == 2
    finally:
        writer.close()
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["a", "b"]


def test_the_prediction_log_keeps_and_retries_what_a_dead_writer_held(sqlite_uri):
    uri, store = sqlite_uri
    writer = _writer(uri, store)
    log = PredictionLog(writer, capacity=1_000, batch_size=10, interval_s=0.05)
    log.start()
    now = now_ms()
    try:
        for i in range(10):
            log.offer(record(f"first-{i}", now + i))
        assert log.flush(timeout_s=60)
        os.kill(writer.pid, signal.SIGKILL)
        for i in range(10):
            log.offer(record(f"second-{i}", now + 100 + i))
        assert log.flush(timeout_s=60)
    finally:
        log.close()
        writer.close()
    stored = [r.request_id for r in store.serving.read_predictions("churn")]
    assert stored == [f"first-{i}" for i in range(10)] + [f"second-{i}" for i in range(10)]  # each once
    assert log.failures >= 1 and log.written == 20 and log.dropped == 0


def test_a_store_the_child_cannot_open_is_a_clear_error_every_time(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    writer = LogWriterProcess("nosuchscheme://nowhere", sink="sql", batching=(1_000, 0.25))
    try:
        for _ in range(2):
            with pytest.raises(LogWriterError, match="could not open the store"):
                writer.log_predictions([record("a", now_ms())])
    finally:
        writer.close()
