"""An app over a fresh SQLite store, and a TestClient on it (no socket)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.server.app import create_app
from loopml.store import Store, open_store

SMALL_LIMIT = 64 * 1024


@pytest.fixture
def body_limit() -> int:
    """The request body limit of the ``api`` app, in bytes."""
    return SMALL_LIMIT


@pytest.fixture
def sql_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def api(sql_store: Store, asgi_client: Callable[..., Any]) -> Iterator[Any]:
    """A TestClient on the app; server-side exceptions come back as 500 answers, as they would over a socket."""
    with asgi_client(create_app(sql_store, max_body_bytes=SMALL_LIMIT), raise_server_exceptions=False) as client:
        yield client
