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
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from loopml.server.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from loopml.server.errors import install_error_handlers
from loopml.server.routers import artifacts, audit, registry, tracking
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


def hide_password(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``; other URLs unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def create_app(store: Store, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The control-plane API over ``store``; request bodies over ``max_body_bytes`` answer 413."""
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
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    for module in (tracking, registry, audit, artifacts):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/health", tags=["server"])
    def health() -> HealthOut:
        return HealthOut(status="ok", store=hide_password(store.url))

    return app
