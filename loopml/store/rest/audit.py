"""The AuditLog over HTTP: append and list events kept by a loopml server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from loopml.entities.audit import AuditEvent
from loopml.store.audit import AuditLog
from loopml.store.rest import codec
from loopml.store.rest.http import HttpSession


def _as_json(value: Mapping[str, Any] | None) -> Any:
    # Like the SQL log, values JSON cannot hold are recorded as their str().
    return None if value is None else json.loads(json.dumps(value, default=str))


class RestAuditLog(AuditLog):
    """The audit log of a loopml server."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

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
        params: dict[str, Any] = {
            "action": action,
            "target_type": target_type,
            "target": target,
            "actor": actor,
            "since": since,
            "until": until,
            "max_results": max_results,
        }
        if newest_first:  # sent only when used, so a server from before paging still answers the rest
            params["newest_first"] = True
        if before_id is not None:
            params["before_id"] = before_id
        return [codec.audit_event_in(e) for e in self._http.call("GET", "/audit/events", params=params)]
