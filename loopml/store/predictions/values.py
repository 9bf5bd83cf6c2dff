"""A logged request as the values the model was given: a numeric matrix and its column names, packed.

A 100-row request of 30 numeric columns is about 80 KB of JSON text and 24
KB as float64 values. Every step of the prediction log scales with the bytes
it logs: holding the body in the serving process, sending it to the writer
process, compressing it (zstd, about 1.5 ns a byte whatever the level) and
writing it. The digits carry the entropy, so the values barely compress
(24 KB to 17 KB, in half the time the text takes) and are stored as they
are. So when ``loopml serve`` answers a large numeric request on its fast
path, it logs the matrix it built for the model instead of the text: no
decode of the body, a third of the bytes, and no compression.

Packed values are ``1 (one byte) | header length (4 bytes, big-endian) |
header (JSON) | the matrix, row by row, little-endian``; the header holds the
column names, the dtype, the row count, which float columns the signature
says are integers, and the request's routing ``key``. The leading byte tells
them apart from the SQL sink's compressed text, which starts with a zero
(the first byte of an 8-byte length). Reading gives them back as the JSON
text a client could have sent, ``{"columns": {"name": [values], ...}}``:
equal in value to the request the model answered, not in its bytes (its
shape, spacing and number spelling are the log's own).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import orjson

from loopml.entities.serving import PredictionRecord
from loopml.errors import StoreError

#: The first byte of packed values (version 1 of the format).
MARK = 1
_HEADER_LENGTH = struct.Struct("!I")
_DTYPES = {"<f8": np.dtype("<f8"), "<i8": np.dtype("<i8")}


class CorruptValuesError(StoreError):
    """Logged values that cannot be read back (a damaged row or file); the message says what is wrong."""


def pack_values(
    names: Sequence[str], matrix: np.ndarray, *, integer_columns: Sequence[int] = (), key: str | None = None
) -> bytes | None:
    """``matrix`` (rows by ``names``) packed for the log; None when it cannot be written as JSON numbers.

    Only finite float64 or int64 matrices are packed: an infinity has no JSON spelling, and anything else
    stays the text it came as.
    """
    if matrix.ndim != 2 or matrix.shape[1] != len(names) or matrix.dtype.kind not in "fi":
        return None
    data = np.ascontiguousarray(matrix, dtype="<f8" if matrix.dtype.kind == "f" else "<i8")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        return None
    header: dict[str, Any] = {"names": list(names), "dtype": data.dtype.str, "rows": int(data.shape[0])}
    if integer_columns and data.dtype.kind == "f":
        integer = [int(index) for index in integer_columns]
        if (np.abs(data[:, integer]) < 2.0**53).all():  # whole numbers a float holds exactly, read back as ints
            header["integer"] = integer
    if key is not None:
        header["key"] = key
    encoded = orjson.dumps(header)
    return b"".join((bytes((MARK,)), _HEADER_LENGTH.pack(len(encoded)), encoded, data.tobytes()))


def is_packed(data: bytes | memoryview) -> bool:
    """True when ``data`` holds packed values (its first byte is the mark)."""
    return len(data) > 0 and data[0] == MARK


def values_text(packed: bytes | memoryview) -> str:
    """The JSON text of packed values: ``{"columns": {name: [values], ...}}`` (and the ``key``, if any)."""
    view = memoryview(packed)
    try:
        if not is_packed(view):
            raise ValueError("no mark")
        (length,) = _HEADER_LENGTH.unpack_from(view, 1)
        start = 1 + _HEADER_LENGTH.size
        header = orjson.loads(view[start : start + length])
        names, rows, dtype = header["names"], header["rows"], _DTYPES[header["dtype"]]
        matrix = np.frombuffer(view[start + length :], dtype=dtype).reshape(rows, len(names))
    except (ValueError, KeyError, TypeError, struct.error, orjson.JSONDecodeError) as exc:
        raise CorruptValuesError(f"A logged request's values cannot be read back ({exc}).") from None
    columns = np.ascontiguousarray(matrix.T)  # orjson writes C-contiguous arrays only
    integer = set(header.get("integer", ()))
    body: dict[str, Any] = {
        "columns": {name: columns[i].astype(np.int64) if i in integer else columns[i] for i, name in enumerate(names)}
    }
    if "key" in header:
        body["key"] = header["key"]
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def inputs_text(record: PredictionRecord) -> str:
    """A record's logged inputs as JSON text: its ``inputs``, or its packed values written out."""
    return record.inputs if record.values is None else values_text(record.values)


def as_text(record: PredictionRecord) -> PredictionRecord:
    """``record`` with its inputs as text (a record logged as values gets their JSON; ``values`` None)."""
    return record if record.values is None else replace(record, inputs=values_text(record.values), values=None)
