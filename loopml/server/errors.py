"""One error body for every failure: ``{"error": {"type": ..., "message": ...}}``.

``LoopMLError`` subclasses answer with their own ``http_status`` and class
name, plus the fields that class carries (``position``/``token`` of a filter
error, ``problems`` of a schema error, ``untrusted`` types), so the REST
client can raise the same class again. Malformed requests answer 422 naming
the field, unknown routes 404, and anything unexpected 500 as ``StoreError``.
A 5xx never carries its message (it may name a database file or a URL with
its password): the client gets the headline and an ``error_id``, the server
log the details under that id.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from loopml.auth.headers import JSON_HEADERS
from loopml.errors import LoopMLError, TooManyRequestsError

logger = logging.getLogger("loopml.server")

#: The loopml error class named for an HTTP error Starlette raises itself.
_HTTP_TYPES = {404: "NotFoundError", 405: "InvalidInputError", 413: "PayloadTooLargeError"}


def error_response(status: int, type_name: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": type_name, "message": message, **extra}}, status_code=status)


def _extra_fields(err: LoopMLError) -> dict[str, Any]:
    """The JSON-able public attributes an error class adds to ``message``."""
    extra = {}
    for name, value in vars(err).items():
        if name == "message" or name.startswith("_"):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        extra[name] = value
    return extra


def _loopml_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoopMLError)
    if exc.http_status >= 500:
        return _server_fault(exc.http_status, type(exc).__name__, exc.headline, exc)
    response = error_response(exc.http_status, type(exc).__name__, exc.message, **_extra_fields(exc))
    if isinstance(exc, TooManyRequestsError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = {_location(tuple(e.get("loc", ()))): str(e.get("msg", "invalid")) for e in exc.errors()}
    listed = "; ".join(f"{where}: {what}" for where, what in problems.items())
    # A malformed filter is the same mistake whichever backend sees it: keep the class the SQL store raises.
    in_filter = bool(problems) and all(".filter" in f".{where}" for where in problems)
    kind = "InvalidFilterError" if in_filter else "InvalidInputError"
    return error_response(422, kind, f"Invalid request: {listed}", problems=problems)


def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    type_name = _HTTP_TYPES.get(exc.status_code, "InvalidInputError" if exc.status_code < 500 else "StoreError")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "No such route; the API lives under /api/v1 (see /api/v1/docs)."
    return Response(
        json.dumps({"error": {"type": type_name, "message": message}}),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


def _client_gone(request: Request, _exc: Exception) -> Response:
    # Expected, not a server fault: a network cut or a killed client mid-upload. The route has
    # already discarded what it had written; the answer has nobody to go to.
    logger.info("The client of %s %s disconnected before sending its whole body", request.method, request.url.path)
    return Response(status_code=400)


def _server_fault(status: int, type_name: str, headline: str, exc: Exception) -> JSONResponse:
    """A 5xx that names no detail: the message of a server fault may hold a database path, a folder or a
    URL with its password, so it goes to the server log under an error id, and the client gets the id."""
    error_id = uuid.uuid4().hex[:16]
    logger.error("%s [error id %s]: %s", type_name, error_id, exc, exc_info=exc)
    message = f"{headline}; error id {error_id}, the details are in the server log."
    return error_response(status, type_name, message, error_id=error_id)


def _unexpected(_request: Request, exc: Exception) -> Response:
    response = _server_fault(500, "StoreError", f"Internal server error ({type(exc).__name__})", exc)
    # answered by Starlette's outermost middleware, outside SecurityHeadersMiddleware
    response.raw_headers.extend(JSON_HEADERS)
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; Starlette finds a handler along the exception's MRO."""
    app.add_exception_handler(LoopMLError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
