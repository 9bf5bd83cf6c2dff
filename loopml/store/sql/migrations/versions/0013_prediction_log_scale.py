"""The prediction log at scale: per-model log policies (redaction, entity key) and entity keys for erasure.

``prediction_log_policies`` holds one row per model that declares redaction
rules or an entity-key column; ``prediction_entities`` records each logged
request's entity keys (after redaction) so erasure finds a person's rows by
index on either sink.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prediction_log_policies",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("redact", sa.Text, nullable=False),
        sa.Column("entity_key", sa.String(256)),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_prediction_log_policies"),
    )
    op.create_table(
        "prediction_entities",
        sa.Column("id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("entity_key", sa.String(256), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_entities"),
    )
    op.create_index("ix_prediction_entities_entity_key", "prediction_entities", ["entity_key"])
    op.create_index("ix_prediction_entities_request_id", "prediction_entities", ["request_id"])
    op.create_index("ix_prediction_entities_time", "prediction_entities", ["time"])
    with op.batch_alter_table("prediction_feedback") as batch:
        batch.add_column(sa.Column("model", sa.String(256)))
    op.create_index("ix_prediction_feedback_model_time", "prediction_feedback", ["model", "time"])


def downgrade() -> None:
    op.drop_index("ix_prediction_feedback_model_time", "prediction_feedback")
    with op.batch_alter_table("prediction_feedback") as batch:
        batch.drop_column("model")
    op.drop_table("prediction_entities")
    op.drop_table("prediction_log_policies")
