"""Error answers of the prediction service: ``{"error": {"type": ..., "message": ...}}``, as the control plane's.

The body has the same shape as the control-plane server's (``type`` is the
``loopml.errors`` class name; a SchemaError adds ``problems``, one entry per
bad column), so clients handle both alike. The data plane keeps its own
copy of these few handlers because it must not import the control plane.
Client mistakes answer 4xx; only a fault of the service answers 5xx.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from loopml.auth.headers import JSON_HEADERS
from loopml.errors import LoopMLError, TooManyRequestsError

logger = logging.getLogger("loopml.serving")

_HTTP_TYPES = {404: "NotFoundError", 405: "InvalidInputError", 413: "PayloadTooLargeError"}


def error_response(status: int, type_name: str, message: str, headers: Any = None, **extra: Any) -> Response:
    body = json.dumps({"error": {"type": type_name, "message": message, **extra}}, ensure_ascii=False)
    response = Response(body, status_code=status, headers=headers, media_type="application/json")
    # here, not only in the middleware: the fast lane and Starlette's 500 handler answer outside it
    response.raw_headers.extend(JSON_HEADERS)
    return response


def _extra_fields(err: LoopMLError) -> dict[str, Any]:
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


def loopml_error_response(exc: LoopMLError) -> Response:
    """The answer for a LoopMLError: its status, class name, message and extra fields (``problems``, ...)."""
    if exc.http_status >= 500:
        hint = " Retry in a little while." if exc.http_status == 503 else ""
        return _server_fault(exc.http_status, type(exc).__name__, exc.headline, exc, hint)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequestsError) else None
    return error_response(exc.http_status, type(exc).__name__, exc.message, headers, **_extra_fields(exc))


def unexpected_error_response(exc: Exception) -> Response:
    """A 500 for a fault of the service (logged with its traceback); never for a client's mistake."""
    return _server_fault(500, "LoopMLError", f"Internal server error ({type(exc).__name__})", exc)


def _server_fault(status: int, type_name: str, headline: str, exc: Exception, hint: str = "") -> Response:
    """A 5xx that names no detail: a fault's message may hold a model file's path or a URL with its
    password, so it goes to the log under an error id, and the client gets the id."""
    error_id = uuid.uuid4().hex[:16]
    logger.error("%s [error id %s]: %s", type_name, error_id, exc, exc_info=exc)
    message = f"{headline}; error id {error_id}, the details are in the server log.{hint}"
    return error_response(status, type_name, message, error_id=error_id)


def v2_shaped(response: Response) -> Response:
    """The same error in the Open Inference Protocol's shape, ``{"error": "<message>"}``, for the ``/v2`` routes.

    Triton's and KServe's clients read exactly that; a client mistake is the protocol's 400 (our 422 is
    the v1 routes' status for the same mistake); other statuses and headers stay as they are, and the
    ``loopml.errors`` class name moves to the ``X-LoopML-Error`` header for scripts that branch on it.
    """
    error = json.loads(bytes(response.body))["error"]
    message = error["message"]
    status = 400 if response.status_code == 422 else response.status_code
    shaped = Response(
        json.dumps({"error": message}, ensure_ascii=False), status_code=status, media_type="application/json"
    )
    shaped.raw_headers = [(k, v) for k, v in response.raw_headers if k not in (b"content-length", b"content-type")]
    shaped.raw_headers.append((b"content-length", str(len(shaped.body)).encode()))
    shaped.raw_headers.append((b"content-type", b"application/json"))
    shaped.raw_headers.append((b"x-loopml-error", error["type"].encode()))
    return shaped


def _shaped_for(request: Request, response: Response) -> Response:
    return v2_shaped(response) if request.url.path.startswith("/v2") else response


def _loopml_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoopMLError)
    return _shaped_for(request, loopml_error_response(exc))


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = {".".join(str(p) for p in e.get("loc", ())): str(e.get("msg", "invalid")) for e in exc.errors()}
    listed = "; ".join(f"{where}: {what}" for where, what in problems.items())
    response = error_response(422, "InvalidInputError", f"Invalid request: {listed}", problems=problems)
    return _shaped_for(request, response)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    type_name = _HTTP_TYPES.get(exc.status_code, "InvalidInputError" if exc.status_code < 500 else "StoreError")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "No such route; predictions are POST /v1/models/{name}/predict (see GET /v1/models and /docs)."
    return _shaped_for(request, error_response(exc.status_code, type_name, message, headers=exc.headers))


def _unexpected(request: Request, exc: Exception) -> Response:
    return _shaped_for(request, unexpected_error_response(exc))


def install_error_handlers(app: FastAPI) -> None:
    """One handler per kind; Starlette finds a handler along the exception's MRO."""
    app.add_exception_handler(LoopMLError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
