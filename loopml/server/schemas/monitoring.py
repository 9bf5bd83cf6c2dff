"""Request and response bodies of the monitor, alert and continuous-training routes."""

from __future__ import annotations

from typing import Literal

from loopml.server.schemas.common import Int64, JsonObject, Schema


class MonitorOut(Schema):
    name: str
    model: str
    spec: JsonObject
    created_at: Int64
    updated_at: Int64
    created_by: str


class PutMonitorIn(Schema):
    model: str
    spec: JsonObject
    actor: str


class MonitorResultOut(Schema):
    result_id: Int64
    monitor: str
    time: Int64
    model: str
    version: Int64 | None
    status: str
    summary: JsonObject
    figures: JsonObject


class AlertSpecIn(Schema):
    kind: str
    message: str
    details: JsonObject


class AlertOut(Schema):
    alert_id: Int64
    monitor: str
    result_id: Int64
    time: Int64
    model: str
    version: Int64 | None
    kind: str
    message: str
    details: JsonObject


class RecordResultIn(Schema):
    model: str
    version: Int64 | None
    status: Literal["ok", "alert", "error"]
    summary: JsonObject
    figures: JsonObject
    alerts: list[AlertSpecIn]
    actor: str


class RecordedOut(Schema):
    result: MonitorResultOut
    alerts: list[AlertOut]


class LoopTaskOut(Schema):
    task_id: Int64
    policy: str
    model: str
    trigger: str
    trigger_ref: str | None
    state: str
    stage: str
    started_at: Int64
    heartbeat_at: Int64
    finished_at: Int64 | None
    outcome: str | None
    details: JsonObject
    stages: list[JsonObject]


class StartTaskIn(Schema):
    policy: str
    model: str
    trigger: Literal["alert", "schedule", "manual"]
    trigger_ref: str | None = None
    actor: str
    evidence: JsonObject | None = None


class CanaryVerdictIn(Schema):
    version: Int64
    passed: bool
    reason: str
    evidence: JsonObject
    actor: str


class ActionFailuresIn(Schema):
    failures: list[JsonObject]
    actor: str


class StartedOut(Schema):
    task: LoopTaskOut | None


class UpdateTaskIn(Schema):
    stage: str | None = None
    details: JsonObject | None = None


class FinishTaskIn(Schema):
    state: Literal["succeeded", "rejected", "failed"]
    outcome: str
    details: JsonObject | None = None
    actor: str


class CursorIn(Schema):
    values: dict[str, Int64]


class LeaseOut(Schema):
    name: str
    holder: str
    epoch: Int64
    acquired_at: Int64
    expires_at: Int64


class AcquireLeaseIn(Schema):
    holder: str
    ttl_s: float


class ReleaseLeaseIn(Schema):
    holder: str


class LeaseHeldOut(Schema):
    lease: LeaseOut | None
