"""Registered models, their versions, aliases, lifecycle stages and approval requests."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class Stage(enum.StrEnum):
    """Lifecycle of a model version: candidate -> staging -> production -> archived."""

    CANDIDATE = "candidate"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"


#: The file of a model package that lists every other file with its sha256.
MANIFEST_FILE = "loopml-model.json"
#: The alias that promotes: the version it names is the one in production (the stage is derived from it).
PRODUCTION_ALIAS = "champion"


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model; its versions are numbered 1, 2, 3, ... in registration order."""

    name: str
    description: str | None
    require_approval: bool
    created_at: int
    updated_at: int
    latest_version: int
    tags: Mapping[str, str] = field(default_factory=_empty)
    aliases: Mapping[str, int] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version: where its files are (``source``) and which run made it."""

    name: str
    version: int
    run_id: str
    source: str  # runs:/<run_id>/<artifact path>
    stage: Stage
    description: str | None
    created_at: int
    updated_at: int
    created_by: str
    tags: Mapping[str, str] = field(default_factory=_empty)
    aliases: tuple[str, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=_empty)
    #: sha256 of the package manifest at registration; loading refuses files that no longer match it
    manifest_digest: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def artifact_path(self) -> str:
        return self.source.split("/", 2)[2] if self.source.startswith("runs:/") else ""


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    """A request to move a version to a stage, and the decision on it."""

    request_id: int
    name: str
    version: int
    to_stage: Stage
    status: RequestStatus
    requested_by: str
    requested_at: int
    comment: str | None
    decided_by: str | None = None
    decided_at: int | None = None
    decision_comment: str | None = None
