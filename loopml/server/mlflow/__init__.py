"""An MLflow-compatible REST API on ``loopml server``: unchanged MLflow client code logs into loopml.

``mount_mlflow(app)`` mounts one FastAPI sub-application at ``/api/2.0`` and
``/ajax-api/2.0`` (MLflow's REST prefixes) with the routes under ``/mlflow/``
(tracking, logged models, registry) and ``/mlflow-artifacts/`` (the artifact
proxy). It answers MLflow's JSON and MLflow's error shape; any MLflow call
it does not offer answers ``ENDPOINT_NOT_FOUND`` (404), never a silent
success. The routes call the same Store as the rest of the server, so what an
MLflow client writes is loopml data, and role checks are the server's
(``MLFLOW_TRACKING_TOKEN`` is sent as a bearer token). docs/interop.md lists
the supported calls and the identifier mapping.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from loopml.auth.guard import authorize
from loopml.server.mlflow.errors import install_mlflow_error_handlers, mlflow_error

#: The prefixes MLflow's client and UI use; each gets the same routes.
MLFLOW_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
#: MLflow 3's newer prefixes (traces, workspaces, server info): none is offered, each answers ENDPOINT_NOT_FOUND.
UNSUPPORTED_PREFIXES = ("/api/3.0", "/ajax-api/3.0")


def create_mlflow_app(parent: FastAPI) -> FastAPI:
    """The MLflow sub-application, sharing ``parent``'s store and authenticator."""
    from loopml.server.mlflow import artifacts, logged_models, registry, tracking

    sub = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    sub.state.store = parent.state.store
    sub.state.authenticator = parent.state.authenticator
    install_mlflow_error_handlers(sub)
    guarded = [Depends(authorize)]
    for module in (tracking, artifacts, logged_models, registry):
        sub.include_router(module.router, dependencies=guarded)
    return sub


async def _unsupported(scope: object, receive: object, send: object) -> None:
    request = Request(scope)  # type: ignore[arg-type]
    response: Response = mlflow_error(
        "ENDPOINT_NOT_FOUND",
        f"loopml's MLflow-compatible API does not support {request.method} {request.url.path}; "
        "docs/interop.md lists the supported calls.",
        404,
    )
    await response(scope, receive, send)  # type: ignore[arg-type]


def mount_mlflow(app: FastAPI) -> None:
    """Serve the MLflow-compatible API from ``app`` (call after its store and authenticator are set)."""
    sub = create_mlflow_app(app)
    for prefix in MLFLOW_PREFIXES:
        app.mount(prefix, sub)
    for prefix in UNSUPPORTED_PREFIXES:
        app.mount(prefix, _unsupported)
