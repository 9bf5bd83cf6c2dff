"""The prediction log's writes, done by a process of their own beside ``loopml serve``.

The log's writer thread (``loopml.serving.predlog``) never blocks the request
path, but in the serving process it shares the GIL with the event loop that
answers requests: every statement it binds, every Arrow column it builds from
the logged bodies, every column it redacts holds the GIL, and the event loop
waits for it back. Measured with wrk (one worker, 100-row bodies, c=8, 2
cores), that cost 19% of the throughput with the SQL sink and 27 to 57% with the
parquet sink, though the writer used a quarter of a core.

``LogWriterProcess`` stands where the writer thread would call the store:
it sends each batch down a local socket to one child process, which opens
the same store the service did (same URI, same environment), writes the
batch there, and answers once it is stored; the writer thread waits for that
answer without the GIL. Only the records' small fields are pickled: their
bodies cross as they are, copied by the kernel with the GIL released
(``loopml.serving.logframes``). A batch goes in pieces of at most
``PIECE_BYTES``, which bounds what the child reads at once. The queue,
batching, retries, barriers and metrics stay in ``PredictionLog``, unchanged.

When the child dies (killed, out of memory), the batch it held fails like a
store that is down: the writer keeps it and retries, and the next call starts
a new child. A child killed after storing a batch but before answering would
have that batch written twice; the window is the time it takes to send one
short reply. The child exits when the serving process closes the socket, or
dies: it never outlives its parent's end of the socket.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from loopml.entities.serving import PredictionRecord
from loopml.errors import StoreError
from loopml.serving.heap import keep_freed_heap
from loopml.serving.logframes import (
    COMMAND,
    LAST,
    PIECE,
    batch_parts,
    command_parts,
    read_batch,
    recv_frame,
    send_frame,
)
from loopml.serving.predlog import LoggedPrediction, refused_by_store, run_as_batch_work
from loopml.store.predictions.redactor import cut_in_pieces

logger = logging.getLogger(__name__)

#: A batch is sent in pieces of about this many bytes of bodies: what the child reads into memory at once.
PIECE_BYTES = 4 * 1024 * 1024
#: The socket's send buffer asked for: fewer wake-ups of the child per batch (the kernel may cap it).
_SEND_BUFFER = 4 * 1024 * 1024
_STOP_WAIT_S = 10.0


class LogWriterError(StoreError):
    """The log-writer process could not store a batch (its message says why); the batch is kept and retried."""


class LogRecordsRefusedError(LogWriterError, ValueError):
    """The store refused the batch's records themselves (``refused_by_store`` in the writer process).

    A ``ValueError``, as every refusal of the records is, so the log looks through the batch for the
    records at fault (``PredictionLog._isolate``) instead of retrying it whole for ever.
    """


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
        self._sock: socket.socket | None = None
        self._closed = False  # after close, no new child: a late batch fails (and is kept) instead
        self.started = 0  # children started so far (a restart after a death counts)

    def log_batching(self) -> tuple[int, float]:
        return self._batching

    def log_predictions(self, predictions: Sequence[LoggedPrediction]) -> None:
        if predictions:
            self._call("log", list(predictions))

    def prune_predictions(self, older_than_ms: int, *, actor: str) -> dict[str, int]:
        counts: dict[str, int] = self._call("prune", (older_than_ms, actor))
        return counts

    def close(self) -> None:
        """Stop the child after its current batch (waits up to ten seconds, then kills it); start no other."""
        self._closed = True
        if not self._lock.acquire(timeout=_STOP_WAIT_S):  # a call waits on a child that is stuck in the store
            stuck = self._process
            if stuck is not None and stuck.is_alive():
                stuck.kill()  # the waiting call sees the socket close, and fails its batch
            if not self._lock.acquire(timeout=_STOP_WAIT_S):
                logger.error("Prediction log: the writer process did not stop; leaving it")
                return
        try:
            process, sock = self._process, self._sock
            self._process = self._sock = None
        finally:
            self._lock.release()
        if sock is not None:
            try:
                send_frame(sock, command_parts(("stop", None)))
                recv_frame(sock)
            except (EOFError, OSError):
                pass
            sock.close()
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
            if self._closed:
                raise LogWriterError("The prediction-log writer process has been stopped; the batch is not written.")
            sock = self._connection()
            try:
                if op == "log":
                    pieces = cut_in_pieces(argument, lambda p: len(p.body) + len(p.outputs), PIECE_BYTES)
                    for number, piece in enumerate(pieces, start=1):
                        send_frame(sock, batch_parts(LAST if number == len(pieces) else PIECE, piece))
                else:
                    send_frame(sock, command_parts((op, argument)))
                status, value = _reply(sock)
            except (EOFError, OSError) as exc:
                self._discard()
                raise LogWriterError(
                    "The prediction-log writer process stopped before it answered; the batch is kept and retried "
                    "(a new writer process starts)."
                ) from exc
        if status == "refused":
            raise LogRecordsRefusedError(f"The store refused records of the batch: {value}")
        if status != "ok":
            raise LogWriterError(f"The prediction-log writer process could not store the batch: {value}")
        return value

    def _connection(self) -> socket.socket:
        if self._sock is not None and self._process is not None and self._process.is_alive():
            return self._sock
        self._discard()
        context = multiprocessing.get_context("spawn")  # never fork: the serving process runs threads
        ours, theirs = socket.socketpair()
        with contextlib.suppress(OSError):  # the kernel caps it (net.core.wmem_max); a smaller buffer still works
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        # a daemon: stopped at this process's exit rather than waited for (it starts no processes of its own)
        process = context.Process(target=_child, args=(theirs, self.store_uri), name="loopml-log-writer", daemon=True)
        try:
            process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the child holds its end; ours sees EOF once the child is gone
        self._process, self._sock = process, ours
        self.started += 1
        return ours

    def _discard(self) -> None:
        process, sock = self._process, self._sock
        self._process = self._sock = None
        if sock is not None:
            sock.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join()


def _reply(sock: socket.socket) -> tuple[str, Any]:
    kind, content = recv_frame(sock)
    if kind != COMMAND:
        raise EOFError(f"the writer process answered with a frame of kind {kind!r}")
    status, value = pickle.loads(content)
    return str(status), value


def _answer(sock: socket.socket, reply: tuple[str, Any]) -> None:
    send_frame(sock, command_parts(reply))


def _child(sock: socket.socket, store_uri: str | None) -> None:
    """The writer process: open the store, then store each batch it is sent and answer once it is stored."""
    from loopml.store import open_store
    from loopml.store.predictions.redactor import REDACTOR

    run_as_batch_work()  # its wake-ups do not preempt the serving process's event loop
    REDACTOR.offload_bytes = sys.maxsize  # this process is already off the serving process's GIL
    keep_freed_heap()  # each batch's bodies reuse the last one's memory (loopml.serving.heap)
    try:
        store = open_store(store_uri)
    except Exception as exc:  # answer every request with why, so the service logs it and retries
        _refuse_all(sock, f"{type(exc).__name__}: {exc}")
        return
    pending: list[PredictionRecord] = []
    try:
        while True:
            try:
                kind, content = recv_frame(sock)
            except (EOFError, OSError):  # the serving process closed the socket or died
                return
            if kind == PIECE:
                pending.extend(read_batch(content))
                continue
            try:
                if kind == LAST:
                    pending.extend(read_batch(content))
                    store.serving.log_predictions(pending)
                    reply: tuple[str, Any] = ("ok", None)
                else:
                    op, argument = pickle.loads(content)
                    if op == "prune":
                        reply = ("ok", store.serving.prune_predictions(argument[0], actor=argument[1]))
                    elif op == "stop":
                        _answer(sock, ("ok", None))
                        return
                    else:
                        reply = ("error", f"unknown request {op!r}")
            except Exception as exc:  # the store refused the records, or is down: the service keeps the batch
                reply = ("refused" if refused_by_store(exc) else "error", f"{type(exc).__name__}: {exc}")
            finally:
                pending = []
            _answer(sock, reply)
    finally:
        store.close()


def _refuse_all(sock: socket.socket, why: str) -> None:
    while True:
        try:
            kind, content = recv_frame(sock)
            if kind != PIECE:
                _answer(sock, ("error", f"the writer process could not open the store ({why})"))
            if kind == COMMAND and pickle.loads(content)[0] == "stop":
                return
        except (EOFError, OSError):
            return
