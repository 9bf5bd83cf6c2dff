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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from loopml.errors import LoopMLError

logger = logging.getLogger("loopml.serving")

_HTTP_TYPES = {404: "NotFoundError", 405: "InvalidInputError", 413: "PayloadTooLargeError"}


def error_response(status: int, type_name: str, message: str, headers: Any = None, **extra: Any) -> Response:
    body = json.dumps({"error": {"type": type_name, "message": message, **extra}}, ensure_ascii=False)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


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
        logger.error("%s: %s", type(exc).__name__, exc.message)
    return error_response(exc.http_status, type(exc).__name__, exc.message, **_extra_fields(exc))


def unexpected_error_response(exc: Exception) -> Response:
    """A 500 for a fault of the service (logged with its traceback); never for a client's mistake."""
    logger.exception("Unexpected error while serving a request", exc_info=exc)
    return error_response(500, "LoopMLError", f"Internal server error ({type(exc).__name__}); see the server log.")


def _loopml_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoopMLError)
    return loopml_error_response(exc)


def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = {".".join(str(p) for p in e.get("loc", ())): str(e.get("msg", "invalid")) for e in exc.errors()}
    listed = "; ".join(f"{where}: {what}" for where, what in problems.items())
    return error_response(422, "InvalidInputError", f"Invalid request: {listed}", problems=problems)


def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    type_name = _HTTP_TYPES.get(exc.status_code, "InvalidInputError" if exc.status_code < 500 else "StoreError")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "No such route; predictions are POST /v1/models/{name}/predict (see GET /v1/models and /docs)."
    return error_response(exc.status_code, type_name, message, headers=exc.headers)


def _unexpected(_request: Request, exc: Exception) -> Response:
    return unexpected_error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """One handler per kind; Starlette finds a handler along the exception's MRO."""
    app.add_exception_handler(LoopMLError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
