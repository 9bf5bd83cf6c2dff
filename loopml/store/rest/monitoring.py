"""Monitors, alerts and continuous-training tasks over HTTP (``/api/v1/monitors``, ``/alerts``, ``/loop``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.entities.monitoring import Alert, AlertSpec, LoopTask, Monitor, MonitorResult
from loopml.entities.scale import Lease
from loopml.store.monitoring import (
    LoopStore,
    MonitoringStore,
    check_cursor,
    check_lease,
    check_limit,
    check_spec,
    check_state,
    check_status,
    check_trigger,
)
from loopml.store.rest.http import HttpSession

Json = dict[str, Any]


def _json(value: Mapping[str, Any] | None) -> Any:
    import json

    # like the SQL store, values JSON cannot hold are recorded as their str()
    return None if value is None else json.loads(json.dumps(dict(value), default=str))


def monitor_in(data: Json) -> Monitor:
    return Monitor(data["name"], data["model"], data["spec"], data["created_at"], data["updated_at"], data["created_by"])


def result_in(data: Json) -> MonitorResult:
    return MonitorResult(
        data["result_id"], data["monitor"], data["time"], data["model"], data["version"], data["status"],
        data["summary"], data["figures"],
    )  # fmt: skip


def alert_in(data: Json) -> Alert:
    return Alert(
        data["alert_id"], data["monitor"], data["result_id"], data["time"], data["model"], data["version"],
        data["kind"], data["message"], data["details"],
    )  # fmt: skip


def task_in(data: Json) -> LoopTask:
    return LoopTask(**{**data, "stages": tuple(data["stages"])})


def _seg(name: str) -> str:
    return quote(name, safe="")


class RestMonitoringStore(MonitoringStore):
    """The monitors of a loopml server."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    def put_monitor(self, name: str, model: str, spec: Mapping[str, Any], *, actor: str) -> Monitor:
        body = {"model": model, "spec": _json(check_spec(spec)), "actor": actor}
        return monitor_in(self._http.call("PUT", f"/monitors/{_seg(name)}", json_body=body))

    def get_monitor(self, name: str) -> Monitor:
        return monitor_in(self._http.call("GET", f"/monitors/{_seg(name)}"))

    def list_monitors(self, model: str | None = None) -> list[Monitor]:
        return [monitor_in(m) for m in self._http.call("GET", "/monitors", params={"model": model})]

    def delete_monitor(self, name: str, *, actor: str) -> None:
        self._http.call("DELETE", f"/monitors/{_seg(name)}", params={"actor": actor})

    def record_result(
        self,
        monitor: str,
        *,
        model: str,
        version: int | None,
        status: str,
        summary: Mapping[str, Any],
        figures: Mapping[str, Any],
        alerts: Sequence[AlertSpec],
        actor: str,
    ) -> tuple[MonitorResult, list[Alert]]:
        body = {
            "model": model,
            "version": version,
            "status": check_status(status),
            "summary": _json(summary),
            "figures": _json(figures),
            "alerts": [{"kind": a.kind, "message": a.message, "details": _json(a.details)} for a in alerts],
            "actor": actor,
        }
        data = self._http.call("POST", f"/monitors/{_seg(monitor)}/results", json_body=body)
        return result_in(data["result"]), [alert_in(a) for a in data["alerts"]]

    def record_action_failures(self, monitor: str, failures: Sequence[Mapping[str, Any]], *, actor: str) -> None:
        body = {"failures": [_json(f) for f in failures], "actor": actor}
        self._http.call("POST", f"/monitors/{_seg(monitor)}/action-failures", json_body=body)

    def list_results(
        self, monitor: str, *, since: int | None = None, until: int | None = None, max_results: int = 1000
    ) -> list[MonitorResult]:
        params = {"since": since, "until": until, "max_results": check_limit(max_results)}
        return [result_in(r) for r in self._http.call("GET", f"/monitors/{_seg(monitor)}/results", params=params)]

    def latest_results(self) -> list[MonitorResult]:
        return [result_in(r) for r in self._http.call("GET", "/monitor-results/latest")]

    def list_alerts(
        self, *, monitor: str | None = None, model: str | None = None, after_id: int = 0, max_results: int = 1000
    ) -> list[Alert]:
        params = {"monitor": monitor, "model": model, "after_id": after_id, "max_results": check_limit(max_results)}
        return [alert_in(a) for a in self._http.call("GET", "/alerts", params=params)]


class RestLoopStore(LoopStore):
    """The continuous-training tasks of a loopml server."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    def start_task(
        self,
        policy: str,
        model: str,
        *,
        trigger: str,
        trigger_ref: str | None,
        actor: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> LoopTask | None:
        body = {"policy": policy, "model": model, "trigger": check_trigger(trigger), "trigger_ref": trigger_ref,
                "actor": actor, "evidence": _json(evidence)}  # fmt: skip
        task = self._http.call("POST", "/loop/tasks", json_body=body)["task"]
        return None if task is None else task_in(task)

    def record_canary_verdict(
        self, task_id: int, *, version: int, passed: bool, reason: str, evidence: Mapping[str, Any], actor: str
    ) -> None:
        body = {"version": version, "passed": passed, "reason": reason, "evidence": _json(evidence), "actor": actor}
        self._http.call("POST", f"/loop/tasks/{int(task_id)}/canary-verdicts", json_body=body)

    def update_task(self, task_id: int, *, stage: str | None = None, details: Mapping[str, Any] | None = None) -> LoopTask:
        body = {"stage": stage, "details": _json(details)}
        return task_in(self._http.call("POST", f"/loop/tasks/{int(task_id)}/progress", json_body=body))

    def finish_task(
        self, task_id: int, *, state: str, outcome: str, details: Mapping[str, Any] | None, actor: str
    ) -> LoopTask:
        body = {"state": check_state(state, ended=True), "outcome": outcome, "details": _json(details), "actor": actor}
        return task_in(self._http.call("POST", f"/loop/tasks/{int(task_id)}/finish", json_body=body))

    def get_task(self, task_id: int) -> LoopTask:
        return task_in(self._http.call("GET", f"/loop/tasks/{int(task_id)}"))

    def list_tasks(self, *, policy: str | None = None, state: str | None = None, max_results: int = 100) -> list[LoopTask]:
        params = {"policy": policy, "state": state, "max_results": check_limit(max_results)}
        return [task_in(t) for t in self._http.call("GET", "/loop/tasks", params=params)]

    def get_cursor(self, policy: str) -> Mapping[str, int]:
        return dict(self._http.call("GET", f"/loop/cursors/{_seg(policy)}"))

    def set_cursor(self, policy: str, values: Mapping[str, int]) -> None:
        self._http.call("PUT", f"/loop/cursors/{_seg(policy)}", json_body={"values": check_cursor(values)})

    # -- leader election (issue 14) ---------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, *, ttl_s: float) -> Lease | None:
        body = {"holder": holder, "ttl_s": check_lease(name, holder, ttl_s)}
        lease = self._http.call("POST", f"/loop/leases/{_seg(name)}/acquire", json_body=body)["lease"]
        return None if lease is None else Lease(**lease)

    def release_lease(self, name: str, holder: str) -> None:
        check_lease(name, holder)
        self._http.call("POST", f"/loop/leases/{_seg(name)}/release", json_body={"holder": holder})

    def get_lease(self, name: str) -> Lease | None:
        check_lease(name, "reader")
        lease = self._http.call("GET", f"/loop/leases/{_seg(name)}")["lease"]
        return None if lease is None else Lease(**lease)
