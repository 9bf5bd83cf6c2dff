"""Fixtures for the attacks of the security review: real servers with tokens, and small real models."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the model cache (under the system temp dir) inside this test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    return features, target


@pytest.fixture
def auth_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Any, dict[str, str]]]:
    """``(url, store, tokens)``: a live ``create_app(auth=True)`` server over SQLite, a token per role."""
    from loopml.entities.auth import Role
    from loopml.server.app import create_app
    from loopml.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'auth.db'}", artifacts_url=str(tmp_path / "auth-artifacts"))
    tokens = {role.value: store.tokens.issue_token(role.value, role, actor="setup").secret for role in Role}
    url, switch = request.getfixturevalue("live_server")
    switch.app = create_app(store, auth=True)
    try:
        yield url, store, tokens
    finally:
        switch.app = None
        store.close()
