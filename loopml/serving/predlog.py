"""The prediction log: a bounded in-memory queue and a background thread that writes it to the store in batches.

``offer`` is all the request path does: an append to a deque, or, when
the queue already holds ``capacity`` records or ``capacity_bytes`` of
bodies and answers, nothing but a count of the record shed. The request
never waits on the database and is never refused because of logging. The
byte bound is what keeps the serving process's memory bounded while the
store is down (ten thousand queued 8 MiB bodies would be 80 GB): a record's
body and answer count until the store has it, retries included.

What is queued is a ``LoggedPrediction``: the request body stays the bytes
the server received, and becomes the stored record's text
(``PredictionRecord.inputs``) only where it is stored, in the log-writer
process or this writer thread, never on the request path.

The writer wakes every ``interval`` seconds (sooner
when a full batch is waiting), writes up to ``batch_size`` records with one
multi-row insert, and keeps a batch the store refused to try again with
backoff, meanwhile shedding what no longer fits. A batch the store refuses
for what is in it (``refused_by_store``) is written a part at a time
(``_isolate``), so a record the store will never take is dropped, not
retried for ever ahead of everything else.
``close`` writes what is left before returning (within its timeout).

``barrier`` queues a marker behind the records offered so far and returns
an event the writer sets once they are written: feedback for a request this
process just answered waits on it rather than on a guess of the interval.

The batch size and interval default to what the store's sink suits
(``ServingStore.log_batching``: larger, rarer batches for the parquet sink,
so its files are not tiny). With a retention (``retention_ms``, or
``LOOPML_PREDICTION_LOG_RETENTION`` such as ``30d``) the writer also prunes
the log once an hour, between batches, never on the request path.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loopml.entities.serving import PredictionRecord
from loopml.errors import InvalidValueError
from loopml.store.serving import parse_retention

if TYPE_CHECKING:
    from loopml.serving.metrics import ServingMetrics
    from loopml.store.serving import ServingStore

logger = logging.getLogger("loopml.serving")

DEFAULT_CAPACITY = 10_000
#: Bytes of request bodies (and characters of answers) the log holds, queued or being written, before it sheds:
#: 512 MiB is six seconds of 81 KB (100-row) requests at 1,000 req/s, room for the parquet sink's one-second
#: batches and a slow write, and far more of small requests.
DEFAULT_CAPACITY_BYTES = 512 * 1024 * 1024
DEFAULT_BATCH_SIZE = 1_000
DEFAULT_INTERVAL_S = 0.25
_MAX_BACKOFF_S = 30.0
#: Request ids one log line names of the records a store refused (the rest are counted).
_NAMED_AT_MOST = 20
#: The environment variable holding the log's retention (``30d``); unset keeps everything.
RETENTION_ENV = "LOOPML_PREDICTION_LOG_RETENTION"
#: Seconds between two prunes of the log by one writer.
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """One answer as the log holds it until it is stored: ``body`` is the request body, the bytes received.

    Its fields are a ``PredictionRecord``'s, but for the body, which ``record`` turns into the record's
    ``inputs`` text. Holding the bytes spares the request path decoding every body to text and the writer
    thread encoding it back to send it to the log-writer process: two copies of an 81 KB body, together
    about 40 µs of ``loopml serve``'s 700 µs a request (``benchmarks/predlog.py --wrk``).
    """

    request_id: str
    time: int
    model: str
    version: int
    role: str
    body: bytes
    outputs: str
    latency_ms: float
    status: int

    def record(self) -> PredictionRecord:
        """The record stored for this answer, its body as text (``body_text``)."""
        return PredictionRecord(
            self.request_id,
            self.time,
            self.model,
            self.version,
            self.role,
            body_text(self.body),
            self.outputs,
            self.latency_ms,
            self.status,
        )


def body_text(body: bytes | memoryview) -> str:
    """A request body as the log stores it: UTF-8 as it is, JSON in another encoding (UTF-16, UTF-32) re-encoded.

    The encoding is told the way ``json.loads`` tells it, from the first bytes (an ASCII-only UTF-16 body is
    also valid UTF-8, with a NUL after each character). Never raises: the log is written long after the
    request was answered, so bytes that do not decode (the service logs only bodies it parsed, so none should)
    are kept as U+FFFD rather than failing the batch they are in.
    """
    encoding = json.detect_encoding(bytes(body[:4]))
    if encoding == "utf-8":
        return str(body, "utf-8", "replace")
    try:
        return json.dumps(json.loads(bytes(body)))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors; deep nesting
        return str(body, encoding, "replace")


class LogDestination(Protocol):
    """What the writer writes to: a ``ServingStore`` (through ``StoreDestination``), or the log-writer process."""

    def log_batching(self) -> tuple[int, float]: ...

    def log_predictions(self, predictions: Sequence[LoggedPrediction]) -> None: ...

    def prune_predictions(self, older_than_ms: int, *, actor: str) -> dict[str, int]: ...


class StoreDestination:
    """A ``ServingStore`` as the writer thread's destination: each batch stored as records, in this process."""

    def __init__(self, serving: ServingStore) -> None:
        self.serving = serving

    def log_batching(self) -> tuple[int, float]:
        return self.serving.log_batching()

    def log_predictions(self, predictions: Sequence[LoggedPrediction]) -> None:
        self.serving.log_predictions([prediction.record() for prediction in predictions])

    def prune_predictions(self, older_than_ms: int, *, actor: str) -> dict[str, int]:
        return self.serving.prune_predictions(older_than_ms, actor=actor)


def refused_by_store(exc: BaseException) -> bool:
    """True when the store refused the records themselves, so that retrying them as they are cannot succeed.

    A value a column cannot hold, a row a constraint or trigger forbids, text a format cannot encode: the
    stores say so with ``InvalidInputError`` (a ``ValueError``), pyarrow with ``ArrowInvalid`` (a
    ``ValueError``) or ``ArrowTypeError`` (a ``TypeError``), and the log-writer process passes the verdict
    on. A store that is unreachable or broken raises ``StoreError``, ``OSError`` and the like: the records
    are kept and retried, however long it takes, since nothing about them is wrong.
    """
    return isinstance(exc, ValueError | TypeError)


def run_as_batch_work() -> bool:
    """Put the calling thread in Linux's ``SCHED_BATCH`` class (same share of the CPU, no wake-up preemption).

    The log's writers (this module's thread, the log-writer process) wake often, and under CFS each
    wake-up may preempt the thread running the event loop, which then waits for the core and for the GIL.
    A batch-class thread waits for the running one's slice instead. Measured with wrk (one worker, 100-row
    bodies, c=8, 2 cores; ``benchmarks/predlog.py --wrk --other-tree``, two runs of 12 rounds), the
    logging cost on the SQL sink fell from 3.4% and 5.5% to 1.6% and 2.4%; on the parquet sink it did not
    move. False where the platform has no such class or refuses it.
    """
    if not hasattr(os, "SCHED_BATCH"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        return False
    return True


class PredictionLog:
    """Bounded queue + batch writer thread over ``destination.log_predictions``."""

    def __init__(
        self,
        store: LogDestination,
        *,
        capacity: int = DEFAULT_CAPACITY,
        capacity_bytes: int = DEFAULT_CAPACITY_BYTES,
        batch_size: int | None = None,
        interval_s: float | None = None,
        metrics: ServingMetrics | None = None,
        retention_ms: int | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidValueError(f"The prediction-log capacity must be a whole number from 1, got {capacity!r}.")
        if isinstance(capacity_bytes, bool) or not isinstance(capacity_bytes, int) or capacity_bytes < 1:
            raise InvalidValueError(
                f"The prediction log's byte capacity must be a whole number from 1, got {capacity_bytes!r}."
            )
        suited_batch, suited_interval = (
            store.log_batching() if batch_size is None or interval_s is None else (batch_size, interval_s)
        )
        self._store = store
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        # a suited batch leaves half the queue free, so records keep arriving while a full batch is taken
        wanted = min(suited_batch, capacity // 2) if batch_size is None else batch_size
        self.batch_size = max(1, min(wanted, capacity))
        self.interval_s = suited_interval if interval_s is None else interval_s
        retention = os.environ.get(RETENTION_ENV)
        self.retention_ms = retention_ms if retention_ms is not None or not retention else parse_retention(retention)
        self._pruned_at: float | None = None
        self._metrics = metrics
        self._queue: deque[LoggedPrediction | threading.Event] = deque()  # records, and barriers between them
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._unwritten = 0  # taken off the queue, not yet in the store
        # text held, as two counters with one writer each: offered (under _offer_lock: the request path and
        # the shadow thread both offer) less released (the writer thread, once the store has a batch)
        self._offer_lock = threading.Lock()
        self._offered_bytes = 0
        self._released_bytes = 0
        self.written = 0
        self.dropped = 0
        self.failures = 0
        if metrics is not None:
            metrics.log_queue_depth.set_function(lambda: len(self._queue))
            metrics.log_held_bytes.set_function(lambda: self.held_bytes)

    # -- the request path --------------------------------------------------------------------
    def offer(self, record: LoggedPrediction) -> bool:
        """Queue one record; False (and counted) when the queue is full, by records or bytes. Never blocks."""
        queue = self._queue
        size = _size(record)
        with self._offer_lock:
            held = self._offered_bytes - self._released_bytes
            if len(queue) >= self.capacity or held + size > self.capacity_bytes or self._closing:
                self.dropped += 1
                if self._metrics is not None:
                    self._metrics.log_dropped.inc()
                return False
            self._offered_bytes += size
            queue.append(record)
        if len(queue) >= self.batch_size:
            self._wake.set()
        return True

    def barrier(self) -> threading.Event:
        """An event set once every record offered before this call is written (or shed, or the writer stopped)."""
        done = threading.Event()
        with self._offer_lock:  # against close: a barrier is queued before the writer's last pass, or set now
            if self._thread is None or self._closing:
                done.set()
                return done
            self._queue.append(done)
        self._wake.set()
        return done

    @property
    def depth(self) -> int:
        """Records waiting to be written."""
        return len(self._queue)

    @property
    def held_bytes(self) -> int:
        """Bytes of bodies and answers in records queued or being written (what ``capacity_bytes`` bounds)."""
        return self._offered_bytes - self._released_bytes

    # -- the writer ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="loopml-prediction-log", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        run_as_batch_work()
        backoff = 0.0
        pending: list[LoggedPrediction | threading.Event] = []
        while True:
            self._wake.wait(timeout=backoff or self.interval_s)
            self._wake.clear()
            closing = self._closing
            while True:
                if not pending:
                    pending = self._take()
                if not pending:
                    break
                failure = self._write(pending)
                if failure is None:
                    pending, backoff = [], 0.0
                    continue
                if refused_by_store(failure):
                    pending = self._isolate(pending)
                    if not pending:  # written, but for the records the store refused
                        backoff = 0.0
                        continue
                backoff = min(_MAX_BACKOFF_S, max(0.5, backoff * 2))
                break
            if self.retention_ms is not None and not closing:
                self._prune()
            if closing and (not pending or backoff):
                left = [*pending, *self._queue]  # the batch the store refused and everything queued behind it
                lost = [item for item in left if isinstance(item, LoggedPrediction)]
                with self._idle:  # nothing is queued or being written any more: depth and flush say so
                    self._queue.clear()
                    self._unwritten = 0
                    self._idle.notify_all()
                if lost:
                    logger.error("Prediction log: %d records could not be written before shutdown", len(lost))
                    self._give_up(lost)
                for item in left:  # nobody waits past the writer's end
                    if isinstance(item, threading.Event):
                        item.set()
                return

    def _prune(self) -> None:
        """Apply the retention when an hour has passed since the last time (or at the first wake)."""
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        assert self.retention_ms is not None
        try:
            counts = self._store.prune_predictions(self.retention_ms, actor="loopml-serve")
        except Exception:  # a store that is down is retried at the next hour; logging goes on
            logger.warning("Prediction log: applying the retention failed; will retry", exc_info=True)
        else:
            logger.info("Prediction log: retention removed %s", counts)

    def _take(self) -> list[LoggedPrediction | threading.Event]:
        with self._idle:
            queue = self._queue
            batch = [queue.popleft() for _ in range(min(len(queue), self.batch_size))]
            self._unwritten += len(batch)
        return batch

    def _write(self, batch: list[LoggedPrediction | threading.Event]) -> Exception | None:
        """Store a batch whole; what the store raised (logged) when it did not take it, else None."""
        records = [item for item in batch if isinstance(item, LoggedPrediction)]
        barriers = [item for item in batch if isinstance(item, threading.Event)] if len(records) < len(batch) else []
        failure = self._store_records(records) if records else None
        if failure is None:
            self._settle(records)
            self._release_barriers(barriers)
        elif refused_by_store(failure):
            logger.warning(
                "Prediction log: the store refused a batch of %d records; finding the ones it refuses",
                len(records),
                exc_info=failure,
            )
        else:
            logger.warning("Prediction log: writing %d records failed; will retry", len(records), exc_info=failure)
        return failure

    def _store_records(self, records: list[LoggedPrediction]) -> Exception | None:
        """Hand ``records`` to the store; what it raised (counted) when it is down or refuses them, else None."""
        try:
            self._store.log_predictions(records)
        except Exception as exc:  # the store is down or refused: the caller keeps the records
            self.failures += 1
            if self._metrics is not None:
                self._metrics.log_write_failures.inc()
            return exc
        return None

    def _settle(self, records: list[LoggedPrediction], *, stored: bool = True) -> None:
        """Records taken off the queue that the store has (or, ``stored=False``, that are given up)."""
        with self._idle:
            self._unwritten -= len(records)
            self._idle.notify_all()
        if not stored:
            self._give_up(records)
            return
        self._released_bytes += sum(map(_size, records))
        self.written += len(records)
        if self._metrics is not None:
            self._metrics.log_written.inc(len(records))

    def _give_up(self, records: list[LoggedPrediction]) -> None:
        """Records that will never be stored: their bytes free, counted as dropped."""
        self._released_bytes += sum(map(_size, records))
        with self._offer_lock:  # refused offers count under it too
            self.dropped += len(records)
        if self._metrics is not None:
            self._metrics.log_dropped.inc(len(records))

    def _release_barriers(self, barriers: list[threading.Event]) -> None:
        with self._idle:
            self._unwritten -= len(barriers)
            self._idle.notify_all()
        for barrier in barriers:
            barrier.set()

    def _isolate(self, batch: list[LoggedPrediction | threading.Event]) -> list[LoggedPrediction | threading.Event]:
        """Write a batch the store refused a part at a time, and drop the records it refuses on their own.

        The store refused the batch for what is in it (``refused_by_store``): retried whole, it would be
        refused for ever, and the log would stop behind it. Each refused part is halved, down to single
        records, so one bad record costs its batch about twice the log of its size in calls. A record refused
        on its own is dropped, counted, and named by request id in the serving log (never its body). A part
        that fails for any other reason (the store went down) ends this: what is left comes back, in order,
        to be retried with backoff, and is looked through again if the store refuses it once more. So is
        what is left when the log closes. Barriers are released once nothing of the batch is left.
        """
        records = [item for item in batch if isinstance(item, LoggedPrediction)]
        barriers = [item for item in batch if isinstance(item, threading.Event)]
        half = len(records) // 2
        parts = deque([records[:half], records[half:]] if half else [records])  # the whole was just refused
        refused: list[LoggedPrediction] = []
        while parts and not self._closing:
            failure = self._store_records(parts[0])
            if failure is not None and not refused_by_store(failure):
                logger.warning("Prediction log: writing a part of a refused batch failed; will retry", exc_info=failure)
                break
            part = parts.popleft()
            if failure is None:
                self._settle(part)
            elif len(part) == 1:
                refused.append(part[0])
            else:
                half = len(part) // 2
                parts.extendleft([part[half:], part[:half]])
        if refused:
            named = ", ".join(f"{r.request_id} ({r.model} v{r.version})" for r in refused[:_NAMED_AT_MOST])
            more = f" and {len(refused) - _NAMED_AT_MOST} more" if len(refused) > _NAMED_AT_MOST else ""
            logger.error(
                "Prediction log: the store refused %d records, which are dropped: requests %s%s",
                len(refused),
                named,
                more,
            )
            self._settle(refused, stored=False)
        left: list[LoggedPrediction | threading.Event] = [record for part in parts for record in part]
        if left:
            return [*left, *barriers]
        self._release_barriers(barriers)
        return []

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wake the writer and wait until the queue is empty and nothing is being written; True if it got there."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._wake.set()
            with self._idle:
                if not self._queue and not self._unwritten:
                    return True
                self._idle.wait(timeout=0.02)
        return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking records, write what is queued, and stop the writer (what it cannot write counts as dropped)."""
        with self._offer_lock:  # an offer or barrier either lands before this, in the writer's last pass, or is refused
            self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None


def _size(record: LoggedPrediction) -> int:
    """What a record counts against ``capacity_bytes``: its body's bytes and its answer's characters."""
    return len(record.body) + len(record.outputs)
