"""Serving: deployments (audited decisions), the prediction log and feedback.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("deployment_id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("canary_version", sa.Integer),
        sa.Column("canary_percent", sa.Double),
        sa.Column("shadow_version", sa.Integer),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("previous_id", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_deployments"),
    )
    op.create_index("ix_deployments_name_deployment_id", "deployments", ["name", "deployment_id"])
    op.create_table(
        "predictions",
        sa.Column("id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_model_time", "predictions", ["model", "time"])
    op.create_index("ix_predictions_request_id", "predictions", ["request_id"])
    op.create_table(
        "prediction_feedback",
        sa.Column("id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_feedback"),
    )
    op.create_index("ix_prediction_feedback_request_id", "prediction_feedback", ["request_id"])
    op.create_index("ix_prediction_feedback_time", "prediction_feedback", ["time"])


def downgrade() -> None:
    op.drop_index("ix_prediction_feedback_time", table_name="prediction_feedback")
    op.drop_index("ix_prediction_feedback_request_id", table_name="prediction_feedback")
    op.drop_table("prediction_feedback")
    op.drop_index("ix_predictions_request_id", table_name="predictions")
    op.drop_index("ix_predictions_model_time", table_name="predictions")
    op.drop_table("predictions")
    op.drop_index("ix_deployments_name_deployment_id", table_name="deployments")
    op.drop_table("deployments")
