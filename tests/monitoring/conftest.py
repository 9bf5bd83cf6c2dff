"""Fixtures of the monitor tests: one SQLite store, for the tests that need not run on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Any]:
    """A fresh SQLite store (the ``store`` fixture runs on SQLite, PostgreSQL and REST; this one on SQLite only)."""
    from loopml.store import open_store

    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def sqlite_client(sqlite_store: Any) -> Any:
    from loopml.tracking.client import TrackingClient

    return TrackingClient(sqlite_store)
