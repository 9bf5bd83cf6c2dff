"""Store failures reach users as LoopMLError subclasses with the URL, never as driver tracebacks."""

from __future__ import annotations

import pytest

from loopml.errors import StoreError, UnsupportedSchemeError
from loopml.store import open_store


def test_an_unreachable_postgresql_is_a_store_error_naming_the_url(tmp_path):
    with pytest.raises(StoreError, match=r"postgresql\+psycopg://nobody:\*\*\*@127.0.0.1:1/none.*refused"):
        open_store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", artifacts_url=str(tmp_path))


def test_the_password_is_hidden_in_store_errors(tmp_path):
    with pytest.raises(StoreError) as caught:
        open_store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", artifacts_url=str(tmp_path))
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("url", ["notaurl", "mysql://root@localhost/x", "ftp://host/path"])
def test_unknown_schemes_list_the_supported_ones(url, tmp_path):
    with pytest.raises(UnsupportedSchemeError, match="sqlite"):
        open_store(url, artifacts_url=str(tmp_path))


def test_an_sqlite_path_that_cannot_be_created_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="Cannot create the folder"):
        open_store(f"sqlite:///{blocker}/sub/loopml.db", artifacts_url=str(tmp_path / "a"))


def test_a_store_whose_database_vanishes_raises_store_error(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'db' / 'l.db'}", artifacts_url=str(tmp_path / "a"))
    store.tracking.create_experiment("x")
    store.close()
    import shutil

    shutil.rmtree(tmp_path / "db")
    (tmp_path / "db").write_text("now a file")  # the folder is gone and cannot be recreated
    with pytest.raises(StoreError, match="Cannot use the database"):
        store.tracking.list_experiments()


def _drop_pooled_connection(store, db_url):
    """Terminate, from another connection, the one connection the store's pool holds."""
    import sqlalchemy

    with store.tracking._engine.connect() as conn:
        pid = conn.connection.dbapi_connection.info.backend_pid
    killer = sqlalchemy.create_engine(db_url)
    with killer.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()


@pytest.fixture
def pg_url(pg_base_url):
    """A fresh PostgreSQL schema (the ping-before-use is PostgreSQL's pool; SQLite has no connection to drop)."""
    from tests.conftest import drop_pg_schema, make_pg_schema_url

    url, schema = make_pg_schema_url(pg_base_url)
    yield url
    drop_pg_schema(pg_base_url, schema)


def test_a_postgresql_connection_dropped_while_idle_is_replaced_before_use(pg_url, tmp_path, monkeypatch):
    """Pooled connections idle for _PING_AFTER_IDLE_S are pinged before use (not at every checkout) and replaced if dead."""
    from loopml.store.sql import engine as sql_engine

    db_url = pg_url
    store = open_store(db_url, artifacts_url=str(tmp_path / "a"))
    try:
        experiment = store.tracking.create_experiment("x")
        monkeypatch.setattr(sql_engine, "_PING_AFTER_IDLE_S", 0.0)  # every idle connection counts as long idle
        _drop_pooled_connection(store, db_url)
        assert store.tracking.get_experiment(experiment.experiment_id).name == "x"
        assert store.tracking.get_experiment(experiment.experiment_id).name == "x"  # and the pool goes on
    finally:
        store.close()
