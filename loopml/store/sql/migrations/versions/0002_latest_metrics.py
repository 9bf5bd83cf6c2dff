"""Keep each run's latest metric values in their own indexed table.

Search filters and orders by a metric's latest value ("metrics.acc > 0.9");
reading it from the full history would scan every point. This revision adds
``latest_metrics`` and backfills it from the history already stored: the
point with the highest step, then the latest timestamp, then the last written.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_latest_metrics"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_latest_metrics_run_id_runs"),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.execute(
        """
        INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp)
        SELECT m.run_id, m.key, m.value, m.is_nan, m.step, m.timestamp
        FROM metrics m
        WHERE m.id = (
            SELECT m2.id FROM metrics m2
            WHERE m2.run_id = m.run_id AND m2.key = m.key
            ORDER BY m2.step DESC, m2.timestamp DESC, m2.id DESC
            LIMIT 1
        )
        """
    )


def downgrade() -> None:
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
    op.drop_table("latest_metrics")
