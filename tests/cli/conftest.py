"""Where the CLI tests point the ``loopml`` command: the embedded store, or a real server.

Every CLI test that uses ``home`` runs twice: once with ``LOOPML_HOME`` holding
the SQLite store, once with ``LOOPML_TRACKING_URI`` at a live server (the
session's uvicorn server from ``tests/conftest.py``) over a fresh store, so
every command is checked to work against a server too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml

CLEARED = ("LOOPML_DB_URL", "LOOPML_TRACKING_URI", "LOOPML_ARTIFACTS_URL", "LOOPML_ACTOR", "LOOPML_TOKEN", "COLUMNS",
           "FORCE_COLOR")  # fmt: skip


@pytest.fixture(params=["embedded", "server"])
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    served = None
    if request.param == "server":
        from loopml.server.app import create_app
        from loopml.store import open_store

        served = open_store(f"sqlite:///{tmp_path / 'server.db'}", artifacts_url=str(tmp_path / "server-artifacts"))
        url, switch = request.getfixturevalue("live_server")
        switch.app = create_app(served)
        monkeypatch.setenv("LOOPML_TRACKING_URI", url)
    loopml.set_tracking_uri(None)
    yield tmp_path
    loopml.set_tracking_uri(None)
    from loopml.tracking import fluent

    if fluent._client is not None:
        fluent._client.close()
        fluent._client = None
        fluent._client_key = None
    if served is not None:
        served.close()
