"""Buffered metric logging: one call appends in memory, batches reach the store.

``log_metric`` must cost microseconds, so points are queued per run and
written as one transaction: at run end, on ``flush()``, every second from a
background thread, when a buffer holds ``MAX_BUFFERED`` points, and at
interpreter exit. Points a run can no longer take (it ended, or the store no
longer has it) are never dropped silently: ``flush()`` and run end raise
MetricsLostError with their count. Each batch carries an idempotency key that stays with it
until the store acknowledges it, so a retried batch is never applied twice.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
import weakref
from collections.abc import Sequence

from loopml.entities.tracking import Metric
from loopml.errors import LoopMLError, MetricsLostError, RunNotActiveError, RunNotFoundError
from loopml.store.tracking import TrackingStore

logger = logging.getLogger("loopml.tracking")

FLUSH_INTERVAL_S = 1.0
MAX_BUFFERED = 10_000


class MetricBuffer:
    """Pending metric points of one run, flushed to the store in batches."""

    def __init__(self, store: TrackingStore, run_id: str) -> None:
        self._store = store
        self.run_id = run_id
        self._points: list[Metric] = []
        self._pending: list[tuple[str, list[Metric]]] = []  # batches taken but not yet acknowledged
        self._lock = threading.Lock()  # guards _points
        self._flush_lock = threading.Lock()  # one flush at a time, in order
        self._n_lost = 0  # points the run can no longer take, not yet reported by flush()
        self._lost_cause: LoopMLError | None = None
        self.closed = False
        _flusher.register(self)

    def add(self, points: Sequence[Metric]) -> None:
        with self._lock:
            self._points.extend(points)
            full = len(self._points) >= MAX_BUFFERED
        if full:
            self.flush()

    def __len__(self) -> int:
        with self._lock:
            return len(self._points) + sum(len(batch) for _, batch in self._pending)

    def flush(self) -> None:
        """Write every buffered point; durable when this returns.

        Raises:
            MetricsLostError: points were lost because the run ended or vanished (on this
                flush or an earlier background one), with their count; raised once per loss.
            LoopMLError: the store failed; the points are kept for the next flush.
        """
        self._write()
        with self._lock:
            n_lost, cause = self._n_lost, self._lost_cause
            self._n_lost, self._lost_cause = 0, None
        if n_lost:
            raise MetricsLostError(
                f"{n_lost} metric points of run {self.run_id} were lost: {cause} "
                "Log them to a run that exists and is still running.",
                run_id=self.run_id,
                n_points=n_lost,
            ) from cause

    def _write(self) -> None:
        """Write the buffered points; a run that ended or vanished turns them into lost points."""
        with self._flush_lock:
            with self._lock:
                if self._points:
                    self._pending.append((uuid.uuid4().hex, self._points))
                    self._points = []
            try:
                while self._pending:
                    key, batch = self._pending[0]
                    self._store.log_batch(self.run_id, metrics=batch, idempotency_key=key)
                    self._pending.pop(0)
            except (RunNotActiveError, RunNotFoundError) as exc:
                # No retry can write these: count them, so that flush() and run end raise.
                with self._lock:
                    self._n_lost += sum(len(batch) for _, batch in self._pending)
                    self._lost_cause = exc
                    self._pending = []

    def close(self) -> None:
        """Flush and stop the background flushing of this buffer."""
        try:
            self.flush()
        finally:
            self.closed = True
            _flusher.unregister(self)

    def background_flush(self) -> None:
        """Flush from the timer thread: errors are logged, points kept for the next try.

        Points lost to a run that ended or vanished are logged here and kept counted,
        so the next ``flush()`` or run end raises MetricsLostError.
        """
        if self._flush_lock.locked():
            return
        try:
            self._write()
        except (LoopMLError, OSError) as exc:  # the store is unreachable: keep the points, try again later
            logger.warning("Could not flush metrics of run %s yet: %s", self.run_id, exc)
        except Exception as exc:  # a database driver error; the next explicit flush re-raises it
            logger.warning("Could not flush metrics of run %s yet: %r", self.run_id, exc)
        with self._lock:
            n_lost, cause = self._n_lost, self._lost_cause
        if n_lost:
            logger.error("%d metric points of run %s are lost: %s", n_lost, self.run_id, cause)


class _Flusher:
    """One daemon thread per process that flushes every live buffer each second."""

    def __init__(self) -> None:
        self._buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def register(self, buffer: MetricBuffer) -> None:
        with self._lock:
            self._buffers.add(buffer)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="loopml-metric-flusher", daemon=True)
                self._thread.start()

    def unregister(self, buffer: MetricBuffer) -> None:
        with self._lock:
            self._buffers.discard(buffer)

    def _snapshot(self) -> list[MetricBuffer]:
        with self._lock:
            return list(self._buffers)

    def _run(self) -> None:
        while not self._wake.wait(FLUSH_INTERVAL_S):
            for buffer in self._snapshot():
                if len(buffer):
                    buffer.background_flush()

    def flush_all(self) -> None:
        for buffer in self._snapshot():
            if len(buffer):
                buffer.background_flush()


_flusher = _Flusher()
atexit.register(_flusher.flush_all)


def flush_all() -> None:
    """Flush every run's buffered metrics in this process (errors are logged)."""
    _flusher.flush_all()
