"""Module-level registry one-liners (``loopml.register_model``) over the default client."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.entities.audit import AuditEvent
from loopml.entities.registry import ModelVersion, RegisteredModel, Stage, TransitionRequest
from loopml.registry.client import RegistryClient
from loopml.registry.lineage import LineageNode

if TYPE_CHECKING:
    import pandas as pd


def get_registry_client() -> RegistryClient:
    """A RegistryClient over the process-wide tracking client (follows the LOOPML_* settings)."""
    from loopml.tracking.fluent import get_tracking_client

    return RegistryClient(get_tracking_client())


def create_registered_model(
    name: str,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    require_approval: bool = False,
    actor: str | None = None,
) -> RegisteredModel:
    return get_registry_client().create_registered_model(
        name, description=description, tags=tags, require_approval=require_approval, actor=actor
    )


def register_model(
    uri: str,
    name: str,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    require_approval: bool | None = None,
    actor: str | None = None,
    holdout: pd.DataFrame | None = None,
    target: str | None = None,
    y: Any = None,
    explain_options: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Register ``runs:/<run_id>/<model path>`` as the next version of ``name``.

    With ``holdout`` (and the labels' column ``target``, or ``y``) the version is explained on it and
    the explanation stored as its evidence ``"explanations"`` (see ``RegistryClient.register_model``).
    """
    return get_registry_client().register_model(
        uri,
        name,
        description,
        tags,
        require_approval=require_approval,
        actor=actor,
        holdout=holdout,
        target=target,
        y=y,
        explain_options=explain_options,
    )


def get_registered_model(name: str) -> RegisteredModel:
    return get_registry_client().get_registered_model(name)


def get_model_version(name: str, version_or_alias: int | str) -> ModelVersion:
    return get_registry_client().get_model_version(name, version_or_alias)


def search_model_versions(
    name: str, filter: str | None = None, *, stage: Stage | str | None = None
) -> list[ModelVersion]:
    return get_registry_client().search_model_versions(name, filter, stage=stage)


def search_models(filter: str | None = None, max_results: int = 1000) -> list[RegisteredModel]:
    return get_registry_client().search_models(filter, max_results)


def set_alias(
    name: str, alias: str, version: int, *, reason: str | None = None, actor: str | None = None
) -> ModelVersion:
    return get_registry_client().set_alias(name, alias, version, reason=reason, actor=actor)


def delete_alias(name: str, alias: str, *, reason: str | None = None, actor: str | None = None) -> None:
    get_registry_client().delete_alias(name, alias, reason=reason, actor=actor)


def transition(
    name: str,
    version: int,
    to: Stage | str,
    *,
    reason: str | None = None,
    actor: str | None = None,
    archive_existing: bool = True,
) -> ModelVersion:
    return get_registry_client().transition(
        name, version, to, reason=reason, actor=actor, archive_existing=archive_existing
    )


def request_transition(
    name: str, version: int, to: Stage | str, *, comment: str | None = None, actor: str | None = None
) -> TransitionRequest:
    return get_registry_client().request_transition(name, version, to, comment=comment, actor=actor)


def approve(request_id: int, *, comment: str | None = None, actor: str | None = None) -> TransitionRequest:
    return get_registry_client().approve(request_id, comment=comment, actor=actor)


def reject(request_id: int, *, comment: str | None = None, actor: str | None = None) -> TransitionRequest:
    return get_registry_client().reject(request_id, comment=comment, actor=actor)


def set_evidence(name: str, version: int, evidence: Mapping[str, Any], *, actor: str | None = None) -> ModelVersion:
    return get_registry_client().set_evidence(name, version, evidence, actor=actor)


def delete_model_version(name: str, version: int, *, reason: str | None = None, actor: str | None = None) -> None:
    get_registry_client().delete_model_version(name, version, reason=reason, actor=actor)


def load_model(uri: str, *, trusted: list[str] | None = None, unsafe_pickle: bool = False) -> Any:
    """Load ``runs:/<id>/<path>``, ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

    Every file is checked against the manifest's sha256 first. scikit-learn
    models are rebuilt by skops: types it does not trust must be listed in
    ``trusted`` (decision trees excepted: they are bounds-checked instead);
    pickled models need ``unsafe_pickle=True``.
    """
    return get_registry_client().load_model(uri, trusted=trusted, unsafe_pickle=unsafe_pickle)


def get_lineage(uri: str | None = None, *, dataset: str | None = None) -> LineageNode:
    from loopml.registry.lineage import lineage as build

    return build(get_registry_client(), uri, dataset=dataset)


def search_audit_events(
    filter: str | None = None,
    *,
    since: datetime | int | str | None = None,
    until: datetime | int | str | None = None,
    action: str | None = None,
    target: str | None = None,
    actor: str | None = None,
    max_results: int = 1000,
    as_frame: bool = False,
) -> list[AuditEvent] | pd.DataFrame:
    """Audit events, oldest first. ``filter`` is a target (``churn``, ``churn/3``, ``churn@champion``)."""
    from loopml.auth.audit import audit_log as read

    return read(
        get_registry_client().tracking.store,
        action=action,
        target=target or filter,
        actor=actor,
        since=since,
        until=until,
        max_results=max_results,
        as_frame=as_frame,
    )
