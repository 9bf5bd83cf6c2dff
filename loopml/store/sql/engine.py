"""Engines for SQLite and PostgreSQL, and the schema brought to head on first use.

SQLite runs in WAL mode with a busy timeout, and every write transaction
starts with ``BEGIN IMMEDIATE``: a deferred transaction that later tries to
write can fail at once with "database is locked" whatever the timeout, which
is how concurrent writers lose data. Migrations run under a lock (a file lock
for SQLite, an advisory lock for PostgreSQL) so several processes opening a
new store at once migrate it exactly once.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import Connection, Engine, Row, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from loopml.errors import InvalidValueError, MigrationError, StoreError, UnsupportedSchemeError

#: a result row of any shape (SQLAlchemy types a Row by the tuple of its columns)
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x100B_5EED  # any constant shared by every loopml process
_BUSY_TIMEOUT_MS = 60_000
_PING_AFTER_IDLE_S = 1.0  # a pooled PostgreSQL connection idle this long is pinged before use
_checked: set[str] = set()
_checked_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with loopml's connection settings applied.

    Its errors never quote a statement's parameters: they hold logged request bodies and other user data,
    and a failed write's message reaches the serving process's log.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UnsupportedSchemeError(
            f"Not a database URL: {url!r}. Use sqlite:///path/to/loopml.db or postgresql+psycopg://user@host/db."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if parsed.drivername == "postgresql" or parsed.drivername == "postgres":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return _postgres_engine(create_engine(parsed, pool_size=5, max_overflow=10, hide_parameters=True))
    raise UnsupportedSchemeError(
        f"Unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///path/to/loopml.db or postgresql+psycopg://user@host/db."
    )


def _postgres_engine(engine: Engine) -> Engine:
    """Ping a pooled connection before use when it sat idle ``_PING_AFTER_IDLE_S`` or more, as ``pool_pre_ping`` would.

    ``pool_pre_ping`` pings at every checkout: one more round trip on every call (0.15 to 0.25 ms
    of a 0.3 ms ``get_run``). A connection dropped by a server restart or an idle timeout is found
    the same way here, and replaced before the call uses it (a ``DisconnectionError`` from the
    checkout event makes the pool connect anew); one dropped within the last second can fail that
    one call (StoreError), after which SQLAlchemy renews the pool.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["loopml_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("loopml_idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"The pooled connection is gone: {exc}") from exc

    return engine


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder for the SQLite database {database!r}: {exc}") from exc
    engine = create_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("loopml_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turn "the database is unreachable or broken" into StoreError at the store boundary.

    Integrity errors pass through: the stores catch those to raise the
    precise AlreadyExists/Conflict error.
    """
    try:
        yield
    except DataError as exc:  # a value the column type cannot hold: the caller's mistake, not the store's
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise InvalidValueError(f"The database refused a value: {detail}") from exc
    except OverflowError as exc:  # sqlite3 binding a Python int past 64 bits (PostgreSQL says DataError)
        raise InvalidValueError(f"The database refused a value: {exc} (integers are 64-bit at most)") from exc
    except (OperationalError, InterfaceError, ProgrammingError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"Cannot use the database at {describe(engine)}: {detail}") from exc


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that may write; on SQLite it takes the write lock up front."""
    with translate_errors(engine), engine.connect().execution_options(loopml_write=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (a consistent snapshot on both backends)."""
    with translate_errors(engine), engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def read_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for one read-only statement: ``read_transaction`` where a transaction is free.

    On PostgreSQL BEGIN and COMMIT are two more round trips (0.2 ms of a 0.4 ms ``get_run``), and a
    single statement reads one snapshot on its own, so it runs in autocommit mode. Only for code
    that issues exactly one statement: a second would see a different snapshot.
    """
    if engine.dialect.name != "postgresql":
        with read_transaction(engine) as conn:
            yield conn
        return
    with translate_errors(engine), engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


# -- migrations -------------------------------------------------------------------


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    """The newest schema revision this version of loopml knows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise MigrationError(f"No migrations found in {_MIGRATIONS}; the loopml install is broken.")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema to ``revision``; return ``(before, after)`` revisions."""
    from alembic import command

    with translate_errors(engine), _migration_lock(engine):
        before = current_revision(engine)
        try:
            with write_transaction(engine) as conn:
                command.upgrade(_alembic_config(conn), revision)
        except Exception as exc:  # translate every backend failure at this boundary
            raise MigrationError(f"Could not migrate the loopml schema to {revision}: {exc}") from exc
        after = current_revision(engine)
    return before, after


def ensure_schema(engine: Engine) -> None:
    """Bring the schema to head once per process and URL (cheap after the first call)."""
    key = engine.url.render_as_string(hide_password=False)
    with _checked_lock, translate_errors(engine):
        if key in _checked:
            return
        head = head_revision()
        current = current_revision(engine)
        if current != head:
            if current is not None and not _known(current):
                raise MigrationError(
                    f"The store's schema is at revision {current}, newer than this loopml knows "
                    f"(head {head}); upgrade the loopml package."
                )
            upgrade(engine)
        _checked.add(key)


def _known(revision: str) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(config).get_revision(revision) is not None


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = f"{database}.migrate.lock"
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()


def dispose_after_fork(engine: Engine) -> None:
    """Make a forked child open its own connections instead of sharing the parent's."""
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
