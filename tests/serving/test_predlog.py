"""The prediction log: the request path never waits, a full queue sheds (counted), batches survive a store outage."""

from __future__ import annotations

import os
import threading

import pytest

from loopml.errors import InvalidValueError
from loopml.serving.metrics import ServingMetrics
from loopml.serving.predlog import LoggedPrediction, PredictionLog
from tests.waiting import wait_until


class FakeStore:
    """Records batches; ``down`` (or ``down_at``, call numbers) makes writes fail; ``gate`` holds the writer."""

    def __init__(self) -> None:
        self.batches: list[list[LoggedPrediction]] = []
        self.down = False
        self.down_at: set[int] = set()  # calls (from 1) at which the store is unreachable: an outage that flaps
        self.refuse: set[str] = set()  # request ids whose records the store never takes (a batch with one fails)
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0

    def log_predictions(self, records: list[LoggedPrediction]) -> None:
        self.calls += 1
        self.gate.wait()
        if self.down or self.calls in self.down_at:
            raise ConnectionError("database unreachable")
        if any(r.request_id in self.refuse for r in records):
            raise ValueError("value out of range for column latency_ms")
        self.batches.append(list(records))

    def log_batching(self) -> tuple[int, float]:
        return (1_000, 0.25)  # what the SQL sink asks for


def record(i: int) -> LoggedPrediction:
    return LoggedPrediction(f"r{i}", i, "m", 1, "main", b"{}", "[1]", 0.1, 200)


def written(store: FakeStore) -> list[str]:
    return [r.request_id for batch in store.batches for r in batch]


def test_records_are_written_in_batches_in_order_and_close_flushes():
    store = FakeStore()
    log = PredictionLog(store, capacity=1_000, batch_size=100, interval_s=30)  # only a full batch wakes it
    log.start()
    for i in range(250):
        assert log.offer(record(i))
    assert log.flush(timeout_s=10)
    log.close()
    assert written(store) == [f"r{i}" for i in range(250)]
    assert max(len(batch) for batch in store.batches) == 100 and log.written == 250 and log.dropped == 0


def test_a_full_queue_sheds_records_never_blocks_and_counts_them():
    store = FakeStore()
    store.gate.clear()  # the writer is stuck in a slow write
    metrics = ServingMetrics()
    log = PredictionLog(store, capacity=50, batch_size=10, interval_s=0.01, metrics=metrics)
    log.start()
    log.offer(record(-1))
    wait_until(lambda: store.calls > 0, "the writer's first write", timeout_s=5)
    accepted: list[bool] = []
    offering = threading.Thread(target=lambda: accepted.extend(log.offer(record(i)) for i in range(200)), daemon=True)
    offering.start()
    offering.join(10)
    assert not offering.is_alive()  # the writer is still stuck, so an offer that waited would never return
    assert accepted.count(True) == 50 and log.dropped == 150 and log.depth == 50
    text = metrics.render().decode()
    assert "loopml_serving_prediction_log_dropped_total 150.0" in text
    assert "loopml_serving_prediction_log_queue_depth 50.0" in text
    store.gate.set()
    assert log.flush(timeout_s=10)
    log.close()
    assert written(store) == ["r-1", *(f"r{i}" for i in range(50))]
    assert "loopml_serving_prediction_log_written_total 51.0" in metrics.render().decode()


def test_a_batch_the_store_refused_is_written_when_it_is_back(caplog):
    store = FakeStore()
    store.down = True
    log = PredictionLog(store, capacity=100, batch_size=10, interval_s=0.01)
    with caplog.at_level("WARNING", logger="loopml.serving"):
        log.start()
        for i in range(5):
            log.offer(record(i))
        wait_until(lambda: log.failures > 0, "a failed write", timeout_s=5)
        assert log.failures >= 1 and not log.flush(timeout_s=0.1)
    assert "ConnectionError: database unreachable" in caplog.text  # the warning says why the store refused
    store.down = False
    assert log.flush(timeout_s=10)
    log.close()
    assert written(store) == [f"r{i}" for i in range(5)]


@pytest.mark.parametrize(
    "refused",
    [
        {3, 4, 17},  # two side by side, and one alone
        {18, 19},  # the batch's last two
        set(range(8)),  # eight in a row at its front
        set(range(20)),  # every one
    ],
    ids=["scattered", "at-the-end", "eight-at-the-front", "all"],
)
def test_records_the_store_refuses_are_dropped_and_named_and_the_rest_is_written(refused, caplog):
    store = FakeStore()
    store.refuse = {f"r{i}" for i in refused}
    log = PredictionLog(store, capacity=100, batch_size=50, interval_s=30)  # one batch of everything
    log.start()
    for i in range(10):
        log.offer(record(i))
    barrier = log.barrier()
    for i in range(10, 20):
        log.offer(record(i))
    with caplog.at_level("ERROR", logger="loopml.serving"):
        assert log.flush(timeout_s=60)  # the log did not stop at the batch the store refuses
    log.offer(record(20))  # and goes on
    assert log.flush(timeout_s=60)
    log.close()
    assert written(store) == [f"r{i}" for i in range(21) if i not in refused]  # each once, in order
    assert log.dropped == len(refused) and log.written == 21 - len(refused) and log.held_bytes == 0
    assert barrier.is_set()
    named = " ".join(message for message in caplog.messages if "refused" in message)
    assert all(f"r{i} (m v1)" in named for i in refused) and f"the store refused {len(refused)} records" in named


def written_through(store: FakeStore, count: int, *, batch_size: int) -> PredictionLog:
    """A log that was offered records r0 to r<count - 1>, then started, flushed and closed."""
    log = PredictionLog(store, capacity=100, batch_size=batch_size, interval_s=30)
    for i in range(count):
        log.offer(record(i))
    log.start()
    assert log.flush(timeout_s=60)  # nothing stopped the writer
    log.close()
    return log


def test_a_lone_record_the_store_refuses_is_dropped_and_the_next_is_written():
    store = FakeStore()
    store.refuse = {"r2"}
    log = written_through(store, 6, batch_size=1)  # every batch is one record
    assert written(store) == ["r0", "r1", "r3", "r4", "r5"] and log.dropped == 1


def test_a_store_that_goes_down_while_a_refused_batch_is_looked_through_keeps_the_rest():
    store = FakeStore()
    store.refuse = {"r3"}
    store.down_at = {2}  # refused whole, then unreachable for its first part: nothing about those records is wrong
    log = written_through(store, 20, batch_size=20)
    assert written(store) == [f"r{i}" for i in range(20) if i != 3]  # each once, in order
    assert log.dropped == 1 and log.written == 19


def test_a_store_that_flaps_never_loses_a_record():
    store = FakeStore()
    store.down_at = {1, 2, 3, 5, 7}  # unreachable, back for one call, unreachable again, ...
    log = written_through(store, 20, batch_size=5)
    assert written(store) == [f"r{i}" for i in range(20)] and log.dropped == 0  # an outage is never a refusal


def test_a_closed_log_takes_nothing_more():
    store = FakeStore()
    log = PredictionLog(store, capacity=10)
    log.start()
    log.close()
    assert not log.offer(record(1)) and log.dropped == 1


def test_shutdown_with_the_store_down_reports_every_record_it_could_not_write(caplog):
    store = FakeStore()
    store.down = True
    log = PredictionLog(store, capacity=100, batch_size=10, interval_s=30)
    log.start()
    for i in range(25):
        log.offer(record(i))
    with caplog.at_level("ERROR", logger="loopml.serving"):
        log.close()
    assert "25 records could not be written before shutdown" in caplog.text
    assert log.dropped == 25 and log.written == 0 and log.held_bytes == 0  # counted as shed, their room released
    assert log.depth == 0 and log.flush(timeout_s=5)  # nothing is left queued or being written


def sized(i: int, size: int) -> LoggedPrediction:
    """A record whose body and answer come to ``size`` bytes (what the byte bound counts)."""
    return LoggedPrediction(f"r{i}", i, "m", 1, "main", b"x" * (size - 3), "[1]", 0.1, 200)


def test_the_queue_also_sheds_by_bytes_and_takes_records_again_once_the_store_has_them():
    """While the store is stuck, the text held stops at capacity_bytes, whatever the record count allows."""
    store = FakeStore()
    store.gate.clear()  # the writer is stuck inside its first write
    metrics = ServingMetrics()
    # only a full batch wakes the writer, so it takes r0 and r1 together, never r0 alone
    log = PredictionLog(store, capacity=1_000, capacity_bytes=10_000, batch_size=2, interval_s=30, metrics=metrics)
    log.start()
    assert log.offer(sized(0, 1_000)) and log.offer(sized(1, 1_000))
    wait_until(lambda: store.calls > 0, "the writer's first write", timeout_s=5)
    assert store.calls == 1 and log.depth == 0 and log.held_bytes == 2_000  # taken, not stored: still held
    accepted = [log.offer(sized(i, 1_000)) for i in range(2, 20)]
    assert accepted == [True] * 8 + [False] * 10  # 8 more fit beside the 2 being written
    assert log.held_bytes == 10_000 and log.dropped == 10 and log.depth == 8
    assert not log.offer(sized(99, 1))  # not even one byte more
    assert log.offer(LoggedPrediction("r98", 98, "m", 1, "main", b"", "", 0.1, 200))  # an empty record fits
    text = metrics.render().decode()
    assert "loopml_serving_prediction_log_held_bytes 10000.0" in text
    assert "loopml_serving_prediction_log_dropped_total 11.0" in text
    store.gate.set()
    assert log.flush(timeout_s=10)
    assert log.held_bytes == 0 and "loopml_serving_prediction_log_held_bytes 0.0" in metrics.render().decode()
    assert log.offer(sized(100, 10_000))  # the whole bound is free again
    assert log.flush(timeout_s=10)
    log.close()
    assert written(store) == ["r0", "r1", *(f"r{i}" for i in range(2, 10)), "r98", "r100"]


def test_a_batch_the_store_refused_stays_counted_until_it_is_written():
    store = FakeStore()
    store.down = True
    log = PredictionLog(store, capacity=100, capacity_bytes=5_000, batch_size=10, interval_s=0.01)
    log.start()
    for i in range(3):
        assert log.offer(sized(i, 1_000))
    wait_until(lambda: log.failures > 0, "a failed write", timeout_s=5)
    assert log.failures >= 1 and log.held_bytes == 3_000  # the kept batch still takes its room
    assert [log.offer(sized(i, 1_000)) for i in range(3, 6)] == [True, True, False]
    store.down = False
    assert log.flush(timeout_s=10)
    log.close()
    assert written(store) == [f"r{i}" for i in range(5)] and log.held_bytes == 0


def test_a_byte_capacity_that_is_not_a_whole_number_from_one_is_refused():
    for wrong in (0, -1, True, 1.5, "256M"):
        with pytest.raises(InvalidValueError, match="byte capacity must be a whole number from 1"):
            PredictionLog(FakeStore(), capacity_bytes=wrong)  # type: ignore[arg-type]


def test_a_logged_error_quoting_a_lone_surrogate_is_text_every_sink_can_store():
    """A batch holding one text a sink cannot encode would be refused, and retried, for ever."""
    import json

    from loopml.errors import InvalidInputError
    from loopml.serving.service import _error_json

    logged = _error_json(InvalidInputError("no column '\ud800x' here"))
    logged.encode("utf-8")  # strict UTF-8, what SQLite, PostgreSQL and parquet take
    assert json.loads(logged)["error"]["message"] == "no column '\ud800x' here"  # the same message


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is a Linux scheduling class")
def test_the_writer_thread_runs_as_batch_work_and_the_request_path_does_not():
    store = FakeStore()
    store.gate.clear()  # holds the writer inside its first write
    policy = os.sched_getscheduler(0)
    log = PredictionLog(store, capacity=10, batch_size=1, interval_s=0.01)
    log.start()
    log.offer(record(1))
    wait_until(lambda: store.calls > 0, "the writer's first write", timeout_s=10)
    try:
        assert store.calls == 1
        assert os.sched_getscheduler(log._thread.native_id) == os.SCHED_BATCH  # its wake-ups do not preempt
        assert os.sched_getscheduler(0) == policy  # the caller (the event loop's thread) is left as it was
    finally:
        store.gate.set()
        log.close()
