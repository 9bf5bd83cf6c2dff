"""Serving replica heartbeats and named leases (the loop agent's leader election), issue 14.

``serving_replicas`` holds one row per running prediction service, refreshed by its heartbeat,
so ``loopml deployments list`` can say which replicas serve what. ``leases`` holds named leases
with an expiry and an epoch that grows with each new holder: one row, taken or renewed with a
conditional UPDATE, elects one leader among agents on SQLite and PostgreSQL alike.

``ix_registered_models_name_prefix`` lets PostgreSQL answer ``search_models("name like 'churn-%'")``
with an index range (``varchar_pattern_ops``) where a database collation other than C made it scan
every model: 3.8 ms -> 0.1 ms at 10,000 models. ``search_runs`` at 1,000,000 runs needs no new index:
its plans already walk ``ix_runs_experiment_id_start_time`` backwards and probe ``latest_metrics`` by
primary key (2 ms in the database, see docs/benchmarks.md).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_replicas",
        sa.Column("replica_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("hostname", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("serving_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("replica_id", name="pk_serving_replicas"),
    )
    op.create_index("ix_serving_replicas_last_seen", "serving_replicas", ["last_seen"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("holder", sa.String(256), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_index("ix_registered_models_name_prefix", "registered_models", ["name"],
                    postgresql_ops={"name": "varchar_pattern_ops"})  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_registered_models_name_prefix", table_name="registered_models")
    op.drop_table("leases")
    op.drop_index("ix_serving_replicas_last_seen", table_name="serving_replicas")
    op.drop_table("serving_replicas")
