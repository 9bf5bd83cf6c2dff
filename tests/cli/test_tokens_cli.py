"""``loopml tokens`` against the store, and ``loopml server --auth`` with real clients over a socket."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.main import app

runner = CliRunner()
TOKEN = re.compile(r"lml_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    for name in ("LOOPML_DB_URL", "LOOPML_TRACKING_URI", "LOOPML_ARTIFACTS_URL", "LOOPML_TOKEN", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    loopml.set_tracking_uri(None)
    yield tmp_path
    loopml.set_tracking_uri(None)


def test_create_list_revoke(home):
    created = runner.invoke(app, ["tokens", "create", "--name", "ci", "--role", "editor"])
    assert created.exit_code == 0, created.output
    assert len(TOKEN.findall(created.output)) == 1 and "not shown again" in created.output

    listed = runner.invoke(app, ["tokens", "list"])
    assert "ci" in listed.output and "editor" in listed.output and not TOKEN.search(listed.output)

    again = runner.invoke(app, ["tokens", "create", "--name", "ci", "--role", "admin"])
    assert again.exit_code != 0 and "revoke it first" in again.output and "Token already exists" in again.output
    missing = runner.invoke(app, ["tokens", "revoke", "nobody"])
    assert missing.exit_code != 0 and "Token not found" in missing.output

    bad = runner.invoke(app, ["tokens", "create", "--name", "x", "--role", "root"])
    assert bad.exit_code != 0 and "viewer, editor, admin" in bad.output

    assert runner.invoke(app, ["tokens", "revoke", "ci"]).exit_code == 0
    assert "No tokens yet" in runner.invoke(app, ["tokens", "list"]).output
    assert "ci" in runner.invoke(app, ["tokens", "list", "--all"]).output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(env, script, token=None):
    client_env = {**env, "LOOPML_TRACKING_URI": env["URL"]}
    client_env.pop("LOOPML_TOKEN", None)
    if token:
        client_env["LOOPML_TOKEN"] = token
    return subprocess.run([sys.executable, "-c", script], env=client_env, capture_output=True, text=True)


@pytest.mark.slow
def test_the_server_with_auth_refuses_anonymous_clients_and_records_the_tokens_owner(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "server-home")
    cli = [sys.executable, "-m", "loopml.cli.main"]
    made = subprocess.run([*cli, "tokens", "create", "--name", "root", "--role", "admin"], env=env, capture_output=True, text=True)
    admin = TOKEN.search(made.stdout).group(0)

    server = [*cli, "server", "--auth", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(server, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).json()["auth"] == "tokens"
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("server did not start")
                time.sleep(0.2)
        env["URL"] = f"http://127.0.0.1:{port}"
        client_env = {**env, "LOOPML_TRACKING_URI": env["URL"], "LOOPML_TOKEN": admin}
        issued = subprocess.run([*cli, "tokens", "create", "--name", "ci", "--role", "editor"], env=client_env,
                                capture_output=True, text=True)  # fmt: skip
        assert issued.returncode == 0, issued.stdout + issued.stderr
        editor = TOKEN.search(issued.stdout).group(0)

        script = (
            "import loopml\n"
            "with loopml.start_run(capture=False) as run:\n"
            "    run.log_metrics({'acc': 0.9})\n"
            "print(loopml.get_run(run.run_id).info.user)\n"
        )
        anonymous = _client(env, script)
        assert anonymous.returncode != 0 and "AuthenticationError" in anonymous.stderr
        as_editor = _client(env, script, editor)
        assert as_editor.returncode == 0, as_editor.stderr
        assert as_editor.stdout.strip() == "ci"

        whoami = subprocess.run([*cli, "tokens", "whoami"], env={**client_env, "LOOPML_TOKEN": editor},
                                capture_output=True, text=True)  # fmt: skip
        assert "ci" in whoami.stdout and "editor" in whoami.stdout
        refused = subprocess.run([*cli, "tokens", "list"], env={**client_env, "LOOPML_TOKEN": editor},
                                 capture_output=True, text=True)  # fmt: skip
        assert refused.returncode == 3 and "admin" in refused.stdout + refused.stderr
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "API tokens" in output


def test_whoami_prints_the_creator_as_is(home, monkeypatch):
    monkeypatch.setenv("LOOPML_ACTOR", "ops[/]bot")  # an actor name is free text, never Rich markup
    created = runner.invoke(app, ["tokens", "create", "--name", "ci", "--role", "editor"])
    assert created.exit_code == 0, created.output
    monkeypatch.setenv("LOOPML_TOKEN", TOKEN.search(created.output).group(0))
    shown = runner.invoke(app, ["tokens", "whoami"])
    assert shown.exit_code == 0, shown.output
    assert "ci (editor)" in shown.output and "by ops[/]bot" in shown.output
