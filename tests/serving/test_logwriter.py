"""The prediction log written by a child process (``loopml serve``'s writer): stored, restarted, retried."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading

import pytest

from loopml.serving import logwriter
from loopml.serving.logwriter import LogRecordsRefusedError, LogWriterError, LogWriterProcess
from loopml.serving.predlog import PredictionLog
from loopml.store import open_store
from loopml.timestamps import now_ms
from tests.serving.predlog_helpers import make_models, offered


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
        writer.log_predictions([offered(f"r{i}", now + i, body.encode()) for i in range(20)])
        assert writer.pid is not None and writer.pid != os.getpid() and writer.started == 1
        assert os.sched_getscheduler(writer.pid) == os.SCHED_BATCH  # its wake-ups do not preempt the server
    finally:
        writer.close()
    logged = store.serving.read_predictions("churn")
    assert [r.request_id for r in logged] == [f"r{i}" for i in range(20)] and logged[7].inputs == body
    assert writer.pid is None  # closed: the child is gone


def test_a_writer_killed_during_a_call_fails_its_batch_and_the_next_call_starts_a_new_one(sqlite_uri, monkeypatch):
    uri, store = sqlite_uri
    writer = _writer(uri, store)
    now = now_ms()
    sent = logwriter.send_frame

    def send_then_die(sock, parts):
        """The child dies once the batch is on its way and before it could store it, whatever the timing."""
        os.kill(writer.pid, signal.SIGSTOP)  # it reads nothing more
        sent(sock, parts)
        os.kill(writer.pid, signal.SIGKILL)

    try:
        writer.log_predictions([offered("a", now)])
        monkeypatch.setattr(logwriter, "send_frame", send_then_die)
        with pytest.raises(LogWriterError, match="retried"):
            writer.log_predictions([offered("b", now + 1)])
        monkeypatch.setattr(logwriter, "send_frame", sent)
        writer.log_predictions([offered("b", now + 1)])  # the retry: a new child
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
            log.offer(offered(f"first-{i}", now + i))
        assert log.flush(timeout_s=60)
        os.kill(writer.pid, signal.SIGKILL)
        for i in range(10):
            log.offer(offered(f"second-{i}", now + 100 + i))
        assert log.flush(timeout_s=60)
    finally:
        log.close()
        writer.close()
    stored = [r.request_id for r in store.serving.read_predictions("churn")]
    assert stored == [f"first-{i}" for i in range(10)] + [f"second-{i}" for i in range(10)]  # each once
    # a new child took over: at the first write after the kill if the writer saw the child gone, else at the
    # retry of the batch the dead child could not answer for (a failure); which one depends on timing
    assert writer.started == 2 and log.written == 20 and log.dropped == 0


def test_a_store_the_child_cannot_open_is_a_clear_error_every_time(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    writer = LogWriterProcess("nosuchscheme://nowhere", sink="sql", batching=(1_000, 0.25))
    try:
        for _ in range(2):
            with pytest.raises(LogWriterError, match="could not open the store") as caught:
                writer.log_predictions([offered("a", now_ms())])
            assert not isinstance(caught.value, LogRecordsRefusedError)  # the store's fault: kept and retried
    finally:
        writer.close()


def test_a_closed_writer_starts_no_new_child_and_its_child_does_not_hold_the_exit(sqlite_uri):
    uri, store = sqlite_uri
    writer = _writer(uri, store)
    writer.log_predictions([offered("a", now_ms())])
    assert writer._process.daemon  # stopped at the serving process's exit, never waited for
    writer.close()
    # a batch the log's writer thread sends after shutdown (its close timed out) is refused, not a new child
    with pytest.raises(LogWriterError, match="has been stopped"):
        writer.log_predictions([offered("late", now_ms())])
    assert writer.started == 1 and writer.pid is None
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["a"]


def test_close_stops_a_child_stuck_in_the_store_and_fails_the_batch_it_held(sqlite_uri, monkeypatch):
    uri, store = sqlite_uri
    monkeypatch.setattr("loopml.serving.logwriter._STOP_WAIT_S", 0.5)
    writer = _writer(uri, store)
    writer.log_predictions([offered("a", now_ms())])
    child = writer._process
    os.kill(child.pid, signal.SIGSTOP)  # a store call that never returns (a vanished database peer)
    outcome: list[BaseException] = []
    sending = threading.Thread(target=_capture, args=(writer, outcome), daemon=True)
    sending.start()
    sending.join(0.3)
    assert sending.is_alive()  # waiting for the stopped child's answer, holding the writer's lock
    closing = threading.Thread(target=writer.close, daemon=True)
    closing.start()
    closing.join(30)
    sending.join(30)
    assert not closing.is_alive()  # close did not wait on the stuck call for ever
    assert not sending.is_alive() and not child.is_alive()  # close killed the child; the waiting call ended
    assert len(outcome) == 1 and isinstance(outcome[0], LogWriterError)
    assert writer.started == 1


def _capture(writer: LogWriterProcess, outcome: list[BaseException]) -> None:
    try:
        writer.log_predictions([offered("b", now_ms())])
    except BaseException as exc:  # the test inspects what the call raised
        outcome.append(exc)


def test_a_refused_write_names_the_error_but_never_the_logged_request(sqlite_uri):
    uri, store = sqlite_uri
    database = uri.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:  # the database refuses every logged row
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON predictions BEGIN SELECT RAISE(ABORT, 'disk quota'); END")
    writer = _writer(uri, store)
    secret = json.dumps({"records": [{"ssn": "123-45-6789"}]})
    try:
        with pytest.raises(LogRecordsRefusedError, match="disk quota") as caught:  # the records' fault: not retried
            writer.log_predictions([offered("a", now_ms(), secret.encode())])
    finally:
        writer.close()
    assert "123-45-6789" not in str(caught.value)  # the failed statement's parameters are not quoted


def test_a_record_the_database_always_refuses_is_dropped_and_the_log_goes_on(sqlite_uri, caplog):
    uri, store = sqlite_uri
    database = uri.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:  # one row the database will never take, whatever the retries
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON predictions WHEN NEW.request_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'row refused'); END"
        )
    writer = _writer(uri, store)
    log = PredictionLog(writer, capacity=1_000, batch_size=100, interval_s=30)
    log.start()
    now = now_ms()
    try:
        for i, rid in enumerate(["a", "b", "poison", "c", "d", "e"]):
            log.offer(offered(rid, now + i))
        with caplog.at_level("ERROR", logger="loopml.serving"):
            assert log.flush(timeout_s=60)
    finally:
        log.close()
        writer.close()
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["a", "b", "c", "d", "e"]
    assert log.dropped == 1 and log.written == 5
    assert any("requests poison (churn v1)" in message for message in caplog.messages)
