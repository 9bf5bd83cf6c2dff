"""Metric points keep the sign of zero: ``negative_zero`` on ``metrics`` and ``latest_metrics``.

SQLite writes a REAL that holds an integral value as an integer on disk, so
-0.0 came back as 0.0 (the security review, finding 10). The flag restores
the sign on read; searches still compare -0.0 equal to 0.0, as IEEE does.
Points stored before this revision read as they did (0.0).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLES = ("metrics", "latest_metrics")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("negative_zero", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("negative_zero")
