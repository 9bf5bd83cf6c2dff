"""Who did it: the actor recorded on every audited decision, and reading the log back."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from loopml.config import default_actor
from loopml.entities.audit import AuditEvent
from loopml.timestamps import to_ms

__all__ = ["audit_log", "default_actor", "to_ms"]

if TYPE_CHECKING:
    import pandas as pd

    from loopml.store import Store


def audit_log(
    store: Store,
    *,
    action: str | None = None,
    target: str | None = None,
    target_type: str | None = None,
    actor: str | None = None,
    since: datetime | int | float | str | None = None,
    until: datetime | int | float | str | None = None,
    max_results: int = 1000,
    as_frame: bool = False,
) -> list[AuditEvent] | pd.DataFrame:
    """Audit events, oldest first; ``target="churn"`` also finds ``churn/3`` and ``action="alias.*"`` all alias events."""
    events = store.audit.list_events(
        action=action,
        target_type=target_type,
        target=target,
        actor=actor,
        since=to_ms(since),
        until=to_ms(until),
        max_results=max_results,
    )
    if not as_frame:
        return events
    import pandas as pd

    frame = pd.DataFrame(
        [
            {
                "event_id": e.event_id,
                "time": e.time,
                "actor": e.actor,
                "action": e.action,
                "target_type": e.target_type,
                "target": e.target,
                "before": e.before,
                "after": e.after,
                "reason": e.reason,
                "evidence": e.evidence,
            }
            for e in events
        ],
        columns=["event_id", "time", "actor", "action", "target_type", "target", "before", "after", "reason", "evidence"],
    )
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame
