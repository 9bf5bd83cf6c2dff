"""Fixtures shared by every test: one store per test, on SQLite and on PostgreSQL.

PostgreSQL tests run against a real server: ``LOOPML_TEST_PG_URL`` (CI sets
it) or the local default. Each test gets its own schema, dropped afterwards,
so tests never see each other's rows. Where no server answers and the URL was
not set explicitly, PostgreSQL tests skip with the reason; where it was set,
they fail, so CI can never silently skip them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_pg_problem: str | None = None
_pg_checked = False


def _pg_base_url() -> str:
    return os.environ.get("LOOPML_TEST_PG_URL") or DEFAULT_PG_URL


def _pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    global _pg_problem, _pg_checked
    if not _pg_checked:
        _pg_checked = True
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(_pg_base_url(), connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
            engine.dispose()
        except Exception as exc:  # any failure to connect means "no server here"
            _pg_problem = f"no PostgreSQL server answers at {_pg_base_url()}: {exc.__class__.__name__}: {exc}"
    return _pg_problem


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    problem = _pg_unavailable()
    if problem:
        if os.environ.get("LOOPML_TEST_PG_URL"):
            pytest.fail(f"LOOPML_TEST_PG_URL is set but {problem}")
        pytest.skip(problem)
    return _pg_base_url()


def make_pg_schema_url(base_url: str) -> tuple[str, str]:
    """Create a fresh schema; return (url whose search_path is that schema, schema name)."""
    import sqlalchemy

    schema = f"loopml_t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{schema}", schema


def drop_pg_schema(base_url: str, schema: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for an empty store on each SQL backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loopml.db'}"
        return
    base = request.getfixturevalue("pg_base_url")
    url, schema = make_pg_schema_url(base)
    try:
        yield url
    finally:
        from loopml.store.sql import engine as engine_module

        engine_module._checked.discard(url)
        drop_pg_schema(base, schema)


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[object]:
    from loopml.store import open_store

    opened = open_store(db_url, artifacts_url=str(tmp_path / "artifacts"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(store: object) -> object:
    from loopml.tracking.client import TrackingClient

    return TrackingClient(store)  # type: ignore[arg-type]


@pytest.fixture
def loopml_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the module-level API (``loopml.start_run``) at a fresh store on each backend."""
    import loopml
    from loopml.tracking import fluent

    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPML_DB_URL", db_url)
    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    monkeypatch.delenv("LOOPML_TRACKING_URI", raising=False)
    loopml.set_tracking_uri(None)
    monkeypatch.setattr(fluent, "_experiment", None)
    yield db_url
    client = fluent._client
    if client is not None:
        client.close()
    fluent._client = None
    fluent._client_key = None
