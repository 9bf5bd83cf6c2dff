"""The MonitoringStore and LoopStore contracts on SQLite, PostgreSQL and REST."""

from __future__ import annotations

import math
import threading

import pytest

from loopml.entities.monitoring import AlertSpec
from loopml.errors import (
    InvalidInputError,
    InvalidValueError,
    MonitorNotFoundError,
    TaskEndedError,
    TaskNotFoundError,
)

SPEC = {"checks": ["data_drift"], "window": {"last": 500}, "thresholds": {"drift_share": 0.3}}


def test_monitors_are_created_replaced_listed_and_deleted_with_audit(store):
    created = store.monitoring.put_monitor("churn-drift", "churn", SPEC, actor="alice")
    assert (created.model, created.spec, created.created_by) == ("churn", SPEC, "alice")
    replaced = store.monitoring.put_monitor("churn-drift", "churn", {**SPEC, "window": {"last": 100}}, actor="bob")
    assert replaced.spec["window"] == {"last": 100} and replaced.created_at == created.created_at
    store.monitoring.put_monitor("other", "fraud", SPEC, actor="alice")
    assert [m.name for m in store.monitoring.list_monitors()] == ["churn-drift", "other"]
    assert [m.name for m in store.monitoring.list_monitors("fraud")] == ["other"]

    store.monitoring.delete_monitor("other", actor="alice")
    with pytest.raises(MonitorNotFoundError, match="churn-drift"):
        store.monitoring.get_monitor("churn-drif")
    actions = [e.action for e in store.audit.list_events(target_type="monitor")]
    assert actions == ["monitor.create", "monitor.update", "monitor.create", "monitor.delete"]


def test_a_result_with_alerts_is_one_record_and_alerts_are_audited(store):
    store.monitoring.put_monitor("m", "churn", SPEC, actor="alice")
    figures = {"columns": {"age": {"statistic": 0.42, "p_value": math.nan}}}
    result, alerts = store.monitoring.record_result(
        "m", model="churn", version=3, status="alert", summary={"drifted": ["age"]}, figures=figures,
        alerts=[AlertSpec("data_drift", "1 of 2 columns drifted: age", {"drifted": ["age"], "share": 0.5})],
        actor="monitor",
    )  # fmt: skip
    assert result.status == "alert" and math.isnan(result.figures["columns"]["age"]["p_value"])
    [alert] = alerts
    assert (alert.kind, alert.result_id, alert.version) == ("data_drift", result.result_id, 3)
    store.monitoring.record_result("m", model="churn", version=3, status="ok", summary={}, figures={}, alerts=[],
                                   actor="monitor")  # fmt: skip
    assert [r.status for r in store.monitoring.list_results("m")] == ["alert", "ok"]
    assert [r.status for r in store.monitoring.list_results("m", max_results=1)] == ["ok"]
    assert store.monitoring.list_alerts(after_id=alert.alert_id) == []
    assert [a.alert_id for a in store.monitoring.list_alerts(model="churn")] == [alert.alert_id]
    [event] = store.audit.list_events(action="monitor.alert")
    assert event.target == "churn/3" and event.evidence == {"drifted": ["age"], "share": 0.5}


def test_bad_results_are_refused_and_leave_nothing(store):
    with pytest.raises(MonitorNotFoundError):
        store.monitoring.record_result("nope", model="x", version=None, status="ok", summary={}, figures={}, alerts=[],
                                       actor="a")  # fmt: skip
    store.monitoring.put_monitor("m", "churn", SPEC, actor="alice")
    with pytest.raises(InvalidValueError, match="status"):
        store.monitoring.record_result("m", model="churn", version=None, status="bad", summary={}, figures={},
                                       alerts=[], actor="a")  # fmt: skip
    assert store.monitoring.list_results("m") == []


def test_one_running_task_per_policy_and_its_life(store):
    task = store.loop.start_task("retrain-churn", "churn", trigger="alert", trigger_ref="7", actor="agent")
    assert task is not None and task.state == "running"
    assert store.loop.start_task("retrain-churn", "churn", trigger="alert", trigger_ref="8", actor="agent") is None
    other = store.loop.start_task("retrain-fraud", "fraud", trigger="schedule", trigger_ref=None, actor="agent")
    assert other is not None

    moved = store.loop.update_task(task.task_id, stage="training", details={"run_id": "abc"})
    assert moved.stage == "training" and moved.details == {"run_id": "abc"}
    assert [s["stage"] for s in moved.stages] == ["started", "training"]
    done = store.loop.finish_task(task.task_id, state="succeeded", outcome="promoted v2", details={"version": 2},
                                  actor="agent")  # fmt: skip
    assert done.state == "succeeded" and done.details == {"run_id": "abc", "version": 2} and done.finished_at
    with pytest.raises(TaskEndedError):
        store.loop.update_task(task.task_id, stage="x")
    with pytest.raises(TaskNotFoundError):
        store.loop.get_task(999_999)
    again = store.loop.start_task("retrain-churn", "churn", trigger="manual", trigger_ref=None, actor="agent")
    assert again is not None
    assert [t.task_id for t in store.loop.list_tasks(policy="retrain-churn")] == [again.task_id, task.task_id]
    assert [t.task_id for t in store.loop.list_tasks(state="running")] == [again.task_id, other.task_id]
    actions = [e.action for e in store.audit.list_events(action="loop.*")]
    assert actions.count("loop.task.start") == 3 and actions.count("loop.task.succeeded") == 1


def test_cursors_merge(store):
    assert store.loop.get_cursor("p") == {}
    store.loop.set_cursor("p", {"alert_id": 5})
    store.loop.set_cursor("p", {"schedule_ms": 1000})
    store.loop.set_cursor("p", {"alert_id": 9})
    assert store.loop.get_cursor("p") == {"alert_id": 9, "schedule_ms": 1000}


def test_concurrent_starts_make_one_task(db_url, tmp_path):
    from loopml.store import open_store

    stores = [open_store(db_url, artifacts_url=str(tmp_path / "a")) for _ in range(4)]
    started = []
    barrier = threading.Barrier(len(stores))

    def start(s):
        barrier.wait()
        started.append(s.loop.start_task("p", "m", trigger="alert", trigger_ref=None, actor="agent"))

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for s in stores:
        s.close()
    assert sum(task is not None for task in started) == 1


def test_bad_arguments_raise_the_same_error_on_every_backend_and_write_nothing(store):
    store.monitoring.put_monitor("m", "churn", SPEC, actor="alice")
    for bad in (0, 100_001):
        with pytest.raises(InvalidValueError, match="max_results"):
            store.monitoring.list_alerts(max_results=bad)
        with pytest.raises(InvalidValueError, match="max_results"):
            store.monitoring.list_results("m", max_results=bad)
        with pytest.raises(InvalidValueError, match="max_results"):
            store.loop.list_tasks(max_results=bad)
    with pytest.raises(InvalidValueError, match="mapping"):
        store.monitoring.put_monitor("n", "churn", [("checks", [])], actor="alice")
    for value in ("1", True, 1.5):
        with pytest.raises(InvalidValueError, match="cursor value"):
            store.loop.set_cursor("p", {"alert_id": 3, "schedule_ms": value})
    assert store.loop.get_cursor("p") == {}
    assert [m.name for m in store.monitoring.list_monitors()] == ["m"]


def test_integers_past_64_bits_are_the_callers_mistake_on_every_backend(store):
    store.loop.set_cursor("p", {"alert_id": 3})
    with pytest.raises(InvalidInputError):
        store.monitoring.list_alerts(after_id=2**63)
    with pytest.raises(InvalidInputError):
        store.loop.set_cursor("p", {"alert_id": 4, "schedule_ms": 2**64})
    with pytest.raises(InvalidInputError):
        store.loop.get_task(2**63)
    assert store.loop.get_cursor("p") == {"alert_id": 3}  # the batch's other key was not written either


def test_latest_results_are_the_newest_of_each_monitor_in_one_call(store):
    assert store.monitoring.latest_results() == []
    for name in ("b-watch", "a-watch", "quiet"):
        store.monitoring.put_monitor(name, "churn", SPEC, actor="alice")
    for name, status in (("a-watch", "ok"), ("b-watch", "alert"), ("a-watch", "alert"), ("b-watch", "error")):
        store.monitoring.record_result(
            name, model="churn", version=1, status=status, summary={"alerts": [status]}, figures={"big": [1, 2]},
            alerts=[], actor="monitor",
        )  # fmt: skip
    latest = store.monitoring.latest_results()
    assert [(r.monitor, r.status, r.summary) for r in latest] == [
        ("a-watch", "alert", {"alerts": ["alert"]}),
        ("b-watch", "error", {"alerts": ["error"]}),
    ]  # by name; a monitor without results is not listed
    assert all(r.figures == {} for r in latest)  # the summary only: the figures can be large
    assert [r.result_id for r in latest] == [store.monitoring.list_results(m, max_results=1)[0].result_id
                                             for m in ("a-watch", "b-watch")]  # fmt: skip
