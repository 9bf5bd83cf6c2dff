"""The metadata schema as SQLAlchemy Core tables (the head revision).

Migrations in ``migrations/versions`` build exactly this; a test compares them.
Timestamps are integer milliseconds since the epoch. Metric values that are
NaN are stored as NULL with ``is_nan`` set, because SQLite turns NaN into NULL
anyway and both backends must round-trip it the same way; -0.0 is stored as 0.0
with ``negative_zero`` set, because SQLite writes an integral REAL as an integer.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    text,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

#: An auto-incrementing 64-bit key (SQLite needs INTEGER for rowid aliasing).
AutoId = BigInteger().with_variant(Integer(), "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("parent_run_id", String(32), ForeignKey("runs.run_id")),
    Column("user_name", String(256), nullable=False),
    Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),
    # partial (migration 0010): most runs have no parent, and with the NULLs counted SQLite's statistics
    # say a lookup by parent matches half the runs, so it scanned the experiment instead
    Index(
        "ix_runs_parent_run_id",
        "parent_run_id",
        sqlite_where=text("parent_run_id IS NOT NULL"),
        postgresql_where=text("parent_run_id IS NOT NULL"),
    ),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    Column("value_num", Double),
    PrimaryKeyConstraint("run_id", "key"),
    Index("ix_params_key_value_num", "key", "value_num"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    Column("value_num", Double),
    PrimaryKeyConstraint("run_id", "key"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Double),
    Column("is_nan", Boolean, nullable=False),
    Column("negative_zero", Boolean, nullable=False, server_default=false()),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Double),
    Column("is_nan", Boolean, nullable=False),
    Column("negative_zero", Boolean, nullable=False, server_default=false()),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_id", "key"),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

#: Per-block aggregates of a metric for charts (issue 12, ``loopml/store/sql/rollups.py``): the
#: points with ``block * width <= x < (block + 1) * width`` on the ``axis`` (``step`` or ``time``).
metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("axis", String(4), nullable=False),
    Column("width", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("nan_count", BigInteger, nullable=False),
    Column("low", Double),
    Column("high", Double),
    Column("total", Double),
    Column("x_first", BigInteger, nullable=False),
    Column("x_last", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_id", "key", "axis", "width", "block"),
    sqlite_with_rowid=False,
)

applied_batches = Table(
    "applied_batches",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("applied_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_id", "idempotency_key"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("source", Text, nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("profile_json", Text, nullable=False),
    Column("storage_digest", String(64)),
    Column("storage_format", String(16)),
    Column("created_at", BigInteger, nullable=False),
)

dataset_inputs = Table(
    "dataset_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("digest", String(64), ForeignKey("datasets.digest"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("context", String(64), nullable=False),
    PrimaryKeyConstraint("run_id", "digest", "context"),
    Index("ix_dataset_inputs_digest", "digest"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_id", "path"),
)

# -- registry (revision 0003) ------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text),
    Column("require_approval", Boolean, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # name prefixes (``name like 'churn-%'``) as an index range on PostgreSQL whatever the collation (0012)
    Index("ix_registered_models_name_prefix", "name", postgresql_ops={"name": "varchar_pattern_ops"}),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("name", String(256), ForeignKey("registered_models.name"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    Column("value_num", Double),
    PrimaryKeyConstraint("name", "key"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(256), ForeignKey("registered_models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("source", Text, nullable=False),
    # sha256 of the manifest at registration: the manifest pins every file, so this pins the version
    Column("manifest_digest", String(64)),
    Column("stage", String(16), nullable=False),
    Column("description", Text),
    Column("evidence_json", Text, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "version"),
    Index("ix_model_versions_run_id", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    Column("value_num", Double),
    PrimaryKeyConstraint("name", "version", "key"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(256), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("name", "alias"),
)

transition_requests = Table(
    "transition_requests",
    metadata,
    Column("request_id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("to_stage", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("requested_at", BigInteger, nullable=False),
    Column("comment", Text),
    Column("decided_by", String(256)),
    Column("decided_at", BigInteger),
    Column("decision_comment", Text),
    Index("ix_transition_requests_name_version", "name", "version"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("event_id", AutoId, primary_key=True, autoincrement=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(64), nullable=False),
    Column("target", String(512), nullable=False),
    Column("before_json", Text),
    Column("after_json", Text),
    Column("reason", Text),
    Column("evidence_json", Text),
    Index("ix_audit_events_time", "time"),
    Index("ix_audit_events_target", "target_type", "target"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("revoked_at", BigInteger),
    # one active token per name; revoked ones stay for the record
    Index(
        "ix_api_tokens_active_name",
        "name",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

# -- serving (revision 0005) -------------------------------------------------------------

deployments = Table(
    "deployments",
    metadata,
    Column("deployment_id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("target", String(128), nullable=False),
    Column("canary_version", Integer),
    Column("canary_percent", Double),
    Column("shadow_version", Integer),
    Column("action", String(16), nullable=False),
    Column("previous_id", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("reason", Text),
    Index("ix_deployments_name_deployment_id", "name", "deployment_id"),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("inputs", Text, nullable=False),  # empty when the body is in inputs_zstd
    Column("outputs", Text, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("status", Integer, nullable=False),
    # a long body, compressed (loopml.store.predictions.bodies): its length, then one zstd frame
    Column("inputs_zstd", LargeBinary),
    Index("ix_predictions_model_time", "model", "time"),
    Index("ix_predictions_request_id", "request_id"),
)

prediction_feedback = Table(
    "prediction_feedback",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("label", Text, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("model", String(256)),  # revision 0013: the model that answered (NULL on rows from before)
    Index("ix_prediction_feedback_request_id", "request_id"),
    Index("ix_prediction_feedback_time", "time"),
    Index("ix_prediction_feedback_model_time", "model", "time"),
)

# -- the prediction log at scale (revision 0013) ------------------------------------------
prediction_log_policies = Table(
    "prediction_log_policies",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("redact", Text, nullable=False),  # JSON {"column": "drop" | "hash" | "truncate:N"}
    Column("entity_key", String(256)),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

prediction_entities = Table(
    "prediction_entities",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("model", String(256), nullable=False),
    Column("entity_key", String(256), nullable=False),
    Column("time", BigInteger, nullable=False),
    Index("ix_prediction_entities_entity_key", "entity_key"),
    Index("ix_prediction_entities_request_id", "request_id"),
    Index("ix_prediction_entities_time", "time"),
)

# -- monitoring and continuous training (revision 0006) ----------------------------------

monitors = Table(
    "monitors",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("spec_json", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("result_id", AutoId, primary_key=True, autoincrement=True),
    Column("monitor", String(256), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", Integer),
    Column("status", String(16), nullable=False),
    Column("summary_json", Text, nullable=False),
    Column("figures_json", Text, nullable=False),
    Index("ix_monitor_results_monitor_time", "monitor", "time"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", AutoId, primary_key=True, autoincrement=True),
    Column("monitor", String(256), nullable=False),
    Column("result_id", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", Integer),
    Column("kind", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("details_json", Text, nullable=False),
    Index("ix_alerts_monitor", "monitor"),
    Index("ix_alerts_model", "model"),
)

loop_tasks = Table(
    "loop_tasks",
    metadata,
    Column("task_id", AutoId, primary_key=True, autoincrement=True),
    Column("policy", String(256), nullable=False),
    Column("model", String(256), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("trigger_ref", String(256)),
    Column("state", String(16), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("stages_json", Text, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("outcome", Text),
    Column("details_json", Text, nullable=False),
    Index("ix_loop_tasks_policy", "policy"),
    # at most one running task per policy: a second alert cannot start a duplicate retrain
    Index(
        "ix_loop_tasks_running_policy",
        "policy",
        unique=True,
        sqlite_where=text("state = 'running'"),
        postgresql_where=text("state = 'running'"),
    ),
)

loop_cursors = Table(
    "loop_cursors",
    metadata,
    Column("policy", String(256), nullable=False),
    Column("key", String(64), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("policy", "key"),
)

# -- feature store (revision 0011) ----------------------------------------------------------

#: every version of every applied entity, feature view and feature service; ``def_id`` grows with each
feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column("def_id", AutoId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("spec_json", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_feature_definitions_kind_name_version", "kind", "name", "version", unique=True),
)

# -- scale out (issue 14) ----------------------------------------------------------------------------

#: one row per running prediction service (a ``loopml serve`` worker), refreshed by its heartbeat
serving_replicas = Table(
    "serving_replicas",
    metadata,
    Column("replica_id", String(64), primary_key=True),
    Column("address", String(256), nullable=False),
    Column("hostname", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("serving_json", Text, nullable=False),
    Index("ix_serving_replicas_last_seen", "last_seen"),
)

#: named leases with an expiry (the loop agent's leadership); ``epoch`` grows with each new holder
leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
