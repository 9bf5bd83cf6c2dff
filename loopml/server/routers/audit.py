"""The append-only audit log, read-only: events are appended by the store as part of the action they record."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request

from loopml.auth.guard import principal
from loopml.entities.audit import AuditEvent
from loopml.entities.auth import Role
from loopml.server.deps import IntQuery, StoreDep
from loopml.server.schemas.audit import AuditEventOut

router = APIRouter(tags=["audit"])


@router.get("/audit/events")
def list_events(
    store: StoreDep,
    request: Request,
    action: str | None = None,
    target_type: str | None = None,
    target: str | None = None,
    actor: str | None = None,
    since: IntQuery | None = None,
    until: IntQuery | None = None,
    max_results: int = 1000,
) -> list[AuditEventOut]:
    token = principal(request)
    if token is not None and not token.role.allows(Role.ADMIN) and target_type == "token":
        return []
    events = store.audit.list_events(
        action=action,
        target_type=target_type,
        target=target,
        actor=actor,
        since=since,
        until=until,
        max_results=max_results,
    )
    if token is not None and not token.role.allows(Role.ADMIN):
        # token events carry token ids (the first half of every token): admins only, as GET /tokens is
        events = [e for e in events if not _reveals_token_id(e)]
    return [AuditEventOut.model_validate(e) for e in events]


def _reveals_token_id(event: AuditEvent) -> bool:
    """Whether ``event`` is about a token or carries a token id anywhere in its fields."""
    if event.target_type == "token" or event.action.startswith("token."):
        return True
    return any(isinstance(part, Mapping) and "token_id" in part for part in (event.before, event.after, event.evidence))
