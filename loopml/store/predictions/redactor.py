"""Redaction off the serving process's GIL: a large batch is redacted in a helper process.

The prediction log's writer thread shares the serving process's GIL with
the event loop that answers requests. Redacting means parsing each logged
body, rewriting its redacted columns and writing it out again, about 5 µs
per row, all of it Python holding the GIL: every microsecond of it is one
the event loop cannot answer in, and the time the loop waits for the GIL
back comes on top. So a batch worth shipping (``OFFLOAD_BYTES`` of bodies
or more) goes to one helper process, where the work runs on another core;
the writer waits for it without the GIL. The hand-over costs a copy of the
bodies each way, about a tenth of redacting them.

Nothing is ever written unredacted: when the helper cannot be used (a
machine with one core, a helper that died, a batch it could not take) the
writer redacts in its own thread, as it does small batches.

``loopml serve`` writes its log from a process of its own
(``loopml.serving.logwriter``), which redacts in place: it is already off the
serving process's GIL. The helper serves the stores that write the log where
requests are answered: ``loopml server`` taking batches over REST, and an app
built with ``create_serving_app`` on a store object.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from loopml.store.predictions.policy import LogPolicy, apply_policy

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Batches whose bodies add up to fewer bytes are redacted in the writer's own thread.
OFFLOAD_BYTES = 64 * 1024
#: A batch goes to the helper in pieces of about this many bytes of bodies: each piece is pickled (and
#: its answer read back) while holding the GIL, so a big piece would stall the event loop for as long.
PIECE_BYTES = 512 * 1024


def redact_all(items: Sequence[tuple[str, LogPolicy]], key: bytes | None) -> list[tuple[str, list[str]]]:
    """``(redacted inputs, entity keys)`` of each ``(inputs, policy)``, in order (what the helper runs)."""
    return [apply_policy(inputs, policy, key) for inputs, policy in items]


class Redactor:
    """Redacts batches in a helper process when that pays, else in the caller's thread."""

    def __init__(self, offload_bytes: int = OFFLOAD_BYTES) -> None:
        self.offload_bytes = offload_bytes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._pid = -1

    def redact(self, items: Sequence[tuple[str, LogPolicy]], key: bytes | None) -> list[tuple[str, list[str]]]:
        """``redact_all(items, key)``, computed where it costs the serving process least."""
        if sum(len(inputs) for inputs, _ in items) < self.offload_bytes or (os.cpu_count() or 1) < 2:
            return redact_all(items, key)
        pool = self._helper()
        try:
            pieces = cut_in_pieces(items, lambda item: len(item[0]), PIECE_BYTES)
            pending = [pool.submit(redact_all, piece, key) for piece in pieces]
            return [answer for future in pending for answer in future.result()]
        except BrokenProcessPool:
            logger.warning("Prediction log: the redaction helper process died; this batch is redacted in place")
            self._drop(pool)
        except Exception:  # redacting in place below raises the real error, with its own type
            logger.debug("Prediction log: the redaction helper refused a batch", exc_info=True)
        return redact_all(items, key)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _helper(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():  # a forked child starts its own
                # spawn, never fork: the serving process runs threads (event loop, log writer)
                context = multiprocessing.get_context("spawn")
                self._pool, self._pid = ProcessPoolExecutor(max_workers=1, mp_context=context), os.getpid()
            return self._pool

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


def cut_in_pieces(items: Sequence[T], size_of: Callable[[T], int], limit: int) -> list[list[T]]:
    """``items`` in order, cut where the sizes so far pass ``limit``: what crosses to another process at once."""
    pieces: list[list[T]] = [[]]
    size = 0
    for item in items:
        if size >= limit:
            pieces.append([])
            size = 0
        pieces[-1].append(item)
        size += size_of(item)
    return pieces


#: The process's redactor, shared by every store in it (one helper process at most).
REDACTOR = Redactor()
