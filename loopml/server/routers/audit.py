"""The append-only audit log: append one event, list events by condition."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from loopml.auth.guard import actor_for
from loopml.server.deps import IntQuery, StoreDep
from loopml.server.schemas.audit import AuditEventOut, LogEventIn

router = APIRouter(tags=["audit"])


@router.post("/audit/events", status_code=status.HTTP_201_CREATED)
def log_event(body: LogEventIn, store: StoreDep, request: Request) -> AuditEventOut:
    fields = body.model_dump()
    fields["actor"] = actor_for(request, body.actor)
    return AuditEventOut.model_validate(store.audit.log_event(**fields))


@router.get("/audit/events")
def list_events(
    store: StoreDep,
    action: str | None = None,
    target_type: str | None = None,
    target: str | None = None,
    actor: str | None = None,
    since: IntQuery | None = None,
    until: IntQuery | None = None,
    max_results: int = 1000,
) -> list[AuditEventOut]:
    events = store.audit.list_events(
        action=action,
        target_type=target_type,
        target=target,
        actor=actor,
        since=since,
        until=until,
        max_results=max_results,
    )
    return [AuditEventOut.model_validate(e) for e in events]
