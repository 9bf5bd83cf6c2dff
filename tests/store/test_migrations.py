"""Schema migrations: head matches the tables, and an old store upgrades in place with no loss."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from loopml.store.sql import engine as engine_module
from loopml.store.sql.engine import current_revision, head_revision, make_engine, upgrade
from loopml.store.sql.tables import metadata


def test_migrations_build_exactly_the_declared_schema(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []


def test_a_store_at_revision_0001_upgrades_without_losing_data(db_url, tmp_path):
    engine = make_engine(db_url)
    assert upgrade(engine, "0001") == (None, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO experiments (name, created_at) VALUES ('old', 1)"))
        conn.execute(
            sa.text(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, user_name) "
                "VALUES (:r, 1, 'legacy', 'FINISHED', 5, 'me')"
            ),
            {"r": "a" * 32},
        )
        conn.execute(sa.text("INSERT INTO params (run_id, key, value) VALUES (:r, 'lr', '0.1')"), {"r": "a" * 32})
        # history written by the old version: step 3 is the latest despite its earlier timestamp
        for step, value, ts, nan in [(1, 0.5, 10, False), (3, 0.9, 5, False), (2, 0.7, 99, False), (0, None, 1, True)]:
            conn.execute(
                sa.text(
                    "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) "
                    "VALUES (:r, 'acc', :v, :n, :s, :t)"
                ),
                {"r": "a" * 32, "v": value, "n": nan, "s": step, "t": ts},
            )
    assert current_revision(engine) == "0001"
    engine_module._checked.discard(engine.url.render_as_string(hide_password=False))
    engine.dispose()

    from loopml.store import open_store  # opening the store applies the pending migration

    store = open_store(db_url, artifacts_url=str(tmp_path / "artifacts"))
    try:
        assert current_revision(make_engine(db_url)) == head_revision()
        run = store.tracking.get_run("a" * 32)
        assert run.info.name == "legacy"
        assert run.params == {"lr": "0.1"}
        assert run.metrics == {"acc": 0.9}
        assert len(store.tracking.get_metric_history("a" * 32, "acc")) == 4
        from loopml.tracking.search import parse_filter

        found = store.tracking.search_runs(None, parse_filter("metrics.acc > 0.8"), (), 10, None)
        assert [r.info.name for r in found.runs] == ["legacy"]
    finally:
        store.close()


def test_upgrade_is_idempotent(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    assert upgrade(engine) == (head_revision(), head_revision())
    engine.dispose()


def test_bodies_logged_before_compression_read_as_they_were_and_a_downgrade_restores_compressed_ones(db_url, tmp_path):
    """0015 moved long bodies to a compressed column: old rows still read, and going back loses none."""
    import json

    from alembic import command

    from loopml.entities.serving import PredictionRecord
    from loopml.store import open_store
    from loopml.store.sql.engine import _alembic_config, write_transaction

    old_body = json.dumps({"records": [{"x": i} for i in range(300)]})
    engine = make_engine(db_url)
    upgrade(engine, "0014")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions (request_id, time, model, version, role, inputs, outputs, latency_ms, "
                "status) VALUES ('old', 1, 'churn', 1, 'main', :body, '[0]', 1.0, 200)"
            ),
            {"body": old_body},
        )
    engine_module._checked.discard(engine.url.render_as_string(hide_password=False))
    engine.dispose()
    new_body = json.dumps({"records": [{"x": -i} for i in range(300)]})
    store = open_store(db_url, artifacts_url=str(tmp_path / "artifacts"))  # upgrades to head
    try:
        store.serving.log_predictions([PredictionRecord("new", 2, "churn", 1, "main", new_body, "[1]", 1.0, 200)])
        assert [r.inputs for r in store.serving.read_predictions("churn")] == [old_body, new_body]
    finally:
        store.close()
    engine = make_engine(db_url)
    with write_transaction(engine) as conn:
        command.downgrade(_alembic_config(conn), "0014")
    with engine.connect() as conn:
        bodies = dict(conn.execute(sa.text("SELECT request_id, inputs FROM predictions")).all())
    engine_module._checked.discard(engine.url.render_as_string(hide_password=False))
    engine.dispose()
    assert bodies == {"old": old_body, "new": new_body}
