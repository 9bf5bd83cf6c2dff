"""Request and response bodies of the registry routes: models, versions, aliases, stages, approvals."""

from __future__ import annotations

from loopml.entities.registry import RequestStatus, Stage
from loopml.server.schemas.common import Int64, JsonObject, Schema
from loopml.server.schemas.search import FilterJson


class RegisteredModelOut(Schema):
    name: str
    description: str | None
    require_approval: bool
    created_at: int
    updated_at: int
    latest_version: int
    tags: dict[str, str]
    aliases: dict[str, int]


class ModelVersionOut(Schema):
    name: str
    version: int
    run_id: str
    source: str
    stage: Stage
    description: str | None
    created_at: int
    updated_at: int
    created_by: str
    tags: dict[str, str]
    aliases: list[str]
    evidence: JsonObject
    manifest_digest: str | None = None


class TransitionRequestOut(Schema):
    request_id: int
    name: str
    version: int
    to_stage: Stage
    status: RequestStatus
    requested_by: str
    requested_at: int
    comment: str | None
    decided_by: str | None
    decided_at: int | None
    decision_comment: str | None


# -- requests ------------------------------------------------------------------------------


class CreateModelIn(Schema):
    name: str
    description: str | None = None
    tags: dict[str, str] = {}
    require_approval: bool = False
    actor: str


class SearchModelsIn(Schema):
    filter: FilterJson | None = None
    max_results: int = 1000


class CreateVersionIn(Schema):
    run_id: str
    source: str
    description: str | None = None
    tags: dict[str, str] = {}
    actor: str


class ListVersionsIn(Schema):
    stage: Stage | None = None
    filter: FilterJson | None = None


class VersionsOfRunsIn(Schema):
    run_ids: list[str]


class SetAliasIn(Schema):
    version: Int64
    actor: str
    reason: str | None = None


class TransitionIn(Schema):
    to_stage: Stage
    actor: str
    reason: str | None = None
    archive_existing: bool = True
    request_id: Int64 | None = None


class CreateRequestIn(Schema):
    to_stage: Stage
    actor: str
    comment: str | None = None


class DecideRequestIn(Schema):
    approve: bool
    actor: str
    comment: str | None = None


class SetEvidenceIn(Schema):
    evidence: JsonObject
    actor: str
