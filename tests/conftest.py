"""Fixtures shared by every test: one store per test, on SQLite, PostgreSQL and REST.

PostgreSQL tests run against a real server: ``LOOPML_TEST_PG_URL`` (CI sets
it) or the local default. Each test gets its own schema, dropped afterwards,
so tests never see each other's rows. Where no server answers and the URL was
not set explicitly, PostgreSQL tests skip with the reason; where it was set,
they fail, so CI can never silently skip them.

``store`` (and what builds on it, such as ``client``) also runs on "rest": a
SQLite store behind ``create_app``, served by a real uvicorn server on a free
127.0.0.1 port and reached through ``open_rest_store`` over the socket. ``db_url`` and ``loopml_env`` stay SQL-only; in a
test that uses both ``store`` and ``db_url``, the rest case gets the URL of the
SQLite database behind the server.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Debian's Chromium, which the browser tests drive (Playwright's own browser download does not work here).
CHROMIUM = Path("/usr/bin/chromium")
SQL_BACKENDS = ["sqlite", "postgresql"]
STORE_BACKENDS = [*SQL_BACKENDS, "rest"]
_pg_problem: str | None = None
#: How long a test's HTTP call may wait for one of the test's own servers. httpx's default of 5 s
#: is a wall-clock assertion in disguise: on a loaded CI machine a first page render can take
#: longer, and a timeout there fails a test that asserts nothing about speed.
TEST_HTTP_TIMEOUT = httpx.Timeout(120.0)


def _patient_httpx() -> None:
    """Give every httpx call made by a test (and not naming its own timeout) TEST_HTTP_TIMEOUT."""
    for function in (
        httpx.get,
        httpx.post,
        httpx.put,
        httpx.patch,
        httpx.delete,
        httpx.head,
        httpx.options,
        httpx.request,
        httpx.Client.__init__,
        httpx.AsyncClient.__init__,
    ):
        defaults = function.__kwdefaults__
        if defaults is not None and "timeout" in defaults:
            defaults["timeout"] = TEST_HTTP_TIMEOUT


_patient_httpx()
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


def require_chromium() -> Path:
    """Debian's Chromium; without it the test skips, or fails where ``LOOPML_TEST_CHROMIUM`` is set (CI sets it)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("LOOPML_TEST_CHROMIUM"):
        pytest.fail(f"LOOPML_TEST_CHROMIUM is set but {CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(f"headless Chromium is not installed ({CHROMIUM}); set LOOPML_TEST_CHROMIUM=1 to require it")


@pytest.fixture
def chromium() -> Path:
    """The Chromium binary for a browser test (see ``require_chromium``)."""
    return require_chromium()


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests that use ``store`` on every backend, and tests that only use ``db_url`` on the SQL ones."""
    if "backend" in metafunc.fixturenames:
        backends = STORE_BACKENDS if "store" in metafunc.fixturenames else SQL_BACKENDS
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend this test runs on (parametrised by ``pytest_generate_tests``)."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for an empty store on each SQL backend (SQLite behind the server for "rest")."""
    if backend in ("sqlite", "rest"):
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
def asgi_client() -> Callable[..., Any]:
    """``make(app)`` -> a ``TestClient`` over ``app`` (httpx.Client's interface, no socket)."""
    with warnings.catch_warnings():
        # Starlette asks for httpx2 under its TestClient; loopml's client is httpx, which it still accepts.
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    return TestClient


class SwitchableApp:
    """An ASGI app that forwards to whichever app a test set last (one live server, a fresh store per test)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the per-test apps hold no lifespan state
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def live_server() -> Iterator[tuple[str, SwitchableApp]]:
    """A real uvicorn server on a free 127.0.0.1 port (one per test process), in a background thread."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    switch = SwitchableApp()
    server = uvicorn.Server(uvicorn.Config(switch, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="loopml-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", switch
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def store(backend: str, db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh store; for "rest" a SQLite store behind the real server, reached over a socket."""
    from loopml.store import open_store

    opened = open_store(db_url, artifacts_url=str(tmp_path / "artifacts"))
    if backend != "rest":
        try:
            yield opened
        finally:
            opened.close()
        return
    from loopml.server.app import create_app
    from loopml.store.rest import open_rest_store

    url, switch = request.getfixturevalue("live_server")
    switch.app = create_app(opened)
    remote = open_rest_store(url, "")
    try:
        yield remote
    finally:
        remote.close()
        switch.app = None
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
