"""Deployments (editors deploy and roll back), the prediction log and feedback: one route per ServingStore method.

A prediction service writes its log here when its store is a loopml
server, so ``POST /predictions`` and ``POST /feedback`` need ``editor``;
reading either needs ``viewer``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from loopml.auth.guard import actor_for, needs
from loopml.entities.auth import Role
from loopml.entities.serving import Feedback, PredictionRecord
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import IntQuery, NoContent, StoreDep
from loopml.server.schemas.serving import (
    CountsOut,
    CreateDeploymentIn,
    CurrentDeploymentsIn,
    DeploymentOut,
    ErasePredictionsIn,
    FeedbackJson,
    LogFeedbackIn,
    LogPolicyJson,
    LogPredictionsIn,
    PredictionRecordJson,
    PrunePredictionsIn,
    ResolveAliasesIn,
    ResolvedAliasOut,
    RollbackIn,
    SearchFeedbackIn,
    SetLogPolicyIn,
)

# the role is checked before FastAPI reads the body (a viewer's malformed erasure is a 403, not a 422)
router = APIRouter(tags=["serving"], route_class=AuthorizedRoute)
MaxResultsQuery = Annotated[int, Query(ge=1, le=1_000_000)]
VersionQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
NO_CONTENT: NoContent = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


# -- deployments ---------------------------------------------------------------------------------
@router.post("/deployments", status_code=status.HTTP_201_CREATED)
@needs(Role.EDITOR)
def create_deployment(body: CreateDeploymentIn, store: StoreDep, request: Request) -> DeploymentOut:
    created = store.serving.create_deployment(
        body.name,
        target=body.target,
        canary_version=body.canary_version,
        canary_percent=body.canary_percent,
        shadow_version=body.shadow_version,
        actor=actor_for(request, body.actor) or body.actor,
        reason=body.reason,
    )
    return DeploymentOut.model_validate(created)


@router.post("/deployments/{name}/rollback")
@needs(Role.EDITOR)
def rollback_deployment(name: str, body: RollbackIn, store: StoreDep, request: Request) -> DeploymentOut:
    restored = store.serving.rollback_deployment(
        name, actor=actor_for(request, body.actor) or body.actor, reason=body.reason
    )
    return DeploymentOut.model_validate(restored)


@router.get("/deployments/{name}/current")
def current_deployment(name: str, store: StoreDep) -> DeploymentOut:
    return DeploymentOut.model_validate(store.serving.current_deployment(name))


@router.post("/deployments/current")
@needs(Role.VIEWER)
def current_deployments(body: CurrentDeploymentsIn, store: StoreDep) -> list[DeploymentOut]:
    return [DeploymentOut.model_validate(d) for d in store.serving.current_deployments(body.names)]


@router.get("/deployments")
def list_deployments(
    store: StoreDep, name: str | None = None, max_results: MaxResultsQuery = 1000
) -> list[DeploymentOut]:
    return [DeploymentOut.model_validate(d) for d in store.serving.list_deployments(name, max_results=max_results)]


@router.post("/deployments/resolve-aliases")
@needs(Role.VIEWER)
def resolve_aliases(body: ResolveAliasesIn, store: StoreDep) -> list[ResolvedAliasOut]:
    found = store.serving.resolve_aliases([(ref.name, ref.alias) for ref in body.refs])
    return [ResolvedAliasOut(name=name, alias=alias, version=version) for (name, alias), version in found.items()]


# -- prediction log and feedback -------------------------------------------------------------------
@router.post("/predictions", **NO_CONTENT)
@needs(Role.EDITOR)
def log_predictions(body: LogPredictionsIn, store: StoreDep) -> None:
    store.serving.log_predictions([PredictionRecord(**r.model_dump()) for r in body.records])


@router.get("/predictions")
def read_predictions(
    store: StoreDep,
    model: Annotated[str, Query(min_length=1, max_length=256)],
    since: IntQuery | None = None,
    until: IntQuery | None = None,
    version: VersionQuery = None,
    role: Literal["main", "canary", "shadow"] | None = None,
    max_results: MaxResultsQuery = 100_000,
) -> list[PredictionRecordJson]:
    records = store.serving.read_predictions(
        model, since=since, until=until, version=version, role=role, max_results=max_results
    )
    return [PredictionRecordJson.model_validate(r) for r in records]


@router.post("/feedback", **NO_CONTENT)
@needs(Role.EDITOR)
def log_feedback(body: LogFeedbackIn, store: StoreDep) -> None:
    store.serving.log_feedback([Feedback(i.request_id, i.label, i.time) for i in body.items])


@router.post("/feedback/search")
@needs(Role.VIEWER)
def read_feedback(body: SearchFeedbackIn, store: StoreDep) -> list[FeedbackJson]:
    found = store.serving.read_feedback(
        name=body.model, request_ids=body.request_ids, since=body.since, until=body.until, max_results=body.max_results
    )
    return [FeedbackJson(request_id=f.request_id, label=f.label, time=f.time) for f in found]


# -- the log at scale: policies (admin: they decide what personal data is kept), erasure, retention ------------
@router.get("/predictions/policies/{name}")
def get_log_policy(name: str, store: StoreDep) -> LogPolicyJson:
    policy = store.serving.get_log_policy(name)
    return LogPolicyJson(redact=dict(policy.redact), entity_key=policy.entity_key)


@router.put("/predictions/policies/{name}")
@needs(Role.ADMIN)
def set_log_policy(name: str, body: SetLogPolicyIn, store: StoreDep, request: Request) -> LogPolicyJson:
    policy = store.serving.set_log_policy(
        name,
        redact=body.redact,
        entity_key=body.entity_key,
        actor=actor_for(request, body.actor),
        reason=body.reason,
    )
    return LogPolicyJson(redact=dict(policy.redact), entity_key=policy.entity_key)


@router.post("/predictions/erase")
@needs(Role.ADMIN)
def erase_predictions(body: ErasePredictionsIn, store: StoreDep, request: Request) -> CountsOut:
    counts = store.serving.erase_predictions(
        body.key, name=body.model, actor=actor_for(request, body.actor), reason=body.reason
    )
    return CountsOut(counts=counts)


@router.post("/predictions/prune")
@needs(Role.ADMIN)
def prune_predictions(body: PrunePredictionsIn, store: StoreDep, request: Request) -> CountsOut:
    return CountsOut(counts=store.serving.prune_predictions(body.older_than_ms, actor=actor_for(request, body.actor)))
