"""Fixtures for the model-packaging tests: a SQLite store per test and the iris data."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from loopml.store import open_store
from loopml.tracking.client import TrackingClient


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the model cache (under the system temp dir) inside this test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TrackingClient]:
    opened = TrackingClient(open_store(f"sqlite:///{tmp_path}/l.db", artifacts_url=str(tmp_path / "a")))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def run_id(client: TrackingClient) -> str:
    return client.create_run("models", capture=False).run_id


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    return features, target
