"""Security headers on every answer of both servers: JSON 200 and 4xx, HTML docs, predictions over the fast lane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.auth.headers import API_CSP, DOCS_CSP, STRICT_CSP, SecurityHeadersMiddleware
from loopml.entities.auth import Role
from loopml.store import open_store

API = "/api/v1"
COMMON = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def assert_secured(answer: Any, csp: bytes = API_CSP) -> None:
    where = f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}"
    for name, value in {**COMMON, "content-security-policy": csp.decode()}.items():
        assert answer.headers.get_list(name) == [value], f"{where}: {name}"


@pytest.fixture
def control_plane(tmp_path: Path, asgi_client: Any) -> Iterator[tuple[Any, str]]:
    from loopml.server.app import create_app

    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    viewer = store.tokens.issue_token("viewer", Role.VIEWER, actor="setup").secret
    try:
        with asgi_client(create_app(store, auth=True, max_body_bytes=1024), raise_server_exceptions=False) as api:
            yield api, viewer
    finally:
        store.close()


def test_every_control_plane_answer_carries_the_headers(control_plane):
    api, viewer = control_plane
    auth = {"Authorization": f"Bearer {viewer}"}
    answers = [
        api.get(f"{API}/health"),
        api.get(f"{API}/experiments", headers=auth),
        api.get(f"{API}/openapi.json"),
        api.get(f"{API}/experiments"),  # 401
        api.post(f"{API}/experiments", json={"name": "x"}, headers=auth),  # 403
        api.get(f"{API}/experiments/999", headers=auth),  # 404 from the store
        api.get("/nowhere"),  # 404 from routing
        api.post(f"{API}/experiments", content=b"x" * 4096, headers=auth),  # 413 from the body limit
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 401, 403, 404, 404, 413]
    for answer in answers:
        assert_secured(answer)
    docs = api.get(f"{API}/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert_secured(docs, DOCS_CSP)


def test_html_outside_the_docs_gets_the_strict_policy_and_a_route_keeps_its_own_headers(asgi_client):
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    async def page(_request: Any) -> Response:
        return HTMLResponse("<p>hi</p>")

    async def cached(_request: Any) -> Response:
        return Response(b"asset", media_type="text/css", headers={"Cache-Control": "max-age=60"})

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/ui", page), Route("/asset", cached)]))
    api = asgi_client(app)
    assert_secured(api.get("/ui"), STRICT_CSP)
    assert b"frame-ancestors 'none'" in STRICT_CSP and b"default-src 'self'" in STRICT_CSP
    asset = api.get("/asset")
    assert asset.headers.get_list("cache-control") == ["max-age=60"]
    assert asset.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def prediction_service(tmp_path: Path, iris: Any, asgi_client: Any) -> Iterator[tuple[Any, str, list]]:
    from loopml.serving.app import create_serving_app
    from loopml.serving.client import ServingClient
    from tests.serving.conftest import open_sqlite, register_iris

    store = open_sqlite(tmp_path)
    try:
        registered = register_iris(store, *iris)
        ServingClient(registered.tracking).deploy("iris", "champion")
        viewer = store.tokens.issue_token("viewer", Role.VIEWER, actor="setup").secret
        rows = registered.X.head(2).to_dict(orient="records")
        app = create_serving_app(store, auth=True, poll_interval_s=60.0, log_predictions=False, max_body_bytes=4096)
        with asgi_client(app, raise_server_exceptions=False) as api:
            yield api, viewer, rows
    finally:
        store.close()


def test_every_prediction_service_answer_carries_the_headers(prediction_service):
    api, viewer, rows = prediction_service
    auth = {"Authorization": f"Bearer {viewer}"}
    answers = [
        api.post("/v1/models/iris/predict", json={"records": rows}, headers=auth),  # the fast lane
        api.post("/v1/models/iris/versions/1/predict", json={"records": rows}, headers=auth),
        api.post("/v1/models/iris/predict", json={"records": rows}),  # 401 from the lane
        api.post("/v1/models/nope/predict", json={"records": rows}, headers=auth),  # 404 from the lane
        api.post("/v1/models/iris/predict", content=b"x" * 8192, headers=auth),  # 413 from the lane
        api.post("/v1/models/iris/predict", json={"wrong": 1}, headers=auth),  # 422 from the lane
        api.get("/v1/models", headers=auth),
        api.get("/v1/models"),  # 401 from FastAPI
        api.post("/v1/feedback", json={}, headers=auth),  # 403
        api.get("/healthz"),
        api.get("/metrics"),
        api.get("/openapi.json"),
        api.get("/nowhere"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404, 413, 422, 200, 401, 403, 200, 200, 200, 404]
    for answer in answers:
        assert_secured(answer)
    docs = api.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert_secured(docs, DOCS_CSP)
