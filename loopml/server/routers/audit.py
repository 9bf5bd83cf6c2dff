"""The append-only audit log, read-only: events are appended by the store as part of the action they record."""

from __future__ import annotations

from fastapi import APIRouter, Request

from loopml.auth.guard import principal, sees_token_events, visible_events
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import IntQuery, StoreDep
from loopml.server.schemas.audit import AuditEventOut

router = APIRouter(tags=["audit"], route_class=AuthorizedRoute)


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
    newest_first: bool = False,
    before_id: IntQuery | None = None,
) -> list[AuditEventOut]:
    token = principal(request)
    if not sees_token_events(token) and target_type == "token":
        return []
    events = store.audit.list_events(
        action=action,
        target_type=target_type,
        target=target,
        actor=actor,
        since=since,
        until=until,
        max_results=max_results,
        newest_first=newest_first,
        before_id=before_id,
    )
    # token events carry token ids (the first half of every token): admins only, as GET /tokens is
    return [AuditEventOut.model_validate(e) for e in visible_events(token, events)]
