"""``loopml server`` as a user starts it: a real process on a free port, used by a real client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_server_command_serves_the_tracking_api(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "server-home")
    command = [sys.executable, "-m", "loopml.cli.main", "server", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("server did not start: " + (process.stdout.read() if process.poll() is not None else ""))
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        client_env = {**env, "LOOPML_TRACKING_URI": f"http://127.0.0.1:{port}", "LOOPML_HOME": str(tmp_path / "client")}
        script = (
            "import loopml\n"
            "with loopml.start_run(params={'lr': 0.1}, capture=False) as run:\n"
            "    run.log_metrics({'acc': 0.9})\n"
            "print(loopml.search_runs(filter='metrics.acc > 0.5', as_frame=False)[0].params['lr'])\n"
        )
        out = subprocess.run([sys.executable, "-c", script], env=client_env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "0.1"
        assert (tmp_path / "server-home" / "loopml.db").exists()  # the data lives on the server's side
        assert not (tmp_path / "client").exists()
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}/api/v1" in output
    assert "store" in output and "auth" in output
