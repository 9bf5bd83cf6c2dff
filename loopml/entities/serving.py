"""Deployments of registered models, the prediction log and delayed ground truth (feedback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The roles a logged prediction can have: the deployment's version, its canary, or its shadow.
ROLES = ("main", "canary", "shadow")


@dataclass(frozen=True, slots=True)
class Deployment:
    """Which version of a registered model a prediction service answers with, and how traffic is split.

    ``target`` is what the deployment was given: a version number (``"7"``)
    or an alias (``"champion"``), which a server follows when it moves.
    ``version`` is the version ``target`` names at the time the record was
    read (None when the alias has since been deleted). With a canary,
    ``canary_percent`` percent of requests go to ``canary_version``; a
    shadow version sees a copy of every request and its answers are only
    logged. ``previous_id`` is the deployment this one replaced, which a
    rollback returns to.
    """

    deployment_id: int
    name: str
    target: str
    version: int | None
    canary_version: int | None
    canary_percent: float | None
    shadow_version: int | None
    action: str  # "deploy" or "rollback"
    created_at: int
    created_by: str
    reason: str | None = None
    previous_id: int | None = None

    @property
    def alias(self) -> str | None:
        """The alias the deployment follows, or None when it names a version number."""
        return None if self.target.isdigit() else self.target


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One answer of a prediction service, as logged.

    ``inputs`` is the request body as received and ``outputs`` the JSON of
    the predictions (or of the error), both as JSON text: the service never
    re-encodes them on the request path. A shadow prediction shares the
    ``request_id`` of the request it copied, with ``role="shadow"``.
    ``time`` is in milliseconds since the epoch; ``status`` is the HTTP
    status the request got (the shadow's own outcome for shadow rows).
    """

    request_id: str
    time: int
    model: str
    version: int
    role: str
    inputs: str
    outputs: str
    latency_ms: float
    status: int


@dataclass(frozen=True, slots=True)
class Feedback:
    """The ground truth for an earlier prediction, sent after the fact: ``label`` is any JSON value."""

    request_id: str
    label: Any
    time: int
