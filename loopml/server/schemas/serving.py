"""Request and response bodies of the serving routes: deployments, the prediction log and feedback."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue

from loopml.server.schemas.common import Int64, Schema

#: Version numbers as the database stores them (INTEGER).
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]
RequestId = Annotated[str, Field(min_length=1, max_length=64)]
ModelName = Annotated[str, Field(min_length=1, max_length=256)]
MaxResults = Annotated[int, Field(ge=1, le=1_000_000)]


class DeploymentOut(Schema):
    deployment_id: int
    name: str
    target: str
    version: int | None
    canary_version: int | None
    canary_percent: float | None
    shadow_version: int | None
    action: str
    created_at: int
    created_by: str
    reason: str | None
    previous_id: int | None


class CreateDeploymentIn(Schema):
    name: ModelName
    target: Annotated[str, Field(min_length=1, max_length=128)]
    canary_version: Version | None = None
    canary_percent: float | None = None  # checked by the store, as on every backend
    shadow_version: Version | None = None
    actor: str
    reason: str | None = None


class RollbackIn(Schema):
    actor: str
    reason: str | None = None


class CurrentDeploymentsIn(Schema):
    names: list[ModelName] | None = None


class AliasRef(Schema):
    name: ModelName
    alias: Annotated[str, Field(min_length=1, max_length=128)]


class ResolveAliasesIn(Schema):
    refs: list[AliasRef]


class ResolvedAliasOut(Schema):
    name: str
    alias: str
    version: int


class PredictionRecordJson(Schema):
    request_id: RequestId
    time: Int64
    model: ModelName
    version: Version
    role: Literal["main", "canary", "shadow"]
    inputs: str
    outputs: str
    latency_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    status: Annotated[int, Field(ge=100, le=599)]


class LogPredictionsIn(Schema):
    records: list[PredictionRecordJson]


class FeedbackJson(Schema):
    request_id: RequestId
    label: JsonValue
    time: Int64


class LogFeedbackIn(Schema):
    items: list[FeedbackJson]


class SearchFeedbackIn(Schema):
    model: ModelName | None = None
    request_ids: list[RequestId] | None = None
    since: Int64 | None = None
    until: Int64 | None = None
    max_results: MaxResults = 100_000


# -- the log at scale: policies, erasure, retention (revision 0013) --------------------------------
class LogPolicyJson(Schema):
    redact: dict[Annotated[str, Field(min_length=1, max_length=256)], str] = Field(default_factory=dict)
    entity_key: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class SetLogPolicyIn(LogPolicyJson):
    actor: str
    reason: str | None = None


class ErasePredictionsIn(Schema):
    key: Annotated[str, Field(min_length=1, max_length=256)]
    model: ModelName | None = None
    actor: str
    reason: str | None = None


class PrunePredictionsIn(Schema):
    older_than_ms: Annotated[int, Field(ge=1, le=2**63 - 1)]
    actor: str


class CountsOut(Schema):
    counts: dict[str, int]
