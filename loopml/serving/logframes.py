"""The wire between ``loopml serve`` and its log-writer process: length-prefixed frames on a local socket.

What matters here is what the serving process does holding the GIL, since
every microsecond of it is one its event loop cannot answer in. A batch of
logged predictions is sent as one frame in which only the small fields are
pickled (request id, time, model, version, role, outputs, latency, status:
tens of bytes a record); each request body (tens of kilobytes for a 100-row
request), still the bytes the server received, goes as its own buffer in one
``sendmsg`` call, so the kernel copies the bodies while the GIL is released.
The writer process turns them into the records' text. Pickling the records
whole instead held the GIL for every byte of every body, and the many
hand-overs of the GIL between the writer thread and the event loop that it
took cost ``loopml serve`` 8% of its throughput with the writer process
discarding everything it got.

A frame is ``length (8 bytes, big-endian) | kind (1 byte) | content``:

* ``PIECE`` / ``LAST``: a batch, or a piece of one (``LAST`` ends it):
  ``meta length (8 bytes) | pickled metadata | body 1 | body 2 | …``;
* ``COMMAND``: a pickled ``(operation, argument)``; replies are ``COMMAND``
  frames too, holding ``(status, value)``.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
from collections.abc import Sequence
from typing import Any

from loopml.entities.serving import PredictionRecord
from loopml.serving.predlog import LoggedPrediction, body_text

PIECE = b"p"
LAST = b"l"
COMMAND = b"c"
_LENGTH = struct.Struct("!Q")
#: Buffers one ``sendmsg`` may take (the kernel's IOV_MAX); a frame with more goes in several calls.
_MAX_BUFFERS = max(16, min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024, 1024))


def batch_parts(kind: bytes, predictions: Sequence[LoggedPrediction]) -> list[bytes]:
    """The content of a ``PIECE`` or ``LAST`` frame: the kind, the pickled small fields, then each body."""
    meta = pickle.dumps(
        [
            (p.request_id, p.time, p.model, p.version, p.role, p.outputs, p.latency_ms, p.status, len(p.body))
            for p in predictions
        ],
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return [kind, _LENGTH.pack(len(meta)), meta, *(p.body for p in predictions)]


def read_batch(content: memoryview) -> list[PredictionRecord]:
    """The records of a ``PIECE`` or ``LAST`` frame's content (after its kind byte), their bodies as text."""
    (meta_length,) = _LENGTH.unpack_from(content)
    start = _LENGTH.size
    meta = pickle.loads(content[start : start + meta_length])
    offset = start + meta_length
    records = []
    for request_id, time, model, version, role, outputs, latency_ms, status, size in meta:
        inputs = body_text(content[offset : offset + size])
        offset += size
        records.append(PredictionRecord(request_id, time, model, version, role, inputs, outputs, latency_ms, status))
    if offset != len(content):
        raise ValueError(f"A log batch frame holds {len(content) - offset} bytes past its last record.")
    return records


def command_parts(value: Any) -> list[bytes]:
    """The content of a ``COMMAND`` frame holding ``value``."""
    return [COMMAND, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)]


def send_frame(sock: socket.socket, parts: Sequence[bytes]) -> None:
    """Send one frame made of ``parts``; the kernel gathers them, with the GIL released while it copies."""
    buffers: list[bytes | memoryview] = [_LENGTH.pack(sum(len(part) for part in parts)), *parts]
    first = 0
    while first < len(buffers):
        sent = sock.sendmsg(buffers[first : first + _MAX_BUFFERS])
        while first < len(buffers) and sent >= len(buffers[first]):
            sent -= len(buffers[first])
            first += 1
        if sent:  # a signal cut the call short inside a buffer: send the rest of it next
            buffers[first] = memoryview(buffers[first])[sent:]


def recv_frame(sock: socket.socket) -> tuple[bytes, memoryview]:
    """``(kind, content)`` of the next frame; EOFError once the other end has closed the socket."""
    (length,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size))
    if length < 1:
        raise ValueError("An empty log-writer frame.")
    frame = memoryview(_recv_exactly(sock, length))
    return bytes(frame[:1]), frame[1:]


def _recv_exactly(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:])
        if count == 0:
            raise EOFError("the other end of the log-writer socket closed it")
        got += count
    return buffer
