"""Request bodies in the SQL prediction log, compressed: fewer bytes for the database to write and keep.

A logged body is the request as received, JSON text; a 100-row request of
30 numeric columns is about 80 KB, and the SQL sink used to write it as it
came. On SQLite each such row spans some twenty overflow pages, each written
to the write-ahead log and again to the database at the checkpoint: about
400 µs of the writer's CPU per logged request, most of it in the kernel.
Compressed with zstd (level 1, about 200 MB/s a core) the same body is a
fifth the size, and writing it costs half as much CPU in all. PostgreSQL
would compress a long text value itself (TOAST), in the server process,
with a slower codec; compressing it here does the work once, in the writer.

A body shorter than ``COMPRESS_FROM`` bytes is stored as text (the
``inputs`` column); a longer one goes to ``inputs_zstd`` as its length
(8 bytes, big-endian) followed by one zstd frame of its UTF-8 bytes, with
``inputs`` left empty. Readers take whichever column is set, so rows written
before the column existed read as they always did.
"""

from __future__ import annotations

import struct

import pyarrow as pa  # type: ignore[import-untyped]

#: Bodies of at least this many characters are stored compressed.
COMPRESS_FROM = 1024
_LENGTH = struct.Struct("!Q")
_CODEC = pa.Codec("zstd", compression_level=1)
#: Bodies are text; a lone surrogate (never in a decoded request, possible in a str built elsewhere) round-trips.
_ERRORS = "surrogatepass"


def pack(inputs: str) -> tuple[str, bytes | None]:
    """``(inputs column, inputs_zstd column)`` for one body: the text as is, or compressed when long."""
    if len(inputs) < COMPRESS_FROM:
        return inputs, None
    data = inputs.encode("utf-8", _ERRORS)
    return "", _LENGTH.pack(len(data)) + _CODEC.compress(data, asbytes=True)


def unpack(inputs: str, compressed: bytes | None) -> str:
    """The body of a stored row, from whichever of its two columns holds it."""
    if compressed is None:
        return inputs
    view = memoryview(compressed)
    (length,) = _LENGTH.unpack_from(view)
    data = _CODEC.decompress(view[_LENGTH.size :], decompressed_size=length, asbytes=True)
    return str(data, "utf-8", _ERRORS)
