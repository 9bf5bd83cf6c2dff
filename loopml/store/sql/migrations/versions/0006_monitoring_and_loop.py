"""Monitors, their results and alerts; continuous-training tasks and each policy's cursors.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitors"),
    )
    op.create_table(
        "monitor_results",
        sa.Column("result_id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary_json", sa.Text, nullable=False),
        sa.Column("figures_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("result_id", name="pk_monitor_results"),
    )
    op.create_index("ix_monitor_results_monitor_time", "monitor_results", ["monitor", "time"])
    op.create_table(
        "alerts",
        sa.Column("alert_id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("result_id", sa.BigInteger, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_monitor", "alerts", ["monitor"])
    op.create_index("ix_alerts_model", "alerts", ["model"])
    op.create_table(
        "loop_tasks",
        sa.Column("task_id", _auto_id, autoincrement=True, nullable=False),
        sa.Column("policy", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("trigger_ref", sa.String(256)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("stages_json", sa.Text, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("outcome", sa.Text),
        sa.Column("details_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_loop_tasks"),
    )
    op.create_index("ix_loop_tasks_policy", "loop_tasks", ["policy"])
    op.create_index(
        "ix_loop_tasks_running_policy",
        "loop_tasks",
        ["policy"],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )
    op.create_table(
        "loop_cursors",
        sa.Column("policy", sa.String(256), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("policy", "key", name="pk_loop_cursors"),
    )


def downgrade() -> None:
    op.drop_table("loop_cursors")
    op.drop_index("ix_loop_tasks_running_policy", table_name="loop_tasks")
    op.drop_index("ix_loop_tasks_policy", table_name="loop_tasks")
    op.drop_table("loop_tasks")
    op.drop_index("ix_alerts_model", table_name="alerts")
    op.drop_index("ix_alerts_monitor", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_monitor_results_monitor_time", table_name="monitor_results")
    op.drop_table("monitor_results")
    op.drop_table("monitors")
