"""Several ``loopml serve`` replicas over one PostgreSQL store, driven by a client loop that never stops.

Three processes on three ports (one of them with ``--workers 2``) answer every request while a
deployment moves, while their database connections are cut from the server side, and while one
replica is SIGKILLed; each registers a heartbeat; the prediction log holds each answered request
once. Every wait is for an event (an answer from the new version, a heartbeat row), never a duration.

Why connections are cut rather than PostgreSQL restarted: the server is shared by every test on this
machine. ``pg_terminate_backend`` on the replicas' own backends (found by their ``application_name``)
is what a restart looks like from a replica — every pooled connection dies at once — without touching
anyone else's. A replica serves from its in-memory routing table and models, so requests go on; the
deployment poller and the prediction-log writer get an error, and the pool reconnects on their next try.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from typer.testing import CliRunner

from loopml.registry.client import RegistryClient
from loopml.serving.client import ServingClient
from loopml.store import open_store
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from tests.conftest import drop_pg_schema, make_pg_schema_url

APP_NAME = "loopml-replica-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: Callable[[], bool], what: str, timeout_s: float = 300, seen: Callable[[], Any] = lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; {seen()}")
        time.sleep(0.05)


class Replica:
    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = log / f"serve-{self.port}.log"  # a file, not a pipe nobody reads: a full pipe would block it
        command = [sys.executable, "-m", "loopml.cli.main", "serve", "-m", "iris", "--port", str(self.port),
                   "--log-level", "warning", "--poll-interval", "0.2", *args]  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        self.http = httpx.Client(base_url=f"http://{self.address}", timeout=30)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"loopml serve exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=60)


class Traffic:
    """A client loop over the live replicas, round robin, each request with its own X-Request-ID."""

    def __init__(self, replicas: list[Replica], body: dict[str, Any]) -> None:
        self.live = list(replicas)
        self.body = body
        self.answers: list[tuple[str, int, int | None, str]] = []  # (address, status, version, request id)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            with self._lock:
                replica = self.live[n % len(self.live)]
            request_id = f"t{n}"
            n += 1
            try:
                response = replica.http.post("/v1/models/iris/predict", json=self.body, headers={"X-Request-ID": request_id})
                version = response.json().get("version") if response.status_code == 200 else None
                self.answers.append((replica.address, response.status_code, version, request_id))
            except httpx.TransportError as exc:
                self.answers.append((replica.address, 0, None, f"{request_id}: {exc}"))

    def drop(self, replica: Replica) -> None:
        with self._lock:
            self.live.remove(replica)

    def served(self, address: str, version: int) -> bool:
        return any(a == address and v == version for a, _, v, _ in list(self.answers))

    def count(self) -> int:
        return len(self.answers)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.mark.slow
def test_replicas_follow_a_move_survive_lost_connections_and_a_kill_without_failing_or_duplicating(
    pg_base_url, tmp_path
):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    url, schema = make_pg_schema_url(pg_base_url)
    artifacts = str(tmp_path / "artifacts")
    store = open_store(url, artifacts_url=artifacts)
    replicas: list[Replica] = []
    traffic: Traffic | None = None
    try:
        X, y = load_iris(return_X_y=True, as_frame=True)
        tracking = TrackingClient(store)
        registry = RegistryClient(tracking)
        for c in (1.0, 0.01):
            run = tracking.create_run("replicas", capture=False)
            info = ActiveRun(tracking, run).log_model(LogisticRegression(C=c, max_iter=500).fit(X, y), "model",
                                                      input_example=X.head())  # fmt: skip
            registry.register_model(info.uri, "iris")
        serving = ServingClient(tracking)
        serving.deploy("iris", 1, reason="first")

        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        env.update(LOOPML_DB_URL=f"{url}&application_name={APP_NAME}", LOOPML_ARTIFACTS_URL=artifacts,
                   LOOPML_HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path))  # fmt: skip
        replicas = [Replica(env, tmp_path), Replica(env, tmp_path), Replica(env, tmp_path, "--workers", "2")]
        for replica in replicas:
            _wait(replica.ready, f"replica {replica.address} to be ready")
        addresses = sorted(r.address for r in replicas)

        def heartbeats(version: int) -> bool:
            seen = store.replicas.list_replicas()
            return len(seen) == 4 and all(r.serving == {"iris": [version]} for r in seen)

        def state() -> str:
            logs = " | ".join(r.log.read_text()[-1500:] for r in replicas)
            return f"replicas stored: {store.replicas.list_replicas()}; logs: {logs}"

        _wait(lambda: heartbeats(1), "a heartbeat from each of the 4 serving processes", seen=state)
        assert sorted({r.address for r in store.replicas.list_replicas()}) == addresses
        started = [e for e in store.audit.list_events(action="serving.replica.started")]
        assert len(started) == 4

        traffic = Traffic(replicas, {"records": X.iloc[:2].to_dict(orient="records")})
        _wait(lambda: all(traffic.served(r.address, 1) for r in replicas), "every replica answering with v1")
        serving.deploy("iris", 2, reason="move")
        _wait(lambda: all(traffic.served(r.address, 2) for r in replicas), "every replica answering with v2")
        _wait(lambda: heartbeats(2), "every heartbeat saying v2", seen=state)
        for address in addresses:  # once a replica answered with v2 it never went back
            versions = [v for a, _, v, _ in list(traffic.answers) if a == address]
            assert versions[versions.index(2):] == [2] * (len(versions) - versions.index(2))

        from loopml.cli.main import app

        os.environ["LOOPML_DB_URL"], os.environ["LOOPML_ARTIFACTS_URL"] = url, artifacts
        try:
            listed = CliRunner().invoke(app, ["deployments", "list"], env={"COLUMNS": "250"})
        finally:
            del os.environ["LOOPML_DB_URL"], os.environ["LOOPML_ARTIFACTS_URL"]
        assert listed.exit_code == 0, listed.output
        assert "4 serving replicas" in listed.output and all(a in listed.output for a in addresses)
        assert "iris v2" in listed.output

        # the database goes away for the replicas: every connection of theirs is cut
        engine = sqlalchemy.create_engine(pg_base_url)
        with engine.begin() as conn:
            cut = conn.execute(sqlalchemy.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"
            ), {"name": APP_NAME}).scalar_one()  # fmt: skip
        engine.dispose()
        assert cut >= 4
        after_cut = traffic.count()
        _wait(lambda: traffic.count() > after_cut + 30, "30 more answers after the connections were cut")
        cut_ids = {rid for _, _, _, rid in traffic.answers[after_cut:]}
        _wait(lambda: cut_ids & {r.request_id for r in serving_log(store)} != set(),
              "requests answered after the cut to reach the prediction log")  # fmt: skip

        # one replica SIGKILLed under load: the others keep answering
        victim = replicas[0]
        traffic.drop(victim)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=30)
        after_kill = traffic.count()
        _wait(lambda: traffic.count() > after_kill + 30, "30 more answers from the surviving replicas")
        traffic.stop()

        failed = [a for a in traffic.answers if a[1] != 200 and a[0] != victim.address]
        assert failed == []
        for replica in replicas[1:]:
            replica.stop()  # a clean stop writes the rest of its log out
        logged = [r.request_id for r in serving_log(store)]
        assert len(logged) == len(set(logged))  # nothing in the log twice
        answered = {rid for a, status, _, rid in traffic.answers if status == 200 and a != victim.address}
        assert answered <= set(logged)  # every answer of a replica that stopped cleanly was logged
        assert {r.address for r in store.replicas.list_replicas()} == {victim.address}  # the killed one's row ages
    finally:
        if traffic is not None:
            traffic.stop()
        for replica in replicas:
            replica.stop()
        store.close()
        drop_pg_schema(pg_base_url, schema)


def serving_log(store: Any) -> list[Any]:
    return store.serving.read_predictions("iris", max_results=1_000_000)
