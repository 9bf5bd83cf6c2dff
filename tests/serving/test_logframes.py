"""The log writer's wire: a batch crosses a real socket pair intact, whatever its bodies and size."""

from __future__ import annotations

import socket
import threading

import pytest

from loopml.serving import logframes
from loopml.serving.predlog import LoggedPrediction


def _offered(count: int, body: bytes) -> list[LoggedPrediction]:
    return [
        LoggedPrediction(f"r{i}", 1_700_000_000_000 + i, "churn", 2, "main", body + b"%d" % i, f"[{i}]", 1.25, 200)
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
    offered = _offered(3_000, '{"records": [{"x": 1.5, "city": "Zürich ✓"}]}'.encode())  # 3,003 buffers: several calls
    kind, content = _across(logframes.batch_parts(logframes.LAST, offered))
    assert kind == logframes.LAST
    records = logframes.read_batch(content)
    assert records == [p.record() for p in offered]
    assert records[5].inputs == '{"records": [{"x": 1.5, "city": "Zürich ✓"}]}5'


def test_bodies_become_the_records_text_however_they_were_encoded():
    bodies = {
        b"": "",
        "\U0001d518 outside the BMP".encode(): "\U0001d518 outside the BMP",
        b"x" * 200_000: "x" * 200_000,
        # JSON may come as UTF-16 or UTF-32: stored re-encoded, as the same JSON value
        '{"inputs": {"city": "Zürich"}}'.encode("utf-16"): '{"inputs": {"city": "Z\\u00fcrich"}}',
        '{"inputs": [1]}'.encode("utf-32-le"): '{"inputs": [1]}',
        # neither UTF-8 nor JSON (the service logs only bodies it parsed): kept, never a failed batch
        b"ab\xffcd": "ab\ufffdcd",
    }
    offered = [LoggedPrediction(f"r{i}", i, "m", 1, "shadow", body, "{}", 0.0, 500) for i, body in enumerate(bodies)]
    kind, content = _across(logframes.batch_parts(logframes.PIECE, offered))
    assert kind == logframes.PIECE
    assert [record.inputs for record in logframes.read_batch(content)] == list(bodies.values())
    assert [p.record().inputs for p in offered] == list(bodies.values())  # the writer thread's records alike


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
    parts = logframes.batch_parts(logframes.LAST, _offered(2, b"{}"))
    content = memoryview(b"".join(parts[1:]) + b"junk")
    with pytest.raises(ValueError, match="past its last record"):
        logframes.read_batch(content)
