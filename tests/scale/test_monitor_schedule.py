"""The agent's scheduled monitor checks: what is due is found in a fixed number of queries, checks run concurrently."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from loopml.errors import InvalidValueError
from loopml.loop.schedule import MonitorScheduler
from loopml.tracking.client import TrackingClient

MINUTE = 60_000


def _monitors(store, names, schedule="* * * * *"):
    for name in names:
        store.monitoring.put_monitor(name, "iris", {"schedule": schedule, "checks": ["operations"]}, actor="test")


def _future(store) -> int:
    """A whole minute after every monitor was created, so each schedule has fired once since."""
    newest = max(m.created_at for m in store.monitoring.list_monitors())
    return (newest // MINUTE + 2) * MINUTE


def test_due_monitors_are_found_with_the_same_queries_for_5_or_50_monitors(db_url, tmp_path):
    from loopml.store import open_store

    store = open_store(db_url, artifacts_url=str(tmp_path / "artifacts"))
    try:
        statements: list[str] = []
        engine = store.monitoring._engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2].lstrip()[:6].upper()))
        scheduler = MonitorScheduler(TrackingClient(store), workers=1)
        counts = []
        for names in (["a0", "a1", "a2", "a3", "a4"], [f"b{i}" for i in range(45)]):
            _monitors(store, names)
            now = _future(store)
            statements.clear()
            due = scheduler.due(now)
            counts.append((len(due), len(statements)))
        assert [n for n, _ in counts] == [5, 50]
        assert counts[0][1] == counts[1][1] <= 4  # every monitor, the newest result of each (+ pool pings)
    finally:
        store.close()


def test_each_due_monitor_is_checked_once_per_firing_and_unscheduled_or_skipped_ones_never(store):
    _monitors(store, ["m0", "m1", "m2"])
    _monitors(store, ["hourly"], schedule="0 * * * *")
    store.monitoring.put_monitor("manual", "iris", {"checks": ["operations"]}, actor="test")
    _monitors(store, ["policy-owned"])
    scheduler = MonitorScheduler(TrackingClient(store), workers=1, skip=["policy-owned"], actor="scheduler")
    now = _future(store)
    first = scheduler.tick(now)
    assert sorted(o.monitor for o in first) >= ["m0", "m1", "m2"]
    assert "manual" not in {o.monitor for o in first} and "policy-owned" not in {o.monitor for o in first}
    assert {o.status for o in first} == {"error"}  # no predictions of iris: stored as an error result, not raised
    assert scheduler.tick(now) == []  # nothing new fired
    again = scheduler.tick(now + MINUTE)
    assert sorted(o.monitor for o in again if o.monitor.startswith("m")) == ["m0", "m1", "m2"]
    results = store.monitoring.list_results("m0")
    assert len(results) == 2


def test_checks_run_on_a_process_pool_and_land_in_the_store(tmp_path, monkeypatch):
    from loopml.store import open_store

    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", str(tmp_path / "artifacts"))  # the workers open the same store
    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    scheduler = MonitorScheduler(TrackingClient(store), workers=2)
    try:
        _monitors(store, [f"m{i}" for i in range(6)])
        outcomes = scheduler.tick(_future(store))
        assert sorted(o.monitor for o in outcomes) == [f"m{i}" for i in range(6)]
        assert {r.monitor for r in store.monitoring.latest_results()} == {f"m{i}" for i in range(6)}
    finally:
        scheduler.close()
        store.close()


@pytest.mark.parametrize(("runner", "workers", "field"), [("spark", None, "runner"), ("local", 0, "workers")])
def test_a_bad_runner_or_worker_count_is_refused_by_name(store, runner, workers, field):
    with pytest.raises(InvalidValueError, match=field):
        MonitorScheduler(TrackingClient(store), runner=runner, workers=workers)
