"""Request and response bodies of the feature-definition routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from loopml.server.schemas.common import Int64, JsonObject, Schema


class FeatureDefinitionIn(Schema):
    kind: Literal["entity", "view", "service"]
    name: str = Field(max_length=128)
    spec: JsonObject
    evidence: JsonObject | None = None


class ApplyFeaturesIn(Schema):
    definitions: list[FeatureDefinitionIn] = Field(max_length=1000)
    actor: str


class FeatureDefinitionOut(Schema):
    kind: str
    name: str
    version: Int64
    fingerprint: str
    spec: JsonObject
    created_at: Int64
    created_by: str
    changed: bool


class FeatureVersionOut(Schema):
    version: Int64
