"""The append-only audit log in SQL; registry writes call ``append_event`` in their own transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from loopml.entities.audit import AuditEvent
from loopml.errors import InvalidValueError
from loopml.store.audit import AuditLog
from loopml.store.sql import tables as t
from loopml.store.sql.engine import read_transaction
from loopml.store.sql.search import like_prefix
from loopml.timestamps import now_ms


def _dump(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def _load(text: str | None) -> Mapping[str, Any] | None:
    return None if text is None else json.loads(text)


def append_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target_type: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Insert one event on ``conn`` (inside the caller's transaction)."""
    now = now_ms()
    result = conn.execute(
        t.audit_events.insert()
        .values(
            time=now,
            actor=actor,
            action=action,
            target_type=target_type,
            target=target,
            before_json=_dump(before),
            after_json=_dump(after),
            reason=reason,
            evidence_json=_dump(evidence),
        )
        .returning(t.audit_events.c.event_id)
    )
    event_id = int(result.scalar_one())
    return AuditEvent(event_id, now, actor, action, target_type, target, before, after, reason, evidence)


class SqlAuditLog(AuditLog):
    """Audit events in the metadata database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_events(
        self,
        *,
        action: str | None = None,
        target_type: str | None = None,
        target: str | None = None,
        actor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        max_results: int = 1000,
        newest_first: bool = False,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        if not isinstance(max_results, int) or not 1 <= max_results <= 100_000:
            raise InvalidValueError(f"max_results must be an integer from 1 to 100000, got {max_results!r}.")
        c = t.audit_events.c
        query = select(t.audit_events).order_by(c.event_id.desc() if newest_first else c.event_id).limit(max_results)
        if before_id is not None:
            query = query.where(c.event_id < before_id)
        if action:
            query = query.where(
                c.action.like(like_prefix(action[:-1]), escape="\\") if action.endswith("*") else c.action == action
            )
        if target_type:
            query = query.where(c.target_type == target_type)
        if target:
            query = query.where(
                or_(
                    c.target == target,
                    c.target.like(like_prefix(target + "/"), escape="\\"),
                    c.target.like(like_prefix(target + "@"), escape="\\"),
                )
            )
        if actor:
            query = query.where(c.actor == actor)
        if since is not None:
            query = query.where(c.time >= since)
        if until is not None:
            query = query.where(c.time < until)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [
            AuditEvent(
                event_id=r.event_id,
                time=r.time,
                actor=r.actor,
                action=r.action,
                target_type=r.target_type,
                target=r.target,
                before=_load(r.before_json),
                after=_load(r.after_json),
                reason=r.reason,
                evidence=_load(r.evidence_json),
            )
            for r in rows
        ]
