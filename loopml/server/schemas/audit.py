"""Request and response bodies of the audit-log routes."""

from __future__ import annotations

from loopml.server.schemas.common import JsonObject, Schema


class AuditEventOut(Schema):
    event_id: int
    time: int
    actor: str
    action: str
    target_type: str
    target: str
    before: JsonObject | None
    after: JsonObject | None
    reason: str | None
    evidence: JsonObject | None

