"""The feature store's applied definitions (issue 13).

``feature_definitions`` keeps every version of every entity, feature view and
feature service as canonical JSON with its sha256; a new version is a new row,
never an update, and ``def_id`` grows with each, which serving processes read
to know when their cached definitions are stale.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("def_id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("def_id", name="pk_feature_definitions"),
    )
    op.create_index(
        "ix_feature_definitions_kind_name_version", "feature_definitions", ["kind", "name", "version"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_feature_definitions_kind_name_version", table_name="feature_definitions")
    op.drop_table("feature_definitions")
