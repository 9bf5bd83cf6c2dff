"""loopml: track, register, validate, serve and monitor models, in one closed loop.

Every public name is re-exported here and imported on first use, so that
``import loopml`` stays cheap (no SQLAlchemy, pandas or scikit-learn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # tracking
    "ActiveRun": "loopml.tracking.runs",
    "TrackingClient": "loopml.tracking.client",
    "active_run": "loopml.tracking.fluent",
    "download_artifacts": "loopml.tracking.fluent",
    "flush": "loopml.tracking.fluent",
    "get_tracking_client": "loopml.tracking.fluent",
    "get_dataset": "loopml.tracking.fluent",
    "get_metric_history": "loopml.tracking.fluent",
    "get_run": "loopml.tracking.fluent",
    "list_experiments": "loopml.tracking.fluent",
    "load_dataset": "loopml.tracking.fluent",
    "log_artifact": "loopml.tracking.fluent",
    "log_dataset": "loopml.tracking.fluent",
    "log_dict": "loopml.tracking.fluent",
    "log_figure": "loopml.tracking.fluent",
    "log_metric": "loopml.tracking.fluent",
    "log_metrics": "loopml.tracking.fluent",
    "log_param": "loopml.tracking.fluent",
    "log_params": "loopml.tracking.fluent",
    "log_text": "loopml.tracking.fluent",
    "search_runs": "loopml.tracking.fluent",
    "batch_predict": "loopml.batch.predict",
    "set_experiment": "loopml.tracking.fluent",
    "set_tag": "loopml.tracking.fluent",
    "set_tags": "loopml.tracking.fluent",
    "set_tracking_uri": "loopml.tracking.fluent",
    "start_run": "loopml.tracking.fluent",
    # registry
    "approve": "loopml.registry.fluent",
    "search_audit_events": "loopml.registry.fluent",
    "create_registered_model": "loopml.registry.fluent",
    "delete_alias": "loopml.registry.fluent",
    "delete_model_version": "loopml.registry.fluent",
    "get_model_version": "loopml.registry.fluent",
    "get_registered_model": "loopml.registry.fluent",
    "get_lineage": "loopml.registry.fluent",
    "search_model_versions": "loopml.registry.fluent",
    "load_model": "loopml.registry.fluent",
    "register_model": "loopml.registry.fluent",
    "reject": "loopml.registry.fluent",
    "request_transition": "loopml.registry.fluent",
    "search_models": "loopml.registry.fluent",
    "set_alias": "loopml.registry.fluent",
    "set_evidence": "loopml.registry.fluent",
    "transition": "loopml.registry.fluent",
    "get_registry_client": "loopml.registry.fluent",
    "RegistryClient": "loopml.registry.client",
    "ModelVersion": "loopml.entities.registry",
    "RegisteredModel": "loopml.entities.registry",
    "Stage": "loopml.entities.registry",
    # entities
    "Dataset": "loopml.entities.datasets",
    "Experiment": "loopml.entities.tracking",
    "Metric": "loopml.entities.tracking",
    "Run": "loopml.entities.tracking",
    "RunStatus": "loopml.entities.tracking",
    # monitoring
    "MonitorRunResult": "loopml.monitoring.monitors",
    "DriftReport": "loopml.monitoring.drift",
    "QualityReport": "loopml.monitoring.quality",
    "run_monitor": "loopml.monitoring.monitors",
    "drift": "loopml.monitoring.drift",
    "list_monitors": "loopml.monitoring.monitors",
    "monitor": "loopml.monitoring.monitors",
    "write_monitor_report": "loopml.monitoring.results",
    "search_monitor_results": "loopml.monitoring.results",
    "quality": "loopml.monitoring.quality",
    "webhook": "loopml.monitoring.actions",
    # pipelines and validation
    "DataContract": "loopml.validation.contracts",
    "validate_model": "loopml.validation.gates",
    "compare_models": "loopml.validation.gates",
    "validate_data": "loopml.validation.checks",
    # responsible ML
    "explain_model": "loopml.explain.importance",
    "metric": "loopml.explain.metrics",
    "pipeline": "loopml.pipelines.dag",
    "step": "loopml.pipelines.steps",
    # continuous training
    "policy": "loopml.loop.policy",
    "reproduce": "loopml.pipelines.reproduce",
    # serving
    "Deployment": "loopml.entities.serving",
    "ServingClient": "loopml.serving.client",
    "deploy": "loopml.serving.fluent",
    "get_deployment": "loopml.serving.fluent",
    "get_serving_client": "loopml.serving.fluent",
    "list_deployments": "loopml.serving.fluent",
    "search_predictions": "loopml.serving.fluent",
    "rollback": "loopml.serving.fluent",
    "send_feedback": "loopml.serving.fluent",
    "erase_predictions": "loopml.serving.privacy",
    "get_redaction": "loopml.serving.privacy",
    "prune_predictions": "loopml.serving.privacy",
    "set_redaction": "loopml.serving.privacy",
    # features (offline: definitions, apply, point-in-time joins)
    "Entity": "loopml.features.definitions",
    "FeatureView": "loopml.features.definitions",
    "FeatureService": "loopml.features.definitions",
    "FileSource": "loopml.features.sources",
    "DataFrameSource": "loopml.features.sources",
    "SqlSource": "loopml.features.sources",
    "apply_features": "loopml.features.apply",
    "get_historical_features": "loopml.features.offline",
    # features (online: materialization, push, online reads)
    "materialize": "loopml.features.materialize",
    "materialize_incremental": "loopml.features.materialize",
    "push": "loopml.features.push",
    "get_online_features": "loopml.features.online_features",
    # store
    "Store": "loopml.store",
    "open_store": "loopml.store",
    # errors
    "LoopMLError": "loopml.errors",
}

__all__ = [
    "ActiveRun",
    "DataContract",
    "DataFrameSource",
    "Dataset",
    "Deployment",
    "DriftReport",
    "Entity",
    "Experiment",
    "FeatureService",
    "FeatureView",
    "FileSource",
    "LoopMLError",
    "Metric",
    "ModelVersion",
    "MonitorRunResult",
    "QualityReport",
    "RegisteredModel",
    "RegistryClient",
    "Run",
    "RunStatus",
    "ServingClient",
    "SqlSource",
    "Stage",
    "Store",
    "TrackingClient",
    "__version__",
    "active_run",
    "apply_features",
    "approve",
    "batch_predict",
    "compare_models",
    "create_registered_model",
    "delete_alias",
    "delete_model_version",
    "deploy",
    "download_artifacts",
    "drift",
    "erase_predictions",
    "explain_model",
    "flush",
    "get_dataset",
    "get_deployment",
    "get_historical_features",
    "get_lineage",
    "get_metric_history",
    "get_model_version",
    "get_online_features",
    "get_redaction",
    "get_registered_model",
    "get_registry_client",
    "get_run",
    "get_serving_client",
    "get_tracking_client",
    "list_deployments",
    "list_experiments",
    "list_monitors",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "materialize",
    "materialize_incremental",
    "metric",
    "monitor",
    "open_store",
    "pipeline",
    "policy",
    "prune_predictions",
    "push",
    "quality",
    "register_model",
    "reject",
    "reproduce",
    "request_transition",
    "rollback",
    "run_monitor",
    "search_audit_events",
    "search_model_versions",
    "search_models",
    "search_monitor_results",
    "search_predictions",
    "search_runs",
    "send_feedback",
    "set_alias",
    "set_evidence",
    "set_experiment",
    "set_redaction",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "step",
    "transition",
    "validate_data",
    "validate_model",
    "webhook",
    "write_monitor_report",
]

if TYPE_CHECKING:
    from loopml.batch.predict import batch_predict
    from loopml.entities.datasets import Dataset
    from loopml.entities.registry import ModelVersion, RegisteredModel, Stage
    from loopml.entities.serving import Deployment
    from loopml.entities.tracking import Experiment, Metric, Run, RunStatus
    from loopml.errors import LoopMLError
    from loopml.explain.importance import explain_model
    from loopml.explain.metrics import metric
    from loopml.features.apply import apply_features
    from loopml.features.definitions import Entity, FeatureService, FeatureView
    from loopml.features.materialize import materialize, materialize_incremental
    from loopml.features.offline import get_historical_features
    from loopml.features.online_features import get_online_features
    from loopml.features.push import push
    from loopml.features.sources import DataFrameSource, FileSource, SqlSource
    from loopml.loop.policy import policy
    from loopml.monitoring.actions import webhook
    from loopml.monitoring.drift import DriftReport, drift
    from loopml.monitoring.monitors import MonitorRunResult, list_monitors, monitor, run_monitor
    from loopml.monitoring.quality import QualityReport, quality
    from loopml.monitoring.results import search_monitor_results, write_monitor_report
    from loopml.pipelines.dag import pipeline
    from loopml.pipelines.reproduce import reproduce
    from loopml.pipelines.steps import step
    from loopml.registry.client import RegistryClient
    from loopml.registry.fluent import (
        approve,
        create_registered_model,
        delete_alias,
        delete_model_version,
        get_lineage,
        get_model_version,
        get_registered_model,
        get_registry_client,
        load_model,
        register_model,
        reject,
        request_transition,
        search_audit_events,
        search_model_versions,
        search_models,
        set_alias,
        set_evidence,
        transition,
    )
    from loopml.serving.client import ServingClient
    from loopml.serving.fluent import (
        deploy,
        get_deployment,
        get_serving_client,
        list_deployments,
        rollback,
        search_predictions,
        send_feedback,
    )
    from loopml.serving.privacy import erase_predictions, get_redaction, prune_predictions, set_redaction
    from loopml.store import Store, open_store
    from loopml.tracking.client import TrackingClient
    from loopml.tracking.fluent import (
        active_run,
        download_artifacts,
        flush,
        get_dataset,
        get_metric_history,
        get_run,
        get_tracking_client,
        list_experiments,
        load_dataset,
        log_artifact,
        log_dataset,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from loopml.tracking.runs import ActiveRun
    from loopml.validation.checks import validate_data
    from loopml.validation.contracts import DataContract
    from loopml.validation.gates import compare_models, validate_model


_DEPRECATED: dict[str, str] = {
    "CheckResult": "MonitorRunResult",
    "audit_log": "search_audit_events",
    "check": "run_monitor",
    "check_metrics": "validate_model",
    "expect": "validate_data",
    "get_client": "get_tracking_client",
    "lineage": "get_lineage",
    "list_model_versions": "search_model_versions",
    "monitor_report": "write_monitor_report",
    "monitor_results": "search_monitor_results",
    "predictions": "search_predictions",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, _DEPRECATED)
