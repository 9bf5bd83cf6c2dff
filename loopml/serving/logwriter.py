"""The prediction log's writes, done by a process of their own beside ``loopml serve``.

The log's writer thread (``loopml.serving.predlog``) never blocks the request
path, but in the serving process it shares the GIL with the event loop that
answers requests: every statement it binds, every Arrow column it builds from
the logged bodies, every column it redacts holds the GIL, and the event loop
waits for it back. Measured with wrk (one worker, 100-row bodies, c=8, 2
cores), that cost 19% of the throughput with the SQL sink and 27 to 57% with the
parquet sink, though the writer used a quarter of a core.

``LogWriterProcess`` stands where the writer thread would call the store:
it sends each batch (pickled, in pieces of ``PIECE_BYTES`` so no send holds
the GIL long) down a pipe to one child process, which opens the same store
the service did (same URI, same environment), writes the batch there, and
answers once it is stored; the writer thread waits for that answer without
the GIL. The queue, batching, retries, barriers and metrics stay in
``PredictionLog``, unchanged.

When the child dies (killed, out of memory), the batch it held fails like a
store that is down: the writer keeps it and retries, and the next call starts
a new child. A child killed after storing a batch but before answering would
have that batch written twice; the window is the time it takes to send one
short reply. The child exits when the serving process closes the pipe, or
dies: it never outlives its parent's end of the pipe.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from loopml.entities.serving import PredictionRecord
from loopml.errors import StoreError
from loopml.store.predictions.redactor import cut_in_pieces

logger = logging.getLogger(__name__)

#: Records are sent in pieces of about this many bytes of bodies (each piece is pickled holding the GIL).
PIECE_BYTES = 512 * 1024
_STOP_WAIT_S = 10.0


class LogWriterError(StoreError):
    """The log-writer process could not store a batch (its message says why); the batch is kept and retried."""


class LogWriterProcess:
    """The prediction-log writes of a ``ServingStore`` (``log_predictions``, ``prune_predictions``), in a child.

    Args:
        store_uri: the store the child opens (None: the one the environment names, as the service's own).
        sink: the service's prediction sink (``"sql"`` or ``"parquet"``), whose batching it keeps.
        batching: the service store's ``log_batching()``.
    """

    def __init__(self, store_uri: str | None, *, sink: str, batching: tuple[int, float]) -> None:
        self.store_uri = store_uri
        self.prediction_sink = sink
        self._batching = batching
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self.started = 0  # children started so far (a restart after a death counts)

    def log_batching(self) -> tuple[int, float]:
        return self._batching

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        if records:
            self._call("log", list(records))

    def prune_predictions(self, older_than_ms: int, *, actor: str) -> dict[str, int]:
        counts: dict[str, int] = self._call("prune", (older_than_ms, actor))
        return counts

    def close(self) -> None:
        """Stop the child after its current batch (waits up to ten seconds, then kills it)."""
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if conn is not None:
            try:
                conn.send(("stop", None))
                conn.recv()
            except (EOFError, OSError):
                pass
            conn.close()
        if process is not None:
            process.join(_STOP_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before the first write)."""
        return None if self._process is None else int(self._process.pid)

    # -- internals ------------------------------------------------------------------------------------
    def _call(self, op: str, argument: Any) -> Any:
        with self._lock:
            conn = self._connection()
            try:
                if op == "log":
                    pieces = cut_in_pieces(argument, lambda r: len(r.inputs) + len(r.outputs), PIECE_BYTES)
                    for piece in pieces[:-1]:
                        conn.send(("piece", piece))
                    conn.send(("log", pieces[-1]))
                else:
                    conn.send((op, argument))
                status, value = conn.recv()
            except (EOFError, OSError) as exc:
                self._discard()
                raise LogWriterError(
                    "The prediction-log writer process stopped before it answered; the batch is kept and retried "
                    "(a new writer process starts)."
                ) from exc
        if status != "ok":
            raise LogWriterError(f"The prediction-log writer process could not store the batch: {value}")
        return value

    def _connection(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            return self._conn
        self._discard()
        context = multiprocessing.get_context("spawn")  # never fork: the serving process runs threads
        ours, theirs = context.Pipe()
        _widen(ours)
        process = context.Process(target=_child, args=(theirs, self.store_uri), name="loopml-log-writer")
        process.start()
        theirs.close()  # the child holds its end; ours sees EOF once the child is gone
        self._process, self._conn = process, ours
        self.started += 1
        return ours

    def _discard(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join()


def _widen(conn: Connection) -> None:
    """Let one piece go down the socket in one write: each write the kernel cuts short retakes the GIL after."""
    with contextlib.suppress(OSError):  # the kernel caps it (net.core.wmem_max); a smaller buffer still works
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * PIECE_BYTES)
        finally:
            sock.close()


def _child(conn: Connection, store_uri: str | None) -> None:
    """The writer process: open the store, then store each batch it is sent and answer once it is stored."""
    from loopml.store import open_store
    from loopml.store.predictions.redactor import REDACTOR

    REDACTOR.offload_bytes = sys.maxsize  # this process is already off the serving process's GIL
    try:
        store = open_store(store_uri)
    except Exception as exc:  # answer every request with why, so the service logs it and retries
        _refuse_all(conn, f"{type(exc).__name__}: {exc}")
        return
    pending: list[PredictionRecord] = []
    try:
        while True:
            try:
                op, argument = conn.recv()
            except (EOFError, OSError):  # the serving process closed the pipe or died
                return
            if op == "piece":
                pending.extend(argument)
                continue
            try:
                if op == "log":
                    pending.extend(argument)
                    store.serving.log_predictions(pending)
                    reply: tuple[str, Any] = ("ok", None)
                elif op == "prune":
                    reply = ("ok", store.serving.prune_predictions(argument[0], actor=argument[1]))
                elif op == "stop":
                    conn.send(("ok", None))
                    return
                else:
                    reply = ("error", f"unknown request {op!r}")
            except Exception as exc:  # the store refused or is down: the service keeps the batch and retries
                reply = ("error", f"{type(exc).__name__}: {exc}")
            finally:
                pending = []
            conn.send(reply)
    finally:
        store.close()


def _refuse_all(conn: Connection, why: str) -> None:
    while True:
        try:
            op, _ = conn.recv()
            if op != "piece":
                conn.send(("error", f"the writer process could not open the store ({why})"))
            if op == "stop":
                return
        except (EOFError, OSError):
            return
