"""``serve`` over a real socket: uvicorn with two workers on the app factory, used through open_store("http://...")."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from loopml.entities.tracking import Metric, RunStatus
from loopml.errors import RunNotFoundError
from loopml.store import open_store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_url(tmp_path):
    port = free_port()
    env = {**os.environ, "LOOPML_HOME": str(tmp_path / "home")}
    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI", "LOOPML_TOKEN"):
        env.pop(name, None)
    code = f"from loopml.server.main import serve; serve(None, '127.0.0.1', {port}, 2, log_level='warning')"
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_a_served_store_works_over_http(server_url, tmp_path):
    health = httpx.get(f"{server_url}/api/v1/health").json()
    assert health["status"] == "ok" and health["store"].endswith("loopml.db")
    store = open_store(server_url, artifacts_url="")
    try:
        experiment = store.tracking.create_experiment("served")
        run = store.tracking.create_run(experiment.experiment_id, name="r", user="u", start_time=1)
        store.tracking.log_batch(run.run_id, metrics=[Metric("loss", float("nan"), 0, 1)], idempotency_key="k")
        assert store.tracking.end_run(run.run_id, RunStatus.FINISHED, 2).info.status is RunStatus.FINISHED
        with pytest.raises(RunNotFoundError):
            store.tracking.get_run("0" * 32)
        data = os.urandom(3 * 1024 * 1024)
        source = tmp_path / "blob.bin"
        source.write_bytes(data)
        digest, size = store.artifacts.put_file(str(source))
        assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
        store.artifacts.download(digest, str(tmp_path / "copy.bin"))
        assert (tmp_path / "copy.bin").read_bytes() == data
    finally:
        store.close()
