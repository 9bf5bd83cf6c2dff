"""Monitors, their results and alerts, and continuous-training tasks: one route per store method."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from loopml.auth.guard import actor_for
from loopml.entities.monitoring import AlertSpec
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import IntPath, IntQuery, NoContent, StoreDep
from loopml.server.schemas.monitoring import (
    AcquireLeaseIn,
    ActionFailuresIn,
    AlertOut,
    CanaryVerdictIn,
    CursorIn,
    FinishTaskIn,
    LeaseHeldOut,
    LeaseOut,
    LoopTaskOut,
    MonitorOut,
    MonitorResultOut,
    PutMonitorIn,
    RecordedOut,
    RecordResultIn,
    ReleaseLeaseIn,
    StartedOut,
    StartTaskIn,
    UpdateTaskIn,
)

router = APIRouter(tags=["monitoring"], route_class=AuthorizedRoute)
MaxResults = Annotated[int, Query(ge=1, le=100_000)]
NO_CONTENT: NoContent = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


@router.put("/monitors/{name}")
def put_monitor(name: str, body: PutMonitorIn, store: StoreDep, request: Request) -> MonitorOut:
    monitor = store.monitoring.put_monitor(name, body.model, body.spec, actor=actor_for(request, body.actor))
    return MonitorOut.model_validate(monitor)


@router.get("/monitors/{name}")
def get_monitor(name: str, store: StoreDep) -> MonitorOut:
    return MonitorOut.model_validate(store.monitoring.get_monitor(name))


@router.get("/monitors")
def list_monitors(store: StoreDep, model: str | None = None) -> list[MonitorOut]:
    return [MonitorOut.model_validate(m) for m in store.monitoring.list_monitors(model)]


@router.delete("/monitors/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_monitor(name: str, actor: str, store: StoreDep, request: Request) -> None:
    store.monitoring.delete_monitor(name, actor=actor_for(request, actor))


@router.post("/monitors/{name}/results", status_code=status.HTTP_201_CREATED)
def record_result(name: str, body: RecordResultIn, store: StoreDep, request: Request) -> RecordedOut:
    result, alerts = store.monitoring.record_result(
        name,
        model=body.model,
        version=body.version,
        status=body.status,
        summary=body.summary,
        figures=body.figures,
        alerts=[AlertSpec(a.kind, a.message, a.details) for a in body.alerts],
        actor=actor_for(request, body.actor),
    )
    return RecordedOut(
        result=MonitorResultOut.model_validate(result), alerts=[AlertOut.model_validate(a) for a in alerts]
    )


@router.post("/monitors/{name}/action-failures", **NO_CONTENT)
def record_action_failures(name: str, body: ActionFailuresIn, store: StoreDep, request: Request) -> None:
    store.monitoring.record_action_failures(name, body.failures, actor=actor_for(request, body.actor))


@router.get("/monitors/{name}/results")
def list_results(
    name: str,
    store: StoreDep,
    since: IntQuery | None = None,
    until: IntQuery | None = None,
    max_results: MaxResults = 1000,
) -> list[MonitorResultOut]:
    results = store.monitoring.list_results(name, since=since, until=until, max_results=max_results)
    return [MonitorResultOut.model_validate(r) for r in results]


@router.get("/monitor-results/latest")
def latest_results(store: StoreDep) -> list[MonitorResultOut]:
    return [MonitorResultOut.model_validate(r) for r in store.monitoring.latest_results()]


@router.get("/alerts")
def list_alerts(
    store: StoreDep,
    monitor: str | None = None,
    model: str | None = None,
    after_id: IntQuery = 0,
    max_results: MaxResults = 1000,
) -> list[AlertOut]:
    alerts = store.monitoring.list_alerts(monitor=monitor, model=model, after_id=after_id, max_results=max_results)
    return [AlertOut.model_validate(a) for a in alerts]


# -- continuous training ---------------------------------------------------------------------------
@router.post("/loop/tasks")
def start_task(body: StartTaskIn, store: StoreDep, request: Request) -> StartedOut:
    task = store.loop.start_task(
        body.policy, body.model, trigger=body.trigger, trigger_ref=body.trigger_ref,
        actor=actor_for(request, body.actor), evidence=body.evidence,
    )  # fmt: skip
    return StartedOut(task=None if task is None else LoopTaskOut.model_validate(task))


@router.post("/loop/tasks/{task_id}/canary-verdicts", **NO_CONTENT)
def record_canary_verdict(task_id: IntPath, body: CanaryVerdictIn, store: StoreDep, request: Request) -> None:
    store.loop.record_canary_verdict(
        task_id, version=body.version, passed=body.passed, reason=body.reason, evidence=body.evidence,
        actor=actor_for(request, body.actor),
    )  # fmt: skip


@router.post("/loop/tasks/{task_id}/progress")
def update_task(task_id: IntPath, body: UpdateTaskIn, store: StoreDep) -> LoopTaskOut:
    return LoopTaskOut.model_validate(store.loop.update_task(task_id, stage=body.stage, details=body.details))


@router.post("/loop/tasks/{task_id}/finish")
def finish_task(task_id: IntPath, body: FinishTaskIn, store: StoreDep, request: Request) -> LoopTaskOut:
    task = store.loop.finish_task(
        task_id, state=body.state, outcome=body.outcome, details=body.details, actor=actor_for(request, body.actor)
    )
    return LoopTaskOut.model_validate(task)


@router.get("/loop/tasks/{task_id}")
def get_task(task_id: IntPath, store: StoreDep) -> LoopTaskOut:
    return LoopTaskOut.model_validate(store.loop.get_task(task_id))


@router.get("/loop/tasks")
def list_tasks(
    store: StoreDep, policy: str | None = None, state: str | None = None, max_results: MaxResults = 100
) -> list[LoopTaskOut]:
    return [LoopTaskOut.model_validate(t) for t in store.loop.list_tasks(policy=policy, state=state, max_results=max_results)]


@router.get("/loop/cursors/{policy}")
def get_cursor(policy: str, store: StoreDep) -> dict[str, int]:
    return dict(store.loop.get_cursor(policy))


@router.put("/loop/cursors/{policy}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def set_cursor(policy: str, body: CursorIn, store: StoreDep) -> None:
    store.loop.set_cursor(policy, body.values)


# -- leader election (issue 14) --------------------------------------------------------------------
@router.post("/loop/leases/{name}/acquire")
def acquire_lease(name: str, body: AcquireLeaseIn, store: StoreDep) -> LeaseHeldOut:
    lease = store.loop.acquire_lease(name, body.holder, ttl_s=body.ttl_s)
    return LeaseHeldOut(lease=None if lease is None else LeaseOut.model_validate(lease))


@router.post("/loop/leases/{name}/release", **NO_CONTENT)
def release_lease(name: str, body: ReleaseLeaseIn, store: StoreDep) -> None:
    store.loop.release_lease(name, body.holder)


@router.get("/loop/leases/{name}")
def get_lease(name: str, store: StoreDep) -> LeaseHeldOut:
    lease = store.loop.get_lease(name)
    return LeaseHeldOut(lease=None if lease is None else LeaseOut.model_validate(lease))
