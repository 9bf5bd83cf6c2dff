"""The SQL backend (SQLite, PostgreSQL): SQLAlchemy Core tables, Alembic migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.store.sql.engine import dispose_after_fork, ensure_schema, make_engine

if TYPE_CHECKING:
    from loopml.store import Store


def open_sql_store(url: str, artifacts_url: str) -> Store:
    """A Store whose metadata lives in the database at ``url``, migrated to head."""
    from loopml.store import Store
    from loopml.store.fs.artifacts import open_fs_artifact_store
    from loopml.store.predictions import parquet_sink
    from loopml.store.sql.audit import SqlAuditLog
    from loopml.store.sql.features import SqlFeatureStore
    from loopml.store.sql.monitoring import SqlLoopStore, SqlMonitoringStore
    from loopml.store.sql.registry import SqlRegistryStore
    from loopml.store.sql.replicas import SqlReplicaStore
    from loopml.store.sql.serving import SqlServingStore
    from loopml.store.sql.tokens import SqlTokenStore
    from loopml.store.sql.tracking import SqlTrackingStore

    engine = make_engine(url)
    ensure_schema(engine)
    dispose_after_fork(engine)
    return Store(
        tracking=SqlTrackingStore(engine),
        registry=SqlRegistryStore(engine),
        audit=SqlAuditLog(engine),
        artifacts=open_fs_artifact_store(artifacts_url),
        tokens=SqlTokenStore(engine),
        serving=SqlServingStore(engine, sink=parquet_sink(artifacts_url)),
        monitoring=SqlMonitoringStore(engine),
        loop=SqlLoopStore(engine),
        features=SqlFeatureStore(engine),
        replicas=SqlReplicaStore(engine),
        url=url,
        on_close=engine.dispose,
    )
