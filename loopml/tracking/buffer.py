"""Buffered metric logging: one call appends in memory, batches reach the store.

``log_metric`` must cost microseconds, so points are queued per run and
written as one transaction: at run end, on ``flush()``, every second from a
background thread, when a buffer holds ``MAX_BUFFERED`` points, and at
interpreter exit. Each batch carries an idempotency key that stays with it
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
from loopml.errors import LoopMLError, RunNotActiveError, RunNotFoundError
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
        """Write every buffered point; durable when this returns. Raises store errors."""
        with self._flush_lock:
            with self._lock:
                if self._points:
                    self._pending.append((uuid.uuid4().hex, self._points))
                    self._points = []
            while self._pending:
                key, batch = self._pending[0]
                self._store.log_batch(self.run_id, metrics=batch, idempotency_key=key)
                self._pending.pop(0)

    def close(self) -> None:
        """Flush and stop the background flushing of this buffer."""
        try:
            self.flush()
        finally:
            self.closed = True
            _flusher.unregister(self)

    def background_flush(self) -> None:
        """Flush from the timer thread: errors are logged, points kept for the next try."""
        if self._flush_lock.locked():
            return
        try:
            self.flush()
        except (RunNotActiveError, RunNotFoundError) as exc:
            dropped = len(self)
            with self._lock:
                self._points, self._pending = [], []
            logger.error("Dropped %d metric points of run %s: %s", dropped, self.run_id, exc)
        except (LoopMLError, OSError) as exc:  # the store is unreachable: keep the points, try again later
            logger.warning("Could not flush metrics of run %s yet: %s", self.run_id, exc)
        except Exception as exc:  # a database driver error; the next explicit flush re-raises it
            logger.warning("Could not flush metrics of run %s yet: %r", self.run_id, exc)


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
