"""The log writer's wire: a batch crosses a real socket pair intact, whatever its bodies and size."""

from __future__ import annotations

import socket
import threading

import pytest

from loopml.entities.serving import PredictionRecord
from loopml.serving import logframes


def _records(count: int, body: str) -> list[PredictionRecord]:
    return [
        PredictionRecord(f"r{i}", 1_700_000_000_000 + i, "churn", 2, "main", body + str(i), f"[{i}]", 1.25, 200)
        for i in range(count)
    ]


def _across(parts: list[bytes]) -> tuple[bytes, memoryview]:
    """Send one frame on one end of a socket pair, from a thread, and receive it on the other."""
    ours, theirs = socket.socketpair()
    try:
        sender = threading.Thread(target=logframes.send_frame, args=(ours, parts))
        sender.start()
        received = logframes.recv_frame(theirs)
        sender.join()
        return received
    finally:
        ours.close()
        theirs.close()


def test_a_batch_with_more_bodies_than_one_sendmsg_takes_arrives_whole_and_in_order():
    records = _records(3_000, '{"records": [{"x": 1.5, "city": "Zürich ✓"}]}')  # 3,003 buffers: several calls
    kind, content = _across(logframes.batch_parts(logframes.LAST, records))
    assert kind == logframes.LAST
    assert logframes.read_batch(content) == records


def test_bodies_that_are_not_plain_text_round_trip_exactly():
    odd = ["", "a\x00b", "\ud800 lone surrogate", "\U0001d518 outside the BMP", "x" * 200_000]
    records = [PredictionRecord(f"r{i}", i, "m", 1, "shadow", text, "{}", 0.0, 500) for i, text in enumerate(odd)]
    kind, content = _across(logframes.batch_parts(logframes.PIECE, records))
    assert kind == logframes.PIECE and logframes.read_batch(content) == records


def test_commands_round_trip_and_a_closed_peer_is_an_eof_not_a_hang():
    kind, content = _across(logframes.command_parts(("prune", (86_400_000, "loopml-serve"))))
    assert kind == logframes.COMMAND
    import pickle

    assert pickle.loads(content) == ("prune", (86_400_000, "loopml-serve"))
    ours, theirs = socket.socketpair()
    ours.sendall(b"\x00\x00\x00")  # a frame's length cut short, then the peer goes away
    ours.close()
    with pytest.raises(EOFError):
        logframes.recv_frame(theirs)
    theirs.close()


def test_a_frame_with_bytes_past_its_last_record_is_refused():
    parts = logframes.batch_parts(logframes.LAST, _records(2, "{}"))
    content = memoryview(b"".join(parts[1:]) + b"junk")
    with pytest.raises(ValueError, match="past its last record"):
        logframes.read_batch(content)
