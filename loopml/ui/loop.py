"""The loop's pages: its policies and tasks, and each task's timeline of decisions with their evidence.

Policies live in the code that runs the agent, not in the store, so ``/loop``
lists the policies its tasks name (with their model, how many tasks, and the
latest one), then the tasks newest first, a page at a time, filtered by policy
and state. ``/loop/tasks/<id>`` merges the task's stages with the audit events
of its model over the task's time window (from the alert that triggered it to
its end): alert, retrain, registration, gates, canary verdicts, then promotion,
rejection or rollback, each with its evidence drawn as tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from loopml.auth.guard import principal, visible_events
from loopml.entities.audit import AuditEvent
from loopml.entities.monitoring import LoopTask
from loopml.store import Store
from loopml.timestamps import now_ms
from loopml.ui import table
from loopml.ui.errors import PageRoute
from loopml.ui.render import page

router = APIRouter(route_class=PageRoute)
#: Most tasks read for the list (newest first); past it the page says so.
MAX_TASKS = 10_000
#: Most audit events on one task's timeline; past it the page says so.
MAX_EVENTS = 1_000
#: How long after a task's end its closing audit event may be stamped.
_END_SLACK_MS = 60_000
STATES = ("running", "succeeded", "rejected", "failed")

#: What each audit action means on the loop's timeline (a ``*`` suffix matches a prefix).
PHASES = {
    "monitor.alert": "alert",
    "loop.trigger.skipped": "skipped",
    "loop.task.start": "retrain",
    "model.register": "register",
    "model_version.": "registry",
    "loop.canary.pass": "canary",
    "loop.canary.fail": "canary",
    "deployment.rollback": "roll back",
    "deployment.": "routing",
    "alias.": "promote",
    "request.": "approval",
    "loop.task.succeeded": "promoted",
    "loop.task.rejected": "rejected",
    "loop.task.failed": "failed",
}


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def phase(action: str) -> str:
    """The step of the loop an audit action is: exact names first, then the longest prefix."""
    if action in PHASES:
        return PHASES[action]
    prefixes = [p for p in PHASES if p.endswith(".") and action.startswith(p)]
    return PHASES[max(prefixes, key=len)] if prefixes else action


@dataclass(frozen=True)
class PolicySummary:
    name: str
    model: str
    tasks: int
    running: int
    latest: LoopTask


def _policies(tasks: list[LoopTask]) -> list[PolicySummary]:
    """One row per policy the tasks name (tasks come newest first, so the first seen is the latest)."""
    seen: dict[str, list[LoopTask]] = {}
    for task in tasks:
        seen.setdefault(task.policy, []).append(task)
    return [
        PolicySummary(name, found[0].model, len(found), sum(t.state == "running" for t in found), found[0])
        for name, found in sorted(seen.items())
    ]


@router.get("/loop", include_in_schema=False)
def loop_page(
    request: Request,
    policy: str = "",
    state: str = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_TASKS)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    every = _store(request).loop.list_tasks(max_results=MAX_TASKS + 1)
    limited = len(every) > MAX_TASKS
    every = every[:MAX_TASKS]
    chosen = [t for t in every if (not policy or t.policy == policy) and (not state or t.state == state)]
    start = (page_number - 1) * size
    shown = chosen[start : start + size]
    query = {"policy": policy, "state": state, "size": "" if size == 50 else str(size)}
    path = request.url.path
    return page(
        request,
        "loop.html",
        title="The loop · loopml",
        policies=_policies(every),
        tasks=shown,
        total=len(chosen),
        first_index=start + 1,
        limited=limited,
        max_tasks=MAX_TASKS,
        filters=query,
        states=STATES,
        next_url=table.url_with(path, query, page=str(page_number + 1)) if start + size < len(chosen) else None,
        previous_url=table.url_with(path, query, page=str(page_number - 1) if page_number > 2 else None)
        if page_number > 1
        else None,
        format_time=table.format_time,
        format_duration=table.format_duration,
    )


def _window_start(store: Store, task: LoopTask) -> int:
    """Where the task's story starts: the alert that triggered it, else the task's start."""
    if task.trigger == "alert" and task.trigger_ref and task.trigger_ref.isdigit():
        found = store.monitoring.list_alerts(model=task.model, after_id=int(task.trigger_ref) - 1, max_results=1)
        if found and found[0].alert_id == int(task.trigger_ref):
            return min(found[0].time, task.started_at)
    return task.started_at


def _ends(event: AuditEvent, task: LoopTask) -> bool:
    """Whether ``event`` is the audit event that ended ``task`` (``loop.task.<state>``)."""
    return event.action.startswith("loop.task.") and (event.after or {}).get("task_id") == task.task_id


def timeline(store: Store, task: LoopTask, events: list[AuditEvent]) -> list[dict[str, Any]]:
    """The task's stages and its model's audit events in time order (a stage before an event at the same ms)."""
    entries: list[dict[str, Any]] = []
    for stage in task.stages:
        # each stage is recorded as {"stage": name, "time": ms}
        entry: Any = stage
        at, name = (
            (entry.get("time", task.started_at), entry.get("stage")) if isinstance(entry, Mapping) else (None, entry)
        )
        entries.append({"kind": "stage", "time": int(at or task.started_at), "order": 0,
                        "phase": "stage", "title": str(name), "event": None})  # fmt: skip
    for event in events:
        entries.append({"kind": "event", "time": event.time, "order": 1, "phase": phase(event.action),
                        "title": event.action, "event": event})  # fmt: skip
    return sorted(entries, key=lambda e: (e["time"], e["order"], e["event"].event_id if e["event"] else 0))


@router.get("/loop/tasks/{task_id}", include_in_schema=False)
def task_page(request: Request, task_id: int) -> Response:
    store = _store(request)
    task = store.loop.get_task(task_id)
    since = _window_start(store, task)
    end = task.finished_at if task.finished_at is not None else now_ms()
    # the task's own end event is stamped a moment after finished_at: look a little further, keep only that one
    found = store.audit.list_events(
        target=task.model, since=since, until=end + _END_SLACK_MS, max_results=MAX_EVENTS + 1
    )
    raw = [e for e in found if e.time <= end or _ends(e, task)]
    events = visible_events(principal(request), raw[:MAX_EVENTS])
    details = {k: v for k, v in task.details.items() if k != "traceback"}
    return page(
        request,
        "loop_task.html",
        title=f"Task {task_id} · the loop · loopml",
        task=task,
        details=details,
        traceback=task.details.get("traceback"),
        entries=timeline(store, task, events),
        more_events=len(raw) > MAX_EVENTS,
        max_events=MAX_EVENTS,
        format_time=table.format_time,
        format_duration=table.format_duration,
        format_number=table.format_number,
    )
