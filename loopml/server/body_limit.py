"""Refuse request bodies over a size limit, declared or streamed, with 413.

The declared ``Content-Length`` is checked before the app runs; a body sent
without one (chunked) or longer than declared is counted as it is received,
and the read that crosses the limit raises an HTTPException that the error
handlers turn into the 413 answer (``PayloadTooLargeError``). It is an
HTTPException, not a LoopMLError, because FastAPI turns any other exception
raised while it reads a JSON body into a 400.

JSON routes share one small limit; a path named in ``path_limits`` (the
streamed artifact upload) has its own, so a large model can be uploaded
without letting every JSON route take gigabytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
#: Artifact uploads: models (forests especially) are often far larger than any JSON body.
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024**3


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int, hint: str = "") -> None:
        super().__init__(413, f"The request body is larger than this server accepts ({limit:,} bytes){hint}.")


class BodyLimitMiddleware:
    """ASGI middleware: at most ``max_body_bytes`` of request body per request.

    ``path_limits`` maps a request path (e.g. ``/api/v1/artifacts/blobs``) to
    its own limit, which replaces ``max_body_bytes`` for that path only.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        *,
        path_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(_route_path(scope))
        # Only the upload limit is an operator's option; the JSON limit is fixed.
        hint = "; the server's --max-upload-bytes option sets this limit" if limit is not None else ""
        limit = self.max_body_bytes if limit is None else limit
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, BodyTooLargeError(limit, hint))
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit, hint)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLargeError as exc:
            if started:  # too late for a 413; the server drops the connection
                raise
            await _refuse(send, exc)


def _route_path(scope: Scope) -> str:
    """The request path without the ASGI ``root_path`` a proxy may have put in front of it."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, exc: BodyTooLargeError) -> None:
    body = json.dumps({"error": {"type": "PayloadTooLargeError", "message": exc.detail}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
