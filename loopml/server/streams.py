"""A request body as a file-like object that a sync route can read while it arrives.

Sync routes run in a worker thread; each read pulls the next chunk from the
ASGI receive channel on the event loop (``anyio.from_thread``), so an upload
is hashed and written as it streams in and never sits whole in memory.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import anyio.from_thread
from starlette.requests import Request

_BUFFER = 1 << 20


class _RequestBodyRaw(io.RawIOBase):
    def __init__(self, request: Request) -> None:
        self._chunks: AsyncIterator[bytes] = request.stream().__aiter__()
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    async def _next_chunk(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            chunk = anyio.from_thread.run(self._next_chunk)
            if chunk is None:
                self._done = True
            else:
                self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def request_body_reader(request: Request) -> io.BufferedReader:
    """A binary reader over the request body, for use from a sync route's worker thread."""
    return io.BufferedReader(_RequestBodyRaw(request), buffer_size=_BUFFER)
