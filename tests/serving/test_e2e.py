"""``loopml serve`` as a user runs it: a real process on a free port, driven over HTTP while the store changes.

The test process writes deployments and alias moves to the same SQLite store
(under ``LOOPML_HOME``) and reads the prediction log back; the server must
follow every change within seconds, without a restart and without failing a
request.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.entities.auth import Role
from loopml.registry.client import RegistryClient
from loopml.serving.client import ServingClient
from tests.serving.conftest import open_sqlite
from tests.waiting import wait_until

POLL_S = 0.2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """A ``loopml serve`` process over ``home``."""

    def __init__(self, home: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        env["LOOPML_HOME"] = str(home)
        env["TMPDIR"] = str(home / "tmp")  # the model cache stays inside the test's folder
        (home / "tmp").mkdir(exist_ok=True)
        command = [sys.executable, "-m", "loopml.cli.main", "serve", "--port", str(self.port), "--log-level", "warning",
                   "--poll-interval", str(POLL_S), *args]  # fmt: skip
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 90
        while True:
            try:
                if self.http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                pytest.fail(f"loopml serve exited with {self.process.returncode}: {self.process.stdout.read()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("loopml serve was not ready within 90 s")
            time.sleep(0.1)

    def predict(self, body: Any, path: str = "/v1/models/iris/predict", **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kwargs)

    def stop(self) -> str:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.communicate(timeout=30)[0]


@pytest.fixture
def home(tmp_path: Path, template: tuple[Path, dict[int, Any]]) -> Path:
    folder = tmp_path / "home"
    shutil.copytree(template[0], folder)
    return folder


@pytest.fixture
def clients(home: Path) -> Iterator[tuple[ServingClient, RegistryClient]]:
    from loopml.tracking.client import TrackingClient

    store = open_sqlite(home)
    tracking = TrackingClient(store)
    try:
        yield ServingClient(tracking), RegistryClient(tracking)
    finally:
        store.close()


@pytest.mark.slow
def test_the_served_model_follows_the_store_and_every_prediction_is_logged(home, clients, template, iris):
    serving, registry = clients
    X, _ = iris
    models = template[1]
    rows = X.iloc[:2].to_dict(orient="records")
    body = {"records": rows}
    serving.deploy("iris", "champion", reason="first")
    server = Serve(home, "-m", "iris")
    try:
        # predict over HTTP: the deployment's version, the model's own answers
        first = server.predict(body).json()
        assert (first["version"], first["predictions"]) == (1, models[1].predict(X.iloc[:2]).tolist())

        # move the alias: served within seconds, no restart, no failed request meanwhile
        registry.set_alias("iris", "champion", 2)
        answers: list[httpx.Response] = []
        wait_until(lambda: answers.append(server.predict(body)) or answers[-1].json()["version"] == 2, "the alias move")
        assert all(a.status_code == 200 for a in answers)
        assert server.http.get("/v1/models").json()["models"][0]["versions"]["2"]["state"] == "loaded"

        # a canary at 20%: over 2,000 requests its share is within 5 points of its target
        serving.deploy("iris", 1, canary={"version": 3, "percent": 20})
        wait_until(lambda: server.http.get("/v1/models").json()["models"][0]["traffic"][-1]["role"] == "canary",
                   "the canary deployment")  # fmt: skip
        single = {"inputs": rows[0]}
        with ThreadPoolExecutor(4) as pool:
            versions = list(pool.map(lambda _: server.predict(single).json()["version"], range(2_000)))
        share = versions.count(3) / len(versions)
        assert 0.15 <= share <= 0.25, share
        assert set(versions) == {1, 3}

        # a shadow: sees a copy of every request, logged beside the answer, never returned
        serving.deploy("iris", 1, shadow={"version": 2})
        wait_until(lambda: server.http.get("/v1/models").json()["models"][0]["shadow"] == {"version": 2}, "the shadow")
        shadowed = [server.predict(body).json() for _ in range(10)]
        assert {a["version"] for a in shadowed} == {1}
        ids = {a["request_id"] for a in shadowed}

        def shadow_rows() -> Any:
            frame = serving.search_predictions("iris", role="shadow")
            return frame[frame["request_id"].isin(ids)]

        wait_until(lambda: len(shadow_rows()) == 10, "the shadow predictions in the log")
        logged = shadow_rows()
        assert set(logged["version"]) == {2} and set(logged["status"]) == {200}
        assert next(iter(logged["outputs"])) == models[2].predict(X.iloc[:2]).tolist()

        # rollback: back to the canary deployment
        serving.rollback("iris", reason="shadow done")
        wait_until(lambda: server.http.get("/v1/models").json()["models"][0]["shadow"] is None, "the rollback")

        # feedback, joined to the log read back as a DataFrame
        for answer in shadowed[:3]:
            assert (
                server.http.post("/v1/feedback", json={"request_id": answer["request_id"], "label": 0}).status_code
                == 201
            )
        frame = serving.search_predictions("iris", role="main", with_feedback=True)
        labelled = frame[frame["label"].notna()]
        assert set(labelled["request_id"]) == {a["request_id"] for a in shadowed[:3]}
        wait_until(
            lambda: len(serving.search_predictions("iris")) >= 2_000 + 10 + 10 + len(answers), "every prediction logged"
        )
        everything = serving.search_predictions("iris")
        assert {"main", "canary", "shadow"} == set(everything["role"])
        assert len(serving.search_predictions("iris", version=3)) == versions.count(3)

        # bad payloads: 422 naming what is wrong, never a 5xx
        wrong = server.predict({"records": [{**rows[0], "sepal length (cm)": "long", "extra": 1}]})
        assert wrong.status_code == 422
        assert set(wrong.json()["error"]["problems"]) == {"sepal length (cm)", "extra"}
        missing = server.predict({"records": [{k: v for k, v in rows[0].items() if k != "petal width (cm)"}]})
        assert missing.status_code == 422 and "petal width (cm)" in missing.json()["error"]["problems"]
        assert server.http.post("/v1/models/iris/predict", content=b'{"records": [').status_code == 422
        assert server.http.post("/v1/models/iris/predict", content=b"x" * (9 * 1024 * 1024)).status_code == 413
        assert server.predict(body, path="/v1/models/nope/predict").status_code == 404
        assert server.predict(body, path="/v1/models/iris/versions/99/predict").status_code == 404
        metrics = server.http.get("/metrics").text
        assert 'loopml_serving_requests_total{model="iris",role="canary",status="200",version="3"}' in metrics
        assert server.http.get("/healthz").status_code == 200
    finally:
        output = server.stop()
    assert "Traceback" not in output, output


@pytest.mark.slow
def test_with_auth_a_viewer_predicts_and_only_an_editor_sends_feedback(home, clients, iris):
    serving, _ = clients
    tokens = {role: serving.store.tokens.issue_token(role.value, role, actor="setup").secret for role in Role}
    server = Serve(home, "--auth", "-m", "iris@champion")
    try:
        body = {"inputs": iris[0].iloc[0].to_dict()}
        assert server.predict(body).status_code == 401
        viewer = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
        answer = server.predict(body, headers=viewer)
        assert answer.status_code == 200 and answer.json()["version"] == 1
        feedback = {"request_id": answer.json()["request_id"], "label": 0}
        assert server.http.post("/v1/feedback", json=feedback, headers=viewer).status_code == 403
        editor = {"Authorization": f"Bearer {tokens[Role.EDITOR]}"}
        assert server.http.post("/v1/feedback", json=feedback, headers=editor).status_code == 201
        assert server.http.get("/metrics").status_code == 200  # scrapers carry no token
    finally:
        server.stop()
