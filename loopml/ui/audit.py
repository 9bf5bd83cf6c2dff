"""The audit log page: every recorded decision, newest first, filtered by target, actor, action and time.

The filters are query parameters, so a filtered view is a URL to share. Pages
are keyset pages (``before`` is the id of the last event shown), so a page
costs one indexed query however deep it is. Token events are shown to admins
only, by the rule the API applies (``loopml.auth.guard.visible_events``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from loopml.auth.guard import principal, visible_events
from loopml.errors import InvalidValueError
from loopml.store import Store
from loopml.ui import table
from loopml.ui.errors import PageRoute
from loopml.ui.render import page

router = APIRouter(route_class=PageRoute)
#: Most events on one page; the next page is a link away.
MAX_PAGE_SIZE = 500


def _ms(value: str, what: str) -> int | None:
    """``2026-11-23T09:00`` (UTC unless it says otherwise) as ms since the epoch; empty is None."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidValueError(f"{what}: {value!r} is not a date or time (e.g. 2026-11-23T09:00, in UTC).") from exc
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


@router.get("/audit", include_in_schema=False)
def audit_page(
    request: Request,
    target: str = "",
    actor: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Response:
    store: Store = request.app.state.store
    token = principal(request)
    error: str | None = None
    events = []
    hidden = 0
    next_before: int | None = None
    try:
        raw = store.audit.list_events(
            action=action.strip() or None,
            target=target.strip() or None,
            actor=actor.strip() or None,
            since=_ms(since, "from"),
            until=_ms(until, "to"),
            max_results=size + 1,
            newest_first=True,
            before_id=before,
        )
        shown = raw[:size]
        if len(raw) > size:
            next_before = shown[-1].event_id
        events = visible_events(token, shown)
        hidden = len(shown) - len(events)
    except InvalidValueError as exc:
        error = str(exc)
    query = {"target": target, "actor": actor, "action": action, "since": since, "until": until,
             "size": "" if size == 50 else str(size)}  # fmt: skip
    path = request.url.path
    return page(
        request,
        "audit.html",
        title="Audit log · loopml",
        events=events,
        error=error,
        filters=query,
        hidden=hidden,
        next_url=None if next_before is None else table.url_with(path, query, before=str(next_before)),
        first_url=table.url_with(path, query) if before is not None else None,
        format_time=table.format_time,
    )
