"""Monitors of deployed models, the results of their checks, and the alerts those raised."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: What one check of a monitor can end as.
RESULT_STATUSES = ("ok", "alert", "error")


@dataclass(frozen=True, slots=True)
class Monitor:
    """A named monitor of one registered model; ``spec`` holds its checks, thresholds, window and actions (JSON)."""

    name: str
    model: str
    spec: Mapping[str, Any]
    created_at: int
    updated_at: int
    created_by: str


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One check of a monitor: every figure it computed (``figures``) and the headline (``summary``)."""

    result_id: int
    monitor: str
    time: int
    model: str
    version: int | None
    status: str  # one of RESULT_STATUSES
    summary: Mapping[str, Any]
    figures: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    """A threshold a check crossed; the continuous-training agent reacts to these."""

    alert_id: int
    monitor: str
    result_id: int
    time: int
    model: str
    version: int | None
    kind: str  # e.g. "data_drift", "prediction_drift", "performance", "error_rate"
    message: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """An alert a check wants recorded with its result (before it has an id)."""

    kind: str
    message: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LoopTask:
    """One piece of continuous-training work of a policy: a retrain, its gates, rollout and outcome.

    ``state`` is ``running`` until it ends as ``succeeded`` (promoted),
    ``rejected`` (a gate or the canary said no), or ``failed`` (an error, or
    an agent that died while running it). At most one task of a policy runs
    at a time, which the store enforces.
    """

    task_id: int
    policy: str
    model: str
    trigger: str  # "alert", "schedule" or "manual"
    trigger_ref: str | None
    state: str
    stage: str
    started_at: int
    heartbeat_at: int
    finished_at: int | None
    outcome: str | None
    details: Mapping[str, Any]
    stages: Sequence[str] = ()
