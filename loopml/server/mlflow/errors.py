"""MLflow's error shape for the MLflow-compatible routes: ``{"error_code": ..., "message": ...}``.

The MLflow client reads ``error_code`` to decide what happened (a
``RESOURCE_DOES_NOT_EXIST`` from ``experiments/get-by-name`` makes
``set_experiment`` create the experiment), so every failure under the MLflow
prefixes answers in that shape with the HTTP status MLflow uses for the code.
loopml's own errors are translated by class; anything unexpected is a 500
``INTERNAL_ERROR`` whose details stay in the server log under an error id.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from loopml.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    LoopMLError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    TooManyRequestsError,
)

logger = logging.getLogger("loopml.server.mlflow")

#: MLflow's HTTP status for each error code it uses (databricks_pb2 ErrorCode names).
STATUS_OF = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "INVALID_STATE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}


class MlflowApiError(Exception):
    """A failure answered with an MLflow error code (raised by the MLflow routes themselves)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def invalid(message: str) -> MlflowApiError:
    """An ``INVALID_PARAMETER_VALUE`` error (400) naming the field at fault in ``message``."""
    return MlflowApiError("INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> MlflowApiError:
    """A ``RESOURCE_DOES_NOT_EXIST`` error (404)."""
    return MlflowApiError("RESOURCE_DOES_NOT_EXIST", message)


def mlflow_error(error_code: str, message: str, status: int | None = None) -> JSONResponse:
    """The JSON answer for ``error_code``, with MLflow's status for it unless ``status`` is given."""
    return JSONResponse(
        {"error_code": error_code, "message": message}, status_code=status or STATUS_OF.get(error_code, 400)
    )


def code_for(exc: LoopMLError) -> str:
    """The MLflow error code that best names a loopml error."""
    if isinstance(exc, NotFoundError):
        return "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, AlreadyExistsError):
        return "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, AuthenticationError):
        return "UNAUTHENTICATED"
    if isinstance(exc, PermissionDeniedError):
        return "PERMISSION_DENIED"
    if isinstance(exc, TooManyRequestsError):
        return "REQUEST_LIMIT_EXCEEDED"
    if isinstance(exc, ConflictError):
        return "INVALID_STATE"
    if exc.http_status >= 500:
        return "TEMPORARILY_UNAVAILABLE" if exc.http_status == 503 else "INTERNAL_ERROR"
    return "INVALID_PARAMETER_VALUE"


def _server_fault(code: str, headline: str, exc: BaseException, status: int = 500) -> JSONResponse:
    error_id = uuid.uuid4().hex[:16]
    logger.error("%s [error id %s]: %s", code, error_id, exc, exc_info=exc)
    return mlflow_error(code, f"{headline}; error id {error_id}, the details are in the server log.", status)


def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MlflowApiError)
    return mlflow_error(exc.error_code, exc.message)


def _loopml_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoopMLError)
    code = code_for(exc)
    if exc.http_status >= 500:
        return _server_fault(code, exc.headline, exc, exc.http_status)
    status = 413 if isinstance(exc, PayloadTooLargeError) else STATUS_OF[code]
    response = mlflow_error(code, exc.message, status)
    if isinstance(exc, TooManyRequestsError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    listed = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors())
    return mlflow_error("INVALID_PARAMETER_VALUE", f"Invalid request: {listed}")


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        return mlflow_error(
            "ENDPOINT_NOT_FOUND",
            f"loopml's MLflow-compatible API does not support {request.method} {request.url.path}; "
            "docs/interop.md lists the supported calls.",
            404,
        )
    detail = exc.detail if isinstance(exc.detail, str) else "bad request"
    return mlflow_error("BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR", detail, exc.status_code)


def _client_gone(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=400)


def _unexpected(_request: Request, exc: Exception) -> Response:
    return _server_fault("INTERNAL_ERROR", f"Internal server error ({type(exc).__name__})", exc)


def install_mlflow_error_handlers(app: FastAPI) -> None:
    """Answer every failure of ``app`` in MLflow's shape."""
    app.add_exception_handler(MlflowApiError, _api_error)
    app.add_exception_handler(LoopMLError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
