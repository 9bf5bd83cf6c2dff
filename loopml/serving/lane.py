"""The prediction routes as bare ASGI, in front of the FastAPI app.

FastAPI's routing, dependency solving and exception middleware cost more
per request than a fast model's prediction; on the prediction routes they
do nothing the service does not do itself. So ``PredictLane`` answers
``POST /v1/models/{name}[/versions/{v}]/predict`` and
``POST /v2/models/{name}[/versions/{v}]/infer`` directly: it splits the
path, reads the body (413 past the limit), checks the API token exactly as
``loopml.auth.guard.authorize`` does (``viewer`` or above, before anything
is looked up), calls ``PredictionService.predict`` and sends the bytes.
Every other request, and the same routes' OpenAPI description, belong to
the FastAPI app behind it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from loopml.auth.headers import JSON_HEADERS
from loopml.auth.tokens import Authenticator, require_role
from loopml.entities.auth import Role
from loopml.errors import InvalidInputError, LoopMLError, PayloadTooLargeError
from loopml.serving import binary
from loopml.serving.errors import loopml_error_response, unexpected_error_response, v2_shaped
from loopml.serving.explaining import explanations_of, wants_explanation
from loopml.serving.service import PredictionService

#: Built once: a prediction answer only appends its content-length (security headers as on every answer).
_OK_HEADERS = ((b"content-type", b"application/json"), *JSON_HEADERS)
#: A v2 answer with binary outputs: JSON, then bytes (Triton answers these as octet-stream too).
_BINARY_HEADERS = ((b"content-type", b"application/octet-stream"), *JSON_HEADERS)


def match(path: str) -> tuple[str, str | None, bool] | None:
    """(name segment, version or None, v2?) for a prediction path, else None."""
    parts = path.split("/")
    count = len(parts)
    if count not in (5, 7) or parts[0] or parts[2] != "models":
        return None
    api, last = parts[1], parts[-1]
    if api == "v1" and last == "predict":
        v2 = False
    elif api == "v2" and last == "infer":
        v2 = True
    else:
        return None
    if count == 7:
        if parts[4] != "versions" or not parts[5]:
            return None
        return parts[3], parts[5], v2
    return (parts[3], None, v2) if parts[3] else None


class PredictLane:
    """ASGI middleware: prediction requests straight to the service, everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, service: PredictionService, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = match(scope["path"])
            if found is not None:
                await self._predict(scope, receive, send, *found)
                return
        await self.app(scope, receive, send)

    async def _predict(
        self, scope: Scope, receive: Receive, send: Send, name: str, version: str | None, v2: bool
    ) -> None:
        length = authorization = key = request_id = header_length = None
        for header, value in scope["headers"]:
            if header == b"content-length":
                length = value
            elif header == b"authorization":
                authorization = value
            elif header == b"x-loopml-key":
                key = value
            elif header == b"x-request-id":
                request_id = value
            elif header == b"inference-header-content-length":
                header_length = value
        try:
            await self._authorize(scope, authorization)
            body = await self._body(receive, length)
            if body is None:  # the client went away
                return
            explain = wants_explanation(scope.get("query_string", b""))  # ?explain=true: see serving/explaining.py
            predict = explanations_of(scope["app"], self.service).predict if explain else self.service.predict
            answer = await predict(
                name,
                version,
                body,
                v2=v2,
                key=None if key is None else key.decode("latin-1"),
                request_id=None if request_id is None else request_id.decode("latin-1"),
                header_length=binary.header_length(header_length) if v2 else None,
            )
        except LoopMLError as exc:
            response = loopml_error_response(exc)
            await (v2_shaped(response) if v2 else response)(scope, receive, send)
            return
        except Exception as exc:  # a fault of the service, never of the client
            response = unexpected_error_response(exc)
            await (v2_shaped(response) if v2 else response)(scope, receive, send)
            return
        content = answer.content
        fixed = _OK_HEADERS if answer.header_length is None else _BINARY_HEADERS
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*fixed, (b"content-length", str(len(content)).encode()), *answer.headers()]})  # fmt: skip
        await send({"type": "http.response.body", "body": content})

    async def _authorize(self, scope: Scope, authorization: bytes | None) -> None:
        """What ``loopml.auth.guard.authorize`` does for a route marked ``needs(Role.VIEWER)``."""
        authenticator: Authenticator | None = getattr(scope["app"].state, "authenticator", None)
        if authenticator is None:
            return
        header = None if authorization is None else authorization.decode("latin-1")
        # cached tokens answer inline; one the caches have not seen waits for a bounded check slot (or 429)
        token = await authenticator.aauthenticate(header)
        require_role(token, Role.VIEWER, f"POST {scope['path']}")

    async def _body(self, receive: Receive, length: bytes | None) -> bytes | None:
        limit = self.max_body_bytes
        if length is not None:
            if not length.isdigit():
                raise InvalidInputError(f"Content-Length {length[:40]!r} is not a number.")
            # more digits than the limit has is larger than it: int() would refuse thousands of them (a 500)
            digits = length.lstrip(b"0") or b"0"
            if len(digits) > len(str(limit)) or int(digits) > limit:
                raise PayloadTooLargeError(f"The request body is larger than this server accepts ({limit} bytes).")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"The request body is larger than this server accepts ({limit} bytes).")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
