"""An audit event: one decision, who made it, when, why, and what changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An immutable record of a mutation (``model.register``, ``alias.set``, ...).

    ``before``/``after`` hold the relevant state on each side of the change
    (None where there was none); ``evidence`` holds what the decision rested on.
    """

    event_id: int
    time: int
    actor: str
    action: str
    target_type: str
    target: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    reason: str | None
    evidence: Mapping[str, Any] | None = None
