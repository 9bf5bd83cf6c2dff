"""Fixtures for the pipeline tests: a local SQLite store for the tests where the backend does not matter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipelines import library


@pytest.fixture
def local_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The default client on a fresh LOOPML_HOME (SQLite): one backend, for behaviour that is not the store's."""
    import loopml
    from loopml.tracking import fluent

    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    loopml.set_tracking_uri(None)
    monkeypatch.setattr(fluent, "_experiment", None)
    library.CALLS.clear()
    yield loopml.get_tracking_client()
    client = fluent._client
    if client is not None:
        client.close()
    fluent._client = None
    fluent._client_key = None
