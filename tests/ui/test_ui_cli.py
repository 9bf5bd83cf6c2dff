"""``loopml ui`` and the UI switch of ``loopml server``: what they would start, with uvicorn replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.server.main import UI_ENV, app_from_env, ui_allowed


def _answers(client_cls: Any) -> tuple[int, int]:
    """What the app every worker would build from the environment the command left answers on / and the API."""
    built = app_from_env()
    try:
        client = client_cls(built)
        return client.get("/").status_code, client.get("/api/v1/health").status_code
    finally:
        built.state.store.close()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: calls.append({"target": target, **options}))
    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI", "LOOPML_SERVER_AUTH", UI_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    return calls


def test_loopml_ui_serves_the_embedded_store_on_loopback(started: list[dict[str, Any]], asgi_client: Any) -> None:
    result = CliRunner().invoke(app, ["ui", "--port", "5123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:5123/" in result.output
    (call,) = started
    assert call["host"] == "127.0.0.1" and call["port"] == 5123 and call["target"].endswith("app_from_env")
    assert _answers(asgi_client) == (200, 200)


def test_server_keeps_the_ui_off_on_a_public_host_without_auth(started: list[dict[str, Any]], asgi_client: Any) -> None:
    result = CliRunner().invoke(app, ["server", "--host", "0.0.0.0", "--port", "5124"])
    assert result.exit_code == 0, result.output
    assert "web UI" in result.output and "off" in result.output and "--allow-insecure-ui" in result.output
    assert _answers(asgi_client) == (404, 200)  # the API as before, no UI

    result = CliRunner().invoke(app, ["server", "--host", "0.0.0.0", "--allow-insecure-ui"])
    assert result.exit_code == 0, result.output
    assert _answers(asgi_client) == (200, 200)


@pytest.mark.parametrize(
    ("host", "auth", "allowed", "expected"),
    [
        ("127.0.0.1", False, False, True),
        ("::1", False, False, True),
        ("localhost", False, False, True),
        ("0.0.0.0", False, False, False),
        ("10.1.2.3", False, False, False),
        ("0.0.0.0", True, False, True),
        ("0.0.0.0", False, True, True),
    ],
)
def test_ui_allowed(host: str, auth: bool, allowed: bool, expected: bool) -> None:
    assert ui_allowed(host, auth=auth, allow_insecure_ui=allowed) is expected
