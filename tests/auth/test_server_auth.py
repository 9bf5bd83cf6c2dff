"""A server with ``auth=True``: 401 without a valid token, 403 without the role, on every route.

Routes are enumerated from the app itself, so a route added later is covered
(and must say which role it needs) without editing this file. Paths are
filled with names that exist and names that do not: the answer must be the
same, so a 401 or 403 never tells a caller whether an object exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from loopml.entities.auth import Role
from loopml.entities.tracking import Metric
from loopml.server.app import create_app
from loopml.store import Store, open_store

API = "/api/v1"
PUBLIC = {f"{API}/health", f"{API}/openapi.json", f"{API}/docs", f"{API}/docs/oauth2-redirect", f"{API}/tokens/me"}
FILL = {"name": "churn", "alias": "champion", "version": "1", "run_id": "r" * 32, "experiment_id": "1",
        "request_id": "1", "digest": "0" * 64}  # fmt: skip


@pytest.fixture
def auth_store(tmp_path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def tokens(auth_store: Store) -> dict[str, str]:
    return {role.value: auth_store.tokens.issue_token(role.value, role, actor="setup").secret for role in Role}


@pytest.fixture
def api(auth_store: Store, asgi_client: Any) -> Iterator[Any]:
    with asgi_client(create_app(auth_store, auth=True), raise_server_exceptions=False) as client:
        yield client


def guarded_routes() -> list[tuple[str, str, Any]]:
    """(method, path, endpoint) of every route that needs a token, from the routers the app mounts."""
    from loopml.server.routers import (
        artifacts,
        audit,
        features,
        monitoring,
        registry,
        replicas,
        serving,
        tokens,
        tracking,
    )

    found = []
    for router in (
        tracking.router, registry.router, audit.router, artifacts.router, serving.router, monitoring.router, tokens.admin,
        features.router, replicas.router,
    ):
        for route in router.routes:
            for method in sorted(route.methods - {"HEAD"} or {"HEAD"}):
                found.append((method, API + route.path, route.endpoint))
    return found


def concrete(path: str, exists: bool) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: FILL.get(m.group(1), "x") if exists else "nope9", path)


ROUTES = guarded_routes()
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]


def needed(method: str, endpoint: Any) -> Role:
    marked = getattr(endpoint, "__loopml_role__", None)
    return marked or (Role.VIEWER if method in ("GET", "HEAD") else Role.EDITOR)


def test_every_route_in_the_openapi_document_is_public_or_guarded(auth_store):
    document = create_app(auth_store, auth=True).openapi()
    listed = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    guarded = {(m, p) for m, p, _ in ROUTES}
    assert listed - guarded == {("GET", f"{API}/health"), ("GET", f"{API}/tokens/me")}
    assert guarded - listed <= {(m, p) for m, p in guarded if m == "HEAD"}


def test_every_route_family_is_guarded():
    families = {p.removeprefix(API).split("/")[1] for _, p, _ in ROUTES}
    expected = {"experiments", "runs", "datasets", "models", "versions", "requests", "audit", "artifacts", "tokens",
                "monitors", "alerts", "loop"}  # fmt: skip
    assert expected <= families


@pytest.mark.parametrize(("method", "path", "endpoint"), ROUTES, ids=ROUTE_IDS)
def test_no_token_or_a_bad_one_is_401_whether_or_not_the_object_exists(api, tokens, method, path, endpoint):
    seen = set()
    for exists in (True, False):
        for headers in ({}, {"Authorization": "Bearer lml_000000000000_" + "A" * 43}, {"Authorization": "Basic x"}):
            response = api.request(method, concrete(path, exists), headers=headers, json={"junk": 1})
            assert response.status_code == 401, response.text
            if method != "HEAD":
                assert response.json()["error"]["type"] == "AuthenticationError"
            seen.add(response.text)
    assert len(seen) == 1  # the same answer every time


@pytest.mark.parametrize(("method", "path", "endpoint"), ROUTES, ids=ROUTE_IDS)
def test_a_role_below_the_routes_is_403_whether_or_not_the_object_exists(api, tokens, method, path, endpoint):
    role = needed(method, endpoint)
    weaker = [r for r in Role if not r.allows(role)]
    if not weaker:
        assert role is Role.VIEWER  # every token may call it; the 401 test covers it
        return
    for token_role in weaker:
        answers = set()
        for exists in (True, False):
            headers = {"Authorization": f"Bearer {tokens[token_role.value]}"}
            response = api.request(method, concrete(path, exists), headers=headers, json={"junk": 1})
            assert response.status_code == 403, response.text
            answers.add(response.json()["error"]["message"].replace(concrete(path, exists), "PATH"))
        assert len(answers) == 1


def test_the_role_table(api):
    roles = {f"{m} {p.removeprefix(API)}": needed(m, e) for m, p, e in ROUTES}
    assert roles["POST /runs/search"] is Role.VIEWER
    assert roles["POST /models/search"] is Role.VIEWER
    assert roles["POST /runs/{run_id}/batch"] is Role.EDITOR
    assert roles["POST /models/{name}/versions"] is Role.EDITOR
    assert roles["PUT /models/{name}/aliases/{alias}"] is Role.EDITOR
    assert roles["POST /requests/{request_id}/decision"] is Role.ADMIN
    assert {r for k, r in roles.items() if k.startswith(("GET /tokens", "POST /tokens"))} == {Role.ADMIN}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _register(api, token, name="churn"):
    experiment = api.post(f"{API}/experiments", json={"name": "e"}, headers=_auth(token)).json()
    run = api.post(
        f"{API}/runs",
        json={"experiment_id": experiment["experiment_id"], "name": "r", "user": "mallory", "start_time": 1},
        headers=_auth(token),
    ).json()
    api.post(f"{API}/models", json={"name": name, "actor": "mallory"}, headers=_auth(token))
    manifest = api.put(f"{API}/artifacts/blobs", content=b"{}", headers=_auth(token)).json()
    api.post(
        f"{API}/runs/{run['info']['run_id']}/artifacts",
        json={"entries": [{"path": "model/loopml-model.json", "digest": manifest["digest"], "size": 2}]},
        headers=_auth(token),
    )  # a version pins its manifest, so the run needs one
    created = api.post(
        f"{API}/models/{name}/versions",
        json={"run_id": run["info"]["run_id"], "source": f"runs:/{run['info']['run_id']}/model", "actor": "mallory"},
        headers=_auth(token),
    )
    assert created.status_code == 201, created.text
    return run


def test_the_tokens_name_is_the_actor_whatever_the_body_claims(api, tokens, auth_store):
    run = _register(api, tokens["editor"])
    assert run["info"]["user"] == "editor"
    actors = {e.actor for e in auth_store.audit.list_events(target="churn")}
    assert actors == {"editor"}


def test_viewer_reads_editor_writes_admin_goes_to_production(api, tokens, auth_store):
    _register(api, tokens["editor"])
    assert api.get(f"{API}/models/churn", headers=_auth(tokens["viewer"])).status_code == 200
    assert api.post(f"{API}/models/search", json={}, headers=_auth(tokens["viewer"])).status_code == 200
    to_staging = {"to_stage": "staging", "actor": "x"}
    to_production = {"to_stage": "production", "actor": "x"}
    path = f"{API}/models/churn/versions/1/transition"
    assert api.post(path, json=to_staging, headers=_auth(tokens["viewer"])).status_code == 403
    assert api.post(path, json=to_staging, headers=_auth(tokens["editor"])).status_code == 200
    refused = api.post(path, json=to_production, headers=_auth(tokens["editor"]))
    assert refused.status_code == 403 and "production" in refused.json()["error"]["message"]
    assert auth_store.registry.get_version("churn", 1).stage.value == "staging"  # nothing changed
    assert api.post(path, json=to_production, headers=_auth(tokens["admin"])).status_code == 200
    assert auth_store.registry.get_version("churn", 1).stage.value == "production"
    transitions = auth_store.audit.list_events(action="model_version.transition")
    assert [(e.actor, e.after["stage"]) for e in transitions] == [("editor", "staging"), ("admin", "production")]


def test_token_management_is_for_admins_and_a_revoked_token_stops_working(api, tokens):
    made = api.post(f"{API}/tokens", json={"name": "ci", "role": "editor", "actor": "x"}, headers=_auth(tokens["admin"]))
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert api.get(f"{API}/tokens/me", headers=_auth(secret)).json()["name"] == "ci"
    assert api.get(f"{API}/experiments", headers=_auth(secret)).status_code == 200
    listed = api.get(f"{API}/tokens", headers=_auth(tokens["admin"])).json()
    assert "ci" in {t["name"] for t in listed} and all("secret" not in t for t in listed)
    revoked = api.post(f"{API}/tokens/ci/revoke", json={"actor": "x"}, headers=_auth(tokens["admin"]))
    assert revoked.status_code == 200
    assert api.get(f"{API}/experiments", headers=_auth(secret)).status_code == 401
    assert api.get(f"{API}/tokens/me", headers=_auth(secret)).status_code == 401


def test_health_and_the_openapi_document_stay_public(api):
    assert api.get(f"{API}/health").json()["auth"] == "tokens"
    assert api.get(f"{API}/openapi.json").status_code == 200


def test_the_rest_store_sends_loopml_token(auth_store, tokens, asgi_client, monkeypatch):
    from loopml.errors import AuthenticationError, PermissionDeniedError
    from loopml.store.rest import open_rest_store
    from loopml.tracking.client import TrackingClient

    with asgi_client(create_app(auth_store, auth=True)) as http:
        monkeypatch.delenv("LOOPML_TOKEN", raising=False)
        anonymous = open_rest_store("http://testserver", "", client=http)
        with pytest.raises(AuthenticationError, match="LOOPML_TOKEN"):
            anonymous.tracking.list_experiments()

        monkeypatch.setenv("LOOPML_TOKEN", tokens["viewer"])
        viewer = open_rest_store("http://testserver", "", client=http)
        assert viewer.tracking.list_experiments() == []
        with pytest.raises(PermissionDeniedError, match="editor"):
            viewer.tracking.create_experiment("e")

        monkeypatch.setenv("LOOPML_TOKEN", tokens["editor"])
        editor = TrackingClient(open_rest_store("http://testserver", "", client=http))
        experiment = editor.create_experiment("e")
        run = editor.create_run(experiment.experiment_id, capture=False)
        editor.log_metric_points(run.info.run_id, [Metric("acc", 0.9, 0, 1)])
        assert editor.get_run(run.info.run_id).info.user == "editor"
        assert editor.get_run(run.info.run_id).metrics["acc"] == 0.9
        assert editor.store.tokens.authenticate(tokens["admin"]).role is Role.ADMIN
