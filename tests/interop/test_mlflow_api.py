"""The MLflow-compatible routes at the HTTP level, on every store backend: shapes, ids and errors.

The real client is exercised in test_mlflow_client.py; here each call is
made by hand so every bad input can be checked for MLflow's error shape
(``error_code`` + ``message``) with the right status, and nothing of it stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from loopml.server.app import create_app

API = "/api/2.0/mlflow"


@pytest.fixture
def api(store: Any, asgi_client: Any) -> Iterator[Any]:
    with asgi_client(create_app(store), raise_server_exceptions=False) as client:
        yield client


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code
    message: str = body["message"]
    return message


def new_run(api: Any, experiment: str = "api") -> str:
    created = api.post(f"{API}/experiments/create", json={"name": experiment})
    assert created.status_code == 200, created.text
    run = api.post(f"{API}/runs/create", json={"experiment_id": created.json()["experiment_id"], "start_time": 5})
    assert run.status_code == 200, run.text
    run_id: str = run.json()["run"]["info"]["run_id"]
    return run_id


def test_runs_metrics_and_artifacts_round_trip(api: Any, store: Any) -> None:
    run_id = new_run(api)
    assert len(run_id) == 32 and store.tracking.get_run(run_id).info.start_time == 5
    batch = {
        "run_id": run_id,
        "metrics": [{"key": "loss", "value": v, "timestamp": 10 + s, "step": s} for s, v in enumerate([3, 2, "NaN"])],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "a"}],
    }
    assert api.post(f"{API}/runs/log-batch", json=batch).json() == {}
    history = api.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}).json()
    assert [(p["step"], p["value"]) for p in history["metrics"]] == [(0, 3), (1, 2), (2, "NaN")]
    # the same routes under the MLflow UI's prefix
    got = api.get("/ajax-api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()["run"]
    assert got["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert {"key": "team", "value": "a"} in got["data"]["tags"]
    assert got["info"]["artifact_uri"] == f"mlflow-artifacts:/{run_id}"
    put = api.put(f"/api/2.0/mlflow-artifacts/artifacts/{run_id}/out/a.txt", content=b"hello")
    assert put.status_code == 200, put.text
    listed = api.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{run_id}/out"}).json()
    assert listed == {"files": [{"path": "a.txt", "is_dir": False, "file_size": 5}]}
    top = api.get(f"{API}/artifacts/list", params={"run_id": run_id}).json()["files"]
    assert top == [{"path": "out", "is_dir": True}]
    assert api.get(f"/api/2.0/mlflow-artifacts/artifacts/{run_id}/out/a.txt").content == b"hello"
    ended = api.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": 99})
    assert ended.json()["run_info"]["status"] == "FINISHED"
    assert store.tracking.get_run(run_id).info.end_time == 99


def test_unsupported_calls_answer_endpoint_not_found(api: Any) -> None:
    for method, path in [
        ("POST", f"{API}/runs/delete"),
        ("POST", f"{API}/experiments/delete"),
        ("POST", f"{API}/registered-models/rename"),
        ("GET", "/api/3.0/mlflow/server-info"),
        ("POST", "/api/2.0/mlflow-artifacts/mpu/create/x"),
        ("DELETE", f"{API}/runs/get"),
    ]:
        message = error(api.request(method, path, json={}), 404, "ENDPOINT_NOT_FOUND")
        assert "does not support" in message


def test_bad_input_is_a_precise_mlflow_error(api: Any, store: Any) -> None:
    run_id = new_run(api)
    assert "run_id" in error(api.get(f"{API}/runs/get", params={"run_id": "../x"}), 400, "INVALID_PARAMETER_VALUE")
    error(api.get(f"{API}/runs/get", params={"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{API}/experiments/get", params={"experiment_id": "abc"}), 400, "INVALID_PARAMETER_VALUE")
    error(api.get(f"{API}/experiments/get", params={"experiment_id": "999"}), 404, "RESOURCE_DOES_NOT_EXIST")
    bad_value = {"run_id": run_id, "key": "m", "value": "high", "timestamp": 1, "step": 0}
    assert "value" in error(api.post(f"{API}/runs/log-metric", json=bad_value), 400, "INVALID_PARAMETER_VALUE")
    body = api.post(f"{API}/runs/log-parameter", content=b"{not json", headers={"content-type": "application/json"})
    error(body, 400, "INVALID_PARAMETER_VALUE")
    error(api.post(f"{API}/experiments/create", json={"name": "api"}), 400, "RESOURCE_ALREADY_EXISTS")
    # a param logged again with another value is refused, the first value kept
    api.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "1"})
    error(api.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "2"}), 400, "INVALID_STATE")
    assert store.tracking.get_run(run_id).params["lr"] == "1"
    # artifact paths go through loopml's path check; nothing is stored for a refused one
    for path in ("out/../../etc/passwd", "out/%5Cwin", "out//x"):
        response = api.put(f"/api/2.0/mlflow-artifacts/artifacts/{run_id}/{path}", content=b"x")
        assert response.status_code in (400, 404), response.text
        assert "error_code" in response.json()
    assert store.tracking.list_artifacts(run_id) == []
    error(api.get(f"/api/2.0/mlflow-artifacts/artifacts/{run_id}/missing.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.post(f"{API}/runs/search", json={"filter": "metrics.acc >"}), 400, "INVALID_PARAMETER_VALUE")
    model = {"name": "m", "source": f"runs:/{run_id}/nowhere"}
    error(api.post(f"{API}/model-versions/create", json=model), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{API}/logged-models/m-{'0' * 40}"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{API}/logged-models/not-an-id"), 400, "INVALID_PARAMETER_VALUE")


def mlflow_routes() -> list[tuple[str, str, Any]]:
    """(method, path, endpoint) of every MLflow-compatible route, from the routers the sub-app mounts."""
    from loopml.server.mlflow import artifacts, logged_models, registry, tracking

    found = []
    for module in (tracking, artifacts, logged_models, registry):
        for route in module.router.routes:
            for method in sorted(route.methods):  # type: ignore[attr-defined]
                path = route.path.replace("{artifact_path:path}", "r" * 32 + "/x").replace("{model_id}", "m-x")  # type: ignore[attr-defined]
                found.append((method, "/api/2.0" + path, route.endpoint))  # type: ignore[attr-defined]
    return found


def test_every_mlflow_route_checks_the_token_and_role_before_the_body(tmp_path: Any, asgi_client: Any) -> None:
    from loopml.entities.auth import Role
    from loopml.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'auth.db'}", artifacts_url=str(tmp_path / "artifacts"))
    viewer = store.tokens.issue_token("reader", Role.VIEWER, actor="setup").secret
    try:
        with asgi_client(create_app(store, auth=True), raise_server_exceptions=False) as client:
            routes = mlflow_routes()
            assert len(routes) > 30
            for method, path, endpoint in routes:
                # a body that is not even JSON, declared as JSON (so FastAPI would parse it): the answer must come
                # from the role check, not the parser
                junk = {"Content-Type": "application/json"}
                response = client.request(method, path, content=b"{junk", headers=junk)
                assert error(response, 401, "UNAUTHENTICATED"), path
                needs = getattr(endpoint, "__loopml_role__", Role.VIEWER if method == "GET" else Role.EDITOR)
                as_viewer = {**junk, "Authorization": f"Bearer {viewer}"}
                response = client.request(method, path, content=b"{junk", headers=as_viewer)
                if needs is Role.VIEWER:
                    assert response.status_code != 403, (method, path)
                else:
                    assert error(response, 403, "PERMISSION_DENIED"), (method, path)
    finally:
        store.close()


def test_mlflow_default_experiment_is_loopml_default(api: Any, store: Any) -> None:
    # a script that never calls set_experiment logs into MLflow's experiment "0"
    run = api.post(f"{API}/runs/create", json={"run_name": "no-experiment"}).json()["run"]
    default = store.tracking.get_experiment_by_name("Default")
    assert run["info"]["experiment_id"] == str(default.experiment_id)
    assert api.get(f"{API}/experiments/get", params={"experiment_id": "0"}).json()["experiment"]["name"] == "Default"
    found = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"]}).json()["runs"]
    assert [r["info"]["run_name"] for r in found] == ["no-experiment"]
