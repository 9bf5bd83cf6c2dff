"""Killing the server in the middle of a client's metric logging and restarting it loses no
acknowledged point and duplicates none.

A real server process (``loopml server``) over SQLite under ``LOOPML_HOME``; the test process
logs through the REST client. Pending batches keep their idempotency keys across failed
flushes, so the flush after the restart delivers each point exactly once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loopml.entities.tracking import Metric, RunStatus
from loopml.errors import LoopMLError
from loopml.store import open_store
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun

KEY = "loss"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``loopml server`` on a fixed port and home, which can be killed and started again."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        self.env["LOOPML_HOME"] = str(home)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "loopml.cli.main", "server", "--port", str(self.port)]
        self.process = subprocess.Popen([*command, "--log-level", "warning"], env=self.env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode} before answering")
            if time.monotonic() > deadline:
                pytest.fail("the server did not answer /api/v1/health within 60 s")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = Server(tmp_path / "server")
    try:
        served.start()
        yield served
    finally:
        served.kill()


@pytest.mark.slow
def test_a_killed_and_restarted_server_loses_no_acknowledged_point_and_duplicates_none(server: Server) -> None:
    client = TrackingClient(open_store(server.url, artifacts_url=""))
    try:
        run = ActiveRun(client, client.create_run("restart", capture=False))
        logged: list[int] = []
        acknowledged: set[int] = set()

        def log(steps: range, *, flush_every: int | None) -> None:
            for step in steps:
                run.log_metric(KEY, step * 0.5, step=step)  # one point per call, explicit step
                logged.append(step)
                if flush_every and len(logged) % flush_every == 0:
                    run.flush()  # returned: every point logged so far is acknowledged
                    acknowledged.update(logged)

        log(range(0, 550), flush_every=100)  # 500 acknowledged, 50 still buffered
        server.kill()
        log(range(550, 850), flush_every=None)  # log_metric never waits on the server
        with pytest.raises(LoopMLError):
            run.flush()  # unreachable: the batches stay pending, with their idempotency keys
        log(range(850, 900), flush_every=None)
        server.start()  # same port, same home
        run.flush()
        acknowledged.update(logged)
        log(range(900, 1000), flush_every=100)
        ended = run.end()

        assert ended.info.status is RunStatus.FINISHED
        assert client.get_run(run.id).info.status is RunStatus.FINISHED
        history = client.get_metric_history(run.id, KEY)
        steps = sorted(point.step for point in history)
        assert acknowledged <= set(steps), f"lost acknowledged points: {sorted(acknowledged - set(steps))[:10]}"
        assert steps == sorted(logged), "points were lost or duplicated"
        assert all(point.value == point.step * 0.5 for point in history)
    finally:
        client.close()


@pytest.mark.slow
def test_a_batch_sent_twice_with_one_idempotency_key_is_applied_once(server: Server) -> None:
    """What the client's retry relies on: the server applied a batch, its answer was lost, the client sends again."""
    store = open_store(server.url, artifacts_url="")
    try:
        experiment = store.tracking.create_experiment("retry")
        run = store.tracking.create_run(experiment.experiment_id, name="r", user="u", start_time=1)
        batch = [Metric(KEY, float(step), step, 1_000 + step) for step in range(50)]
        store.tracking.log_batch(run.run_id, metrics=batch, idempotency_key="k")
        store.tracking.log_batch(run.run_id, metrics=batch, idempotency_key="k")  # the retry
        assert sorted(m.step for m in store.tracking.get_metric_history(run.run_id, KEY)) == list(range(50))

        server.kill()  # the key survives a restart too: it is stored with the points
        server.start()
        store.tracking.log_batch(run.run_id, metrics=batch, idempotency_key="k")
        store.tracking.log_batch(run.run_id, metrics=batch[:10], idempotency_key="k2")  # a new key is new data
        history = store.tracking.get_metric_history(run.run_id, KEY)
        assert sorted(m.step for m in history) == sorted([*range(50), *range(10)])
    finally:
        store.close()
