"""``create_app(store)``: the Store behind FastAPI, every route under /api/v1.

The app holds no logic of its own: each route parses its body, calls one
store method and returns a schema; errors are translated in one place
(``loopml.server.errors``). Tests build it over any Store and talk to it
through ``fastapi.testclient.TestClient``, without a socket.

Example:
    >>> from loopml.store import open_store
    >>> app = create_app(open_store("sqlite:////tmp/loopml.db", artifacts_url="/tmp/artifacts"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from loopml.auth.guard import authorize
from loopml.auth.headers import SecurityHeadersMiddleware
from loopml.config import hide_password
from loopml.server.body_limit import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_UPLOAD_BYTES, BodyLimitMiddleware
from loopml.server.errors import install_error_handlers
from loopml.server.routers import artifacts, audit, features, monitoring, registry, replicas, serving, tokens, tracking
from loopml.server.schemas.common import ErrorBody, Schema
from loopml.store import Store

API_PREFIX = "/api/v1"


class LoopMLJSONResponse(JSONResponse):
    """JSON that keeps NaN and Infinity inside free-form values (evidence) instead of failing with 500.

    Typed float fields are already strings when non-finite; see ``schemas.common``.
    """

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")


class HealthOut(Schema):
    status: str
    store: str
    auth: str


def create_app(
    store: Store,
    *,
    auth: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    ui: bool = True,
) -> FastAPI:
    """The control-plane API over ``store``; request bodies over ``max_body_bytes`` answer 413.

    Artifact uploads (``PUT /artifacts/blobs``, streamed to the store) have
    their own limit, ``max_upload_bytes``; over it they answer 413 too.

    With ``auth`` every route but ``/health``, the OpenAPI document and
    ``/tokens/me`` needs an API token (``Authorization: Bearer …``) whose role
    allows it; the token's name becomes the actor of everything it does.

    With ``ui`` the web UI (``loopml.ui``) is served at ``/``, its assets under
    ``/ui/static/``; with ``auth`` its pages need a session (``/login`` takes a
    token once).
    """
    app = FastAPI(
        title="loopml",
        summary="Track, register, validate, serve and monitor ML models in one closed loop.",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        default_response_class=LoopMLJSONResponse,
        responses={"4XX": {"model": ErrorBody}, "5XX": {"model": ErrorBody}},
    )
    app.state.store = store
    app.state.authenticator = None
    if auth:
        from loopml.auth.tokens import Authenticator

        app.state.authenticator = Authenticator(store)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=max_body_bytes,
        path_limits={f"{API_PREFIX}/artifacts/blobs": max_upload_bytes},
    )
    # outermost, so 413s and every error answer carry the headers too (500s get them in server.errors)
    docs_paths = () if app.docs_url is None else (app.docs_url, f"{app.docs_url}/oauth2-redirect")
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=docs_paths)
    from loopml.server.mlflow import mount_mlflow  # MLflow's REST API (/api/2.0/mlflow...), docs/interop.md

    # mounted first: routes are tried in order, and an MLflow client makes hundreds of small calls
    # (no /api/v1 route lies under its prefixes, so the order changes no answer)
    mount_mlflow(app)
    guarded = [Depends(authorize)]
    for module in (tracking, registry, audit, artifacts, serving, monitoring, features, replicas):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=guarded)
    app.include_router(tokens.router, prefix=API_PREFIX)
    app.include_router(tokens.admin, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/health", tags=["server"])
    def health() -> HealthOut:
        return HealthOut(status="ok", store=hide_password(store.url), auth="tokens" if auth else "none")

    if ui:
        from loopml.ui import mount_ui

        mount_ui(app)
    return app
