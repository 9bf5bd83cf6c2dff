"""Registered models, versions, aliases, stages and approvals: one route per RegistryStore method.

Model names and aliases are path segments: the registry refuses names with
``/`` or ``@``, so they never need more than percent-encoding.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from loopml.auth.guard import actor_for, ensure_role, needs
from loopml.entities.auth import Role
from loopml.entities.registry import RequestStatus, Stage
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import IntPath, IntQuery, NoContent, StoreDep
from loopml.server.schemas.registry import (
    CreateModelIn,
    CreateRequestIn,
    CreateVersionIn,
    DecideRequestIn,
    ListVersionsIn,
    ModelVersionOut,
    RegisteredModelOut,
    SearchModelsIn,
    SetAliasIn,
    SetEvidenceIn,
    TransitionIn,
    TransitionRequestOut,
    VersionsOfRunsIn,
)
from loopml.server.schemas.search import to_filter

router = APIRouter(tags=["registry"], route_class=AuthorizedRoute)
NO_CONTENT: NoContent = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


# -- models --------------------------------------------------------------------------------------
@router.post("/models", status_code=status.HTTP_201_CREATED)
def create_model(body: CreateModelIn, store: StoreDep, request: Request) -> RegisteredModelOut:
    model = store.registry.create_model(
        body.name,
        description=body.description,
        tags=body.tags,
        require_approval=body.require_approval,
        actor=actor_for(request, body.actor),
    )
    return RegisteredModelOut.model_validate(model)


@router.post("/models/search")
@needs(Role.VIEWER)
def search_models(body: SearchModelsIn, store: StoreDep) -> list[RegisteredModelOut]:
    return [
        RegisteredModelOut.model_validate(m)
        for m in store.registry.search_models(to_filter(body.filter), body.max_results)
    ]


@router.get("/models/{name}")
def get_model(name: str, store: StoreDep) -> RegisteredModelOut:
    return RegisteredModelOut.model_validate(store.registry.get_model(name))


# -- versions --------------------------------------------------------------------------------------
@router.post("/models/{name}/versions", status_code=status.HTTP_201_CREATED)
def create_version(name: str, body: CreateVersionIn, store: StoreDep, request: Request) -> ModelVersionOut:
    version = store.registry.create_version(
        name,
        run_id=body.run_id,
        source=body.source,
        description=body.description,
        tags=body.tags,
        actor=actor_for(request, body.actor),
    )
    return ModelVersionOut.model_validate(version)


@router.post("/models/{name}/versions/search")
@needs(Role.VIEWER)
def list_versions(name: str, body: ListVersionsIn, store: StoreDep) -> list[ModelVersionOut]:
    versions = store.registry.list_versions(name, stage=body.stage, filter=to_filter(body.filter))
    return [ModelVersionOut.model_validate(v) for v in versions]


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: IntPath, store: StoreDep) -> ModelVersionOut:
    return ModelVersionOut.model_validate(store.registry.get_version(name, version))


@router.delete("/models/{name}/versions/{version}", **NO_CONTENT)
def delete_version(
    name: str, version: IntPath, actor: str, store: StoreDep, request: Request, reason: str | None = None
) -> None:
    store.registry.delete_version(name, version, actor=actor_for(request, actor), reason=reason)


@router.put("/models/{name}/versions/{version}/evidence")
def set_evidence(name: str, version: IntPath, body: SetEvidenceIn, store: StoreDep, request: Request) -> ModelVersionOut:
    updated = store.registry.set_evidence(name, version, body.evidence, actor=actor_for(request, body.actor))
    return ModelVersionOut.model_validate(updated)


@router.post("/versions/by-runs")
@needs(Role.VIEWER)
def versions_of_runs(body: VersionsOfRunsIn, store: StoreDep) -> list[ModelVersionOut]:
    return [ModelVersionOut.model_validate(v) for v in store.registry.versions_of_runs(body.run_ids)]


# -- aliases -----------------------------------------------------------------------------------------
@router.get("/models/{name}/aliases/{alias}")
def get_version_by_alias(name: str, alias: str, store: StoreDep) -> ModelVersionOut:
    return ModelVersionOut.model_validate(store.registry.get_version_by_alias(name, alias))


@router.put("/models/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: SetAliasIn, store: StoreDep, request: Request) -> ModelVersionOut:
    version = store.registry.set_alias(name, alias, body.version, actor=actor_for(request, body.actor), reason=body.reason)
    return ModelVersionOut.model_validate(version)


@router.delete("/models/{name}/aliases/{alias}", **NO_CONTENT)
def delete_alias(
    name: str, alias: str, actor: str, store: StoreDep, request: Request, reason: str | None = None
) -> None:
    store.registry.delete_alias(name, alias, actor=actor_for(request, actor), reason=reason)


# -- lifecycle and approvals ------------------------------------------------------------------------------
@router.post("/models/{name}/versions/{version}/transition")
def transition(name: str, version: IntPath, body: TransitionIn, store: StoreDep, request: Request) -> ModelVersionOut:
    if body.to_stage is Stage.PRODUCTION:
        ensure_role(request, Role.ADMIN, "a transition to production")
    moved = store.registry.transition(
        name,
        version,
        body.to_stage,
        actor=actor_for(request, body.actor),
        reason=body.reason,
        archive_existing=body.archive_existing,
        request_id=body.request_id,
    )
    return ModelVersionOut.model_validate(moved)


@router.post("/models/{name}/versions/{version}/requests", status_code=status.HTTP_201_CREATED)
def create_request(
    name: str, version: IntPath, body: CreateRequestIn, store: StoreDep, request: Request
) -> TransitionRequestOut:
    created = store.registry.create_request(
        name, version, body.to_stage, actor=actor_for(request, body.actor), comment=body.comment
    )
    return TransitionRequestOut.model_validate(created)


@router.get("/models/{name}/requests")
def list_requests(
    name: str, store: StoreDep, version: IntQuery | None = None, status: RequestStatus | None = None
) -> list[TransitionRequestOut]:
    requests = store.registry.list_requests(name, version=version, status=status)
    return [TransitionRequestOut.model_validate(r) for r in requests]


@router.post("/requests/{request_id}/decision")
@needs(Role.ADMIN)
def decide_request(
    request_id: IntPath, body: DecideRequestIn, store: StoreDep, request: Request
) -> TransitionRequestOut:
    decided = store.registry.decide_request(
        request_id, approve=body.approve, actor=actor_for(request, body.actor), comment=body.comment
    )
    return TransitionRequestOut.model_validate(decided)
