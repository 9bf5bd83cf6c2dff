"""The prediction log: the request path never waits, a full queue sheds (counted), batches survive a store outage."""

from __future__ import annotations

import threading
import time

from loopml.entities.serving import PredictionRecord
from loopml.serving.metrics import ServingMetrics
from loopml.serving.predlog import PredictionLog


class FakeStore:
    """Records batches; ``down`` makes writes fail; ``gate`` holds the writer inside a write."""

    def __init__(self) -> None:
        self.batches: list[list[PredictionRecord]] = []
        self.down = False
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0

    def log_predictions(self, records: list[PredictionRecord]) -> None:
        self.calls += 1
        self.gate.wait()
        if self.down:
            raise ConnectionError("database unreachable")
        self.batches.append(list(records))

    def log_batching(self) -> tuple[int, float]:
        return (1_000, 0.25)  # what the SQL sink asks for


def record(i: int) -> PredictionRecord:
    return PredictionRecord(f"r{i}", i, "m", 1, "main", "{}", "[1]", 0.1, 200)


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
    deadline = time.monotonic() + 5
    while store.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
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


def test_a_batch_the_store_refused_is_written_when_it_is_back():
    store = FakeStore()
    store.down = True
    log = PredictionLog(store, capacity=100, batch_size=10, interval_s=0.01)
    log.start()
    for i in range(5):
        log.offer(record(i))
    deadline = time.monotonic() + 5
    while log.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.failures >= 1 and not log.flush(timeout_s=0.1)
    store.down = False
    assert log.flush(timeout_s=10)
    log.close()
    assert written(store) == [f"r{i}" for i in range(5)]


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
