"""Metric roll-ups for the web UI's charts (issue 12): ``metric_rollups``; ``ix_runs_parent_run_id`` made partial.

One row per (run, metric key, x axis, block width, block): the count, NaN count, min,
max and sum of the points whose step (or timestamp) falls in ``[block * width, (block + 1)
* width)``, and the first and last x among them. Widths are powers of 4 (a fixed grid),
so a chart of a million-point metric reads a few thousand rows instead of the points.
Rows are built from the history the first time a chart asks for a long metric of a run
that has ended (its history can no longer change), so this migration only creates the
table: existing stores fill it lazily.

``ix_runs_parent_run_id`` now leaves out the runs without a parent (most of them). With them in it,
SQLite's ``ANALYZE`` statistics said a lookup by parent matches half the runs, so the runs page's one
"children of these runs" query scanned the experiment's 100,000 runs (95 ms) instead of looking up
100 parents (0.1 ms).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_HAS_PARENT = "parent_run_id IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("axis", sa.String(4), nullable=False),
        sa.Column("width", sa.BigInteger, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("nan_count", sa.BigInteger, nullable=False),
        sa.Column("low", sa.Double),
        sa.Column("high", sa.Double),
        sa.Column("total", sa.Double),
        sa.Column("x_first", sa.BigInteger, nullable=False),
        sa.Column("x_last", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", "axis", "width", "block", name="pk_metric_rollups"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_metric_rollups_run_id_runs"),
        sqlite_with_rowid=False,  # a chart reads a range of the primary key: the rows are in it
    )
    op.drop_index("ix_runs_parent_run_id", table_name="runs")
    op.create_index(
        "ix_runs_parent_run_id",
        "runs",
        ["parent_run_id"],
        sqlite_where=sa.text(_HAS_PARENT),
        postgresql_where=sa.text(_HAS_PARENT),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_parent_run_id", table_name="runs")
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.drop_table("metric_rollups")
