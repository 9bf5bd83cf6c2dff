"""Monitors, their results and alerts, and continuous-training tasks, in SQL."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from loopml.entities.monitoring import Alert, AlertSpec, LoopTask, Monitor, MonitorResult
from loopml.entities.scale import Lease
from loopml.errors import InvalidValueError, MonitorNotFoundError, TaskEndedError, TaskNotFoundError
from loopml.store.monitoring import (
    LoopStore,
    MonitoringStore,
    check_cursor,
    check_limit,
    check_spec,
    check_state,
    check_status,
    check_trigger,
)
from loopml.store.serving import check_version_number
from loopml.store.sql import leases
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import AnyRow, read_transaction, write_transaction
from loopml.timestamps import now_ms


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"Cannot store this as JSON: {exc}") from exc


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 256 or name.strip() != name:
        raise InvalidValueError(f"A {what} name must be 1-256 characters without surrounding spaces, got {name!r}.")
    return name


def _monitor(row: AnyRow) -> Monitor:
    return Monitor(row.name, row.model, json.loads(row.spec_json), row.created_at, row.updated_at, row.created_by)


def _result(row: AnyRow) -> MonitorResult:
    return MonitorResult(
        row.result_id,
        row.monitor,
        row.time,
        row.model,
        row.version,
        row.status,
        json.loads(row.summary_json),
        json.loads(row.figures_json),
    )


def _alert(row: AnyRow) -> Alert:
    return Alert(
        row.alert_id, row.monitor, row.result_id, row.time, row.model, row.version, row.kind, row.message,
        json.loads(row.details_json),
    )  # fmt: skip


def _task(row: AnyRow) -> LoopTask:
    return LoopTask(
        task_id=row.task_id,
        policy=row.policy,
        model=row.model,
        trigger=row.trigger,
        trigger_ref=row.trigger_ref,
        state=row.state,
        stage=row.stage,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        details=json.loads(row.details_json),
        stages=tuple(json.loads(row.stages_json)),
    )


class SqlMonitoringStore(MonitoringStore):
    """Monitors in the metadata database; alerts are audit events in the same transaction as their rows."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put_monitor(self, name: str, model: str, spec: Mapping[str, Any], *, actor: str) -> Monitor:
        _check_name(name, "monitor")
        _check_name(model, "model")
        text = _dump(dict(check_spec(spec)))
        now = now_ms()
        with write_transaction(self._engine) as conn:
            old = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).first()
            if old is None:
                conn.execute(
                    t.monitors.insert().values(
                        name=name, model=model, spec_json=text, created_at=now, updated_at=now, created_by=actor
                    )
                )
            else:
                conn.execute(
                    update(t.monitors).where(t.monitors.c.name == name).values(model=model, spec_json=text, updated_at=now)
                )
            append_event(
                conn,
                actor=actor,
                action="monitor.create" if old is None else "monitor.update",
                target_type="monitor",
                target=name,
                before=None if old is None else {"model": old.model, "spec": json.loads(old.spec_json)},
                after={"model": model, "spec": json.loads(text)},
            )
            return _monitor(conn.execute(select(t.monitors).where(t.monitors.c.name == name)).one())

    def get_monitor(self, name: str) -> Monitor:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).first()
            if row is None:
                names = conn.execute(select(t.monitors.c.name)).scalars().all()
        if row is None:
            from loopml.errors import did_you_mean

            raise MonitorNotFoundError(f"No monitor named {name!r}.{did_you_mean(str(name), names)}")
        return _monitor(row)

    def list_monitors(self, model: str | None = None) -> list[Monitor]:
        query = select(t.monitors).order_by(t.monitors.c.name)
        if model is not None:
            query = query.where(t.monitors.c.model == model)
        with read_transaction(self._engine) as conn:
            return [_monitor(row) for row in conn.execute(query)]

    def delete_monitor(self, name: str, *, actor: str) -> None:
        with write_transaction(self._engine) as conn:
            old = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).first()
            if old is None:
                raise MonitorNotFoundError(f"No monitor named {name!r}.")
            conn.execute(delete(t.monitors).where(t.monitors.c.name == name))
            append_event(
                conn,
                actor=actor,
                action="monitor.delete",
                target_type="monitor",
                target=name,
                before={"model": old.model, "spec": json.loads(old.spec_json)},
            )

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
        check_status(status)
        summary_text, figures_text = _dump(dict(summary)), _dump(dict(figures))
        now = now_ms()
        with write_transaction(self._engine) as conn:
            if conn.execute(select(t.monitors.c.name).where(t.monitors.c.name == monitor)).first() is None:
                raise MonitorNotFoundError(f"No monitor named {monitor!r}.")
            result_id = int(
                conn.execute(
                    t.monitor_results.insert()
                    .values(
                        monitor=monitor, time=now, model=model, version=version, status=status,
                        summary_json=summary_text, figures_json=figures_text,
                    )
                    .returning(t.monitor_results.c.result_id)
                ).scalar_one()
            )
            stored = [self._insert_alert(conn, monitor, result_id, now, model, version, spec, actor) for spec in alerts]
        result = MonitorResult(result_id, monitor, now, model, version, status, json.loads(summary_text),
                               json.loads(figures_text))  # fmt: skip
        return result, stored

    @staticmethod
    def _insert_alert(
        conn: Connection, monitor: str, result_id: int, now: int, model: str, version: int | None, spec: AlertSpec,
        actor: str,
    ) -> Alert:  # fmt: skip
        details = _dump(dict(spec.details))
        alert_id = int(
            conn.execute(
                t.alerts.insert()
                .values(
                    monitor=monitor, result_id=result_id, time=now, model=model, version=version, kind=spec.kind,
                    message=spec.message, details_json=details,
                )
                .returning(t.alerts.c.alert_id)
            ).scalar_one()
        )
        append_event(
            conn,
            actor=actor,
            action="monitor.alert",
            target_type="model",
            target=model if version is None else f"{model}/{version}",
            after={"monitor": monitor, "alert_id": alert_id, "kind": spec.kind},
            reason=spec.message,
            evidence=json.loads(details),
        )
        return Alert(alert_id, monitor, result_id, now, model, version, spec.kind, spec.message, json.loads(details))

    def record_action_failures(self, monitor: str, failures: Sequence[Mapping[str, Any]], *, actor: str) -> None:
        with write_transaction(self._engine) as conn:
            if conn.execute(select(t.monitors.c.name).where(t.monitors.c.name == monitor)).first() is None:
                raise MonitorNotFoundError(f"No monitor named {monitor!r}.")
            for failure in failures:
                append_event(
                    conn,
                    actor=actor,
                    action="monitor.action.failed",
                    target_type="monitor",
                    target=monitor,
                    reason=str(failure.get("error") or "the action failed"),
                    evidence=dict(failure),
                )

    def list_results(
        self, monitor: str, *, since: int | None = None, until: int | None = None, max_results: int = 1000
    ) -> list[MonitorResult]:
        check_limit(max_results)
        c = t.monitor_results.c
        query = select(t.monitor_results).where(c.monitor == monitor)
        if since is not None:
            query = query.where(c.time >= since)
        if until is not None:
            query = query.where(c.time < until)
        query = query.order_by(c.result_id.desc()).limit(max_results)
        with read_transaction(self._engine) as conn:
            return [_result(row) for row in reversed(conn.execute(query).all())]

    def latest_results(self) -> list[MonitorResult]:
        c = t.monitor_results.c
        newest = select(func.max(c.result_id)).group_by(c.monitor)
        columns = [c.result_id, c.monitor, c.time, c.model, c.version, c.status, c.summary_json]
        query = select(*columns).where(c.result_id.in_(newest)).order_by(c.monitor)
        with read_transaction(self._engine) as conn:
            return [
                MonitorResult(r.result_id, r.monitor, r.time, r.model, r.version, r.status, json.loads(r.summary_json))
                for r in conn.execute(query)
            ]

    def list_alerts(
        self, *, monitor: str | None = None, model: str | None = None, after_id: int = 0, max_results: int = 1000
    ) -> list[Alert]:
        check_limit(max_results)
        c = t.alerts.c
        query = select(t.alerts).where(c.alert_id > after_id)
        if monitor is not None:
            query = query.where(c.monitor == monitor)
        if model is not None:
            query = query.where(c.model == model)
        with read_transaction(self._engine) as conn:
            return [_alert(row) for row in conn.execute(query.order_by(c.alert_id).limit(max_results))]


class SqlLoopStore(LoopStore):
    """Tasks in the metadata database; a partial unique index keeps one running task per policy."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
        _check_name(policy, "policy")
        _check_name(model, "model")
        check_trigger(trigger)
        now = now_ms()
        stages = _dump([{"stage": "started", "time": now}])
        skipped: dict[str, Any] = {"actor": actor, "action": "loop.trigger.skipped", "target_type": "model", "target": model,
                   "reason": "a retrain of this policy is already in flight",
                   "evidence": {"policy": policy, "trigger": trigger, "trigger_ref": trigger_ref, **(evidence or {})}}  # fmt: skip
        try:
            with write_transaction(self._engine) as conn:
                running = conn.execute(
                    select(t.loop_tasks.c.task_id).where(t.loop_tasks.c.policy == policy, t.loop_tasks.c.state == "running")
                ).first()
                if running is not None:
                    append_event(conn, **skipped)
                    return None
                task_id = int(
                    conn.execute(
                        t.loop_tasks.insert()
                        .values(
                            policy=policy, model=model, trigger=trigger, trigger_ref=trigger_ref, state="running",
                            stage="started", stages_json=stages, started_at=now, heartbeat_at=now, details_json="{}",
                        )
                        .returning(t.loop_tasks.c.task_id)
                    ).scalar_one()
                )
                append_event(
                    conn,
                    actor=actor,
                    action="loop.task.start",
                    target_type="model",
                    target=model,
                    after={"policy": policy, "task_id": task_id, "trigger": trigger, "trigger_ref": trigger_ref},
                )
                return _task(conn.execute(select(t.loop_tasks).where(t.loop_tasks.c.task_id == task_id)).one())
        except IntegrityError:  # another agent started one between our check and insert
            with write_transaction(self._engine) as conn:
                append_event(conn, **skipped)
            return None

    def record_canary_verdict(
        self, task_id: int, *, version: int, passed: bool, reason: str, evidence: Mapping[str, Any], actor: str
    ) -> None:
        with write_transaction(self._engine) as conn:
            row = self._running(conn, task_id)
            append_event(
                conn,
                actor=actor,
                action="loop.canary.pass" if passed else "loop.canary.fail",
                target_type="model_version",
                target=f"{row.model}/{check_version_number(version)}",
                reason=reason,
                evidence={"task_id": task_id, **evidence},
            )

    def _running(self, conn: Connection, task_id: int) -> AnyRow:
        row = conn.execute(select(t.loop_tasks).where(t.loop_tasks.c.task_id == task_id)).first()
        if row is None:
            raise TaskNotFoundError(f"No task {task_id}.")
        if row.state != "running":
            raise TaskEndedError(f"Task {task_id} already ended as {row.state}.")
        return row

    def update_task(self, task_id: int, *, stage: str | None = None, details: Mapping[str, Any] | None = None) -> LoopTask:
        now = now_ms()
        with write_transaction(self._engine) as conn:
            row = self._running(conn, task_id)
            values: dict[str, Any] = {"heartbeat_at": now}
            if stage is not None and stage != row.stage:
                values["stage"] = stage
                values["stages_json"] = _dump([*json.loads(row.stages_json), {"stage": stage, "time": now}])
            if details:
                values["details_json"] = _dump({**json.loads(row.details_json), **details})
            conn.execute(update(t.loop_tasks).where(t.loop_tasks.c.task_id == task_id).values(**values))
            return _task(conn.execute(select(t.loop_tasks).where(t.loop_tasks.c.task_id == task_id)).one())

    def finish_task(
        self, task_id: int, *, state: str, outcome: str, details: Mapping[str, Any] | None, actor: str
    ) -> LoopTask:
        check_state(state, ended=True)
        now = now_ms()
        with write_transaction(self._engine) as conn:
            row = self._running(conn, task_id)
            merged = {**json.loads(row.details_json), **(details or {})}
            stages = [*json.loads(row.stages_json), {"stage": state, "time": now}]
            conn.execute(
                update(t.loop_tasks)
                .where(t.loop_tasks.c.task_id == task_id)
                .values(state=state, stage=state, stages_json=_dump(stages), finished_at=now, heartbeat_at=now,
                        outcome=outcome, details_json=_dump(merged))
            )
            append_event(
                conn,
                actor=actor,
                action=f"loop.task.{state}",
                target_type="model",
                target=row.model,
                before={"task_id": task_id, "stage": row.stage},
                after={"policy": row.policy, "task_id": task_id, "state": state},
                reason=outcome,
                evidence=json.loads(_dump(merged)),
            )
            return _task(conn.execute(select(t.loop_tasks).where(t.loop_tasks.c.task_id == task_id)).one())

    def get_task(self, task_id: int) -> LoopTask:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(t.loop_tasks).where(t.loop_tasks.c.task_id == task_id)).first()
        if row is None:
            raise TaskNotFoundError(f"No task {task_id}.")
        return _task(row)

    def list_tasks(self, *, policy: str | None = None, state: str | None = None, max_results: int = 100) -> list[LoopTask]:
        check_limit(max_results)
        query = select(t.loop_tasks)
        if policy is not None:
            query = query.where(t.loop_tasks.c.policy == policy)
        if state is not None:
            query = query.where(t.loop_tasks.c.state == check_state(state))
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query.order_by(t.loop_tasks.c.task_id.desc()).limit(max_results)).all()
        return [_task(row) for row in rows]

    def get_cursor(self, policy: str) -> Mapping[str, int]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(t.loop_cursors).where(t.loop_cursors.c.policy == policy)).all()
        return {row.key: int(row.value) for row in rows}

    def set_cursor(self, policy: str, values: Mapping[str, int]) -> None:
        _check_name(policy, "policy")
        check_cursor(values)
        with write_transaction(self._engine) as conn:
            for key, value in values.items():
                done = conn.execute(
                    update(t.loop_cursors)
                    .where(t.loop_cursors.c.policy == policy, t.loop_cursors.c.key == key)
                    .values(value=value)
                )
                if done.rowcount == 0:
                    conn.execute(t.loop_cursors.insert().values(policy=policy, key=key, value=value))

    # -- leader election (issue 14): one row per lease, see loopml.store.sql.leases ---------------------
    def acquire_lease(self, name: str, holder: str, *, ttl_s: float) -> Lease | None:
        return leases.acquire(self._engine, name, holder, ttl_s)

    def release_lease(self, name: str, holder: str) -> None:
        leases.release(self._engine, name, holder)

    def get_lease(self, name: str) -> Lease | None:
        return leases.get(self._engine, name)
