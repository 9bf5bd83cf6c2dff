"""The audit log read newest first, a page at a time (``newest_first``, ``before_id``), on every backend."""

from __future__ import annotations

from typing import Any


def test_newest_first_pages_back_in_time(store: Any) -> None:
    for name in ("churn", "fraud", "churnless"):
        store.registry.create_model(name, description=None, tags={}, require_approval=False, actor="alice")
    oldest_first = [e.event_id for e in store.audit.list_events(action="model.*")]
    assert len(oldest_first) == 3 and oldest_first == sorted(oldest_first)
    first = store.audit.list_events(action="model.*", newest_first=True, max_results=2)
    assert [e.event_id for e in first] == oldest_first[::-1][:2]
    rest = store.audit.list_events(action="model.*", newest_first=True, max_results=2, before_id=first[-1].event_id)
    assert [e.event_id for e in rest] == oldest_first[:1]
    # the other filters still apply
    churn = store.audit.list_events(target="churn", newest_first=True)
    assert [e.target for e in churn] == ["churn"]
