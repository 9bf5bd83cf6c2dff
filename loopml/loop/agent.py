"""The continuous-training agent: alerts and schedules in, validated and rolled-out models out.

On each ``tick()`` the agent first fails tasks whose agent died (a heartbeat
older than ``stale_after_s``), putting the champion back on full traffic.
Then, for each policy, new monitor alerts or a due schedule start a task —
the store allows one running task per policy, so a second alert while a
retrain is in flight starts nothing (it is recorded as skipped). A task:

1. runs the policy's pipeline (a tracked run with a child run per step);
2. packages the candidate in a child run of the pipeline run and registers it with
   its holdout, so the version carries its explanations (evidence ``explanations``);
3. runs the gates against the champion on the candidate's holdout and stores
   their evidence on the new version; a failed gate ends the task ``rejected``;
4. with ``approval`` files a transition request and stops there;
5. otherwise rolls out: a canary at each share of the plan, watched on live
   traffic (rolled back at the first bad verdict), then ``@champion`` moves,
   the version goes to production and takes all traffic.

Every step is an audit event (``loop.*``) with its evidence; the champion keeps
serving throughout, and nothing but step 5's last move makes a version champion.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.entities.monitoring import LoopTask
from loopml.entities.registry import ModelVersion
from loopml.errors import (
    AliasNotFoundError,
    DeploymentNotFoundError,
    LoopMLError,
    ModelNotFoundError,
    TaskEndedError,
)
from loopml.explain.importance import DEFAULT_MAX_ROWS, EVIDENCE_KEY
from loopml.loop import canary as canary_watch
from loopml.loop.cron import Cron
from loopml.loop.gates import ExplainedGate
from loopml.loop.leader import Leadership, LeadershipLostError
from loopml.loop.policy import Candidate, Policy
from loopml.loop.schedule import MonitorScheduler
from loopml.registry.client import RegistryClient
from loopml.serving.client import ServingClient
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun

if TYPE_CHECKING:
    import pandas as pd

    from loopml.store import Store

CHAMPION = "champion"
ACTOR = "loopml-loop"

_log = logging.getLogger("loopml.loop")


@dataclass(frozen=True)
class Decision:
    """What one tick did for one policy: ``action`` is started, skipped, recovered or idle."""

    policy: str
    action: str
    task: LoopTask | None = None
    detail: str = ""


class _Rejected(Exception):
    def __init__(self, outcome: str, details: dict[str, Any]) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.details = details


class Agent:
    """Runs policies against one store. ``tick()`` does one pass; ``run()`` repeats it until stopped."""

    def __init__(
        self,
        policies: Sequence[Policy],
        *,
        client: TrackingClient | None = None,
        actor: str | None = None,
        stale_after_s: float = 300.0,
        runner: str = "local",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[str, str], None] | None = None,
        leadership: Leadership | None = None,
        monitors: MonitorScheduler | None = None,
    ) -> None:
        from loopml.tracking import fluent

        self.policies = list(policies)
        self.tracking = client or fluent.get_tracking_client()
        self.registry = RegistryClient(self.tracking)
        self.serving = ServingClient(self.tracking)
        self.actor = actor or os.environ.get("LOOPML_ACTOR") or ACTOR
        self.stale_after_s = stale_after_s
        self.runner = runner
        self.clock = clock
        self.sleep = sleep
        self.on_progress = on_progress or (lambda _policy, _message: None)
        #: with several agents on one store, only the holder of the lease ticks (see loopml.loop.leader)
        self.leadership = leadership
        #: checks every scheduled monitor no policy watches, in batches (see loopml.loop.schedule)
        self.monitors = monitors

    @property
    def store(self) -> Store:
        return self.tracking.store

    # -- the loop ------------------------------------------------------------------------------
    def run(self, interval_s: float = 10.0, *, stop: Callable[[], bool] = lambda: False) -> None:
        """Tick every ``interval_s`` seconds until ``stop()`` is true."""
        while not stop():
            self.tick()
            self.sleep(interval_s)

    def tick(self) -> list[Decision]:
        """Recover dead tasks, then look at each policy's triggers once; run what they start, to the end.

        With ``leadership``, an agent that does not hold the lease does nothing and returns no decision.
        """
        if self.leadership is not None and not self.leadership.ensure():
            return []
        decisions = self.recover()
        if self.monitors is not None:
            self._check_scheduled()
        for policy in self.policies:
            decisions.append(self._tick_policy(policy))
        return decisions

    def trigger(self, policy: Policy, *, reason: str = "manual") -> Decision:
        """Start ``policy`` now (``loopml loop run --now``), unless a task of it is running."""
        return self._start(policy, "manual", reason, {"reason": reason})

    def _check_scheduled(self) -> None:
        """Run every due scheduled monitor at once; one progress line with how they came out."""
        outcomes = self.monitors.tick() if self.monitors is not None else []
        if outcomes:
            counts: dict[str, int] = {}
            for outcome in outcomes:
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                if outcome.error:
                    _log.warning("Scheduled check of monitor %s failed: %s", outcome.monitor, outcome.error)
            summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            self.on_progress("monitors", f"checked {len(outcomes)} due monitors ({summary})")

    def _check_when_due(self, policy: Policy, monitor: str, cursor: dict[str, int]) -> None:
        """Run the policy's monitor when the monitor's own ``schedule`` says a check is due."""
        from loopml.monitoring.monitors import run_monitor

        spec = self.store.monitoring.get_monitor(monitor).spec
        schedule = spec.get("schedule")
        if not schedule:
            return
        now_ms = int(self.clock() * 1000)
        fired = Cron.parse(schedule).fires_between(cursor.get("check_ms", now_ms - 60_000), now_ms)
        if fired is not None:
            self.store.loop.set_cursor(policy.name, {"check_ms": fired})
            result = run_monitor(monitor, client=self.tracking, actor=self.actor)
            self.on_progress(policy.name, f"checked {monitor}: {result.status}")

    def _tick_policy(self, policy: Policy) -> Decision:
        cursor = dict(self.store.loop.get_cursor(policy.name))
        if policy.monitor is not None:
            self._check_when_due(policy, policy.monitor, cursor)
            alerts = self.store.monitoring.list_alerts(monitor=policy.monitor, after_id=cursor.get("alert_id", 0))
            if alerts:
                newest = alerts[-1]
                self.store.loop.set_cursor(policy.name, {"alert_id": newest.alert_id})
                info = {"alert_ids": [a.alert_id for a in alerts], "kinds": sorted({a.kind for a in alerts}),
                        "message": newest.message, "since_ms": newest.time}  # fmt: skip
                return self._start(policy, "alert", str(newest.alert_id), info)
        if policy.schedule is not None:
            now_ms = int(self.clock() * 1000)
            last = cursor.get("schedule_ms", now_ms - 60_000)
            fired = Cron.parse(policy.schedule, policy.timezone).fires_between(last, now_ms)
            if fired is not None:
                self.store.loop.set_cursor(policy.name, {"schedule_ms": fired})
                return self._start(policy, "schedule", str(fired), {"scheduled_ms": fired})
            if "schedule_ms" not in cursor:
                self.store.loop.set_cursor(policy.name, {"schedule_ms": now_ms})
        return Decision(policy.name, "idle")

    def _start(self, policy: Policy, trigger: str, ref: str, info: dict[str, Any]) -> Decision:
        task = self.store.loop.start_task(
            policy.name, policy.model, trigger=trigger, trigger_ref=ref, actor=self.actor, evidence=info
        )
        if task is None:  # the store audited the skip
            return Decision(policy.name, "skipped", None, "a retrain is already in flight")
        self.on_progress(policy.name, f"{trigger} -> retraining (task {task.task_id})")
        ended = self._execute(policy, task, {"trigger": trigger, **info})
        if policy.monitor is not None:
            # alerts raised while the retrain ran describe the model it just replaced or kept
            seen = self.store.loop.get_cursor(policy.name).get("alert_id", 0)
            latest = self.store.monitoring.list_alerts(monitor=policy.monitor, after_id=seen, max_results=100_000)
            if latest:
                self.store.loop.set_cursor(policy.name, {"alert_id": latest[-1].alert_id})
        return Decision(policy.name, "started", ended, ended.outcome or "")

    # -- recovery -------------------------------------------------------------------------------
    def recover(self) -> list[Decision]:
        """Fail tasks whose agent stopped (stale heartbeat) and put their model's champion back on all traffic."""
        decisions = []
        now_ms = int(self.clock() * 1000)
        for task in self.store.loop.list_tasks(state="running", max_results=1000):
            age_s = (now_ms - task.heartbeat_at) / 1000
            if age_s < self.stale_after_s:
                continue
            restored = self._restore_champion(task.model, f"task {task.task_id} died during {task.stage}")
            self.store.loop.finish_task(
                task.task_id, state="failed",
                outcome=f"the agent stopped during '{task.stage}' (no heartbeat for {age_s:.0f} s); champion kept",
                details={"recovered_by": self.actor, "champion_restored": restored}, actor=self.actor,
            )  # fmt: skip
            decisions.append(Decision(task.policy, "recovered", self.store.loop.get_task(task.task_id)))
        return decisions

    def _restore_champion(self, model: str, reason: str) -> bool:
        """Take a canary off ``model`` (its main target keeps all traffic); True when one was on."""
        try:
            current = self.serving.get_deployment(model)
        except DeploymentNotFoundError:
            return False
        if current.canary_version is None:
            return False  # no canary on: whatever serves was put there on purpose
        self.serving.deploy(model, current.target, reason=reason, actor=self.actor)
        return True

    # -- one task -------------------------------------------------------------------------------
    def _execute(self, policy: Policy, task: LoopTask, trigger: dict[str, Any]) -> LoopTask:
        task_id = task.task_id
        # a long step (training for an hour, say) must not look like a dead agent to another agent's recover()
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(task_id, stop), name=f"loopml-task-{task_id}", daemon=True
        )
        beat.start()
        try:
            return self._run_task(policy, task_id, trigger)
        finally:
            stop.set()
            beat.join()

    def _heartbeat(self, task_id: int, stop: threading.Event) -> None:
        """Refresh the task's heartbeat (and the lease) every third of ``stale_after_s`` (or of the lease's ttl)."""
        period = min(self.stale_after_s, self.leadership.ttl_s if self.leadership else self.stale_after_s)
        while not stop.wait(min(max(period / 3, 0.1), 60.0)):
            if self.leadership is not None and not self.leadership.ensure():
                return  # another agent leads now: the task stops at its next stage (LeadershipLostError)
            try:
                self.store.loop.update_task(task_id)
            except TaskEndedError:
                return  # the task's own thread reports how it ended
            except Exception as exc:  # a store that is down for a moment: keep beating, the next one may pass
                _log.warning("Could not refresh the heartbeat of loop task %s: %s", task_id, exc)

    def _run_task(self, policy: Policy, task_id: int, trigger: dict[str, Any]) -> LoopTask:
        try:
            details = self._retrain(policy, task_id, trigger)
        except _Rejected as rejected:
            return self.store.loop.finish_task(
                task_id, state="rejected", outcome=rejected.outcome, details=rejected.details, actor=self.actor
            )
        except Exception as exc:  # any failure ends the task; the champion keeps serving
            restored = self._safe_restore(policy.model, task_id)
            try:
                return self.store.loop.finish_task(
                    task_id, state="failed", outcome=f"{type(exc).__name__}: {exc}",
                    details={"traceback": traceback.format_exc()[-4000:], "champion_restored": restored},
                    actor=self.actor,
                )  # fmt: skip
            except TaskEndedError:
                if not isinstance(exc, LeadershipLostError):
                    raise
                return self.store.loop.get_task(task_id)  # the new leader already failed it
        return self.store.loop.finish_task(
            task_id, state="succeeded", outcome=details.pop("outcome"), details=details, actor=self.actor
        )

    def _safe_restore(self, model: str, task_id: int) -> bool:
        try:
            return self._restore_champion(model, f"task {task_id} failed")
        except LoopMLError:
            return False

    def _stage(self, policy: Policy, task_id: int, stage: str, details: dict[str, Any] | None = None) -> None:
        if self.leadership is not None:
            self.leadership.check()  # a leader that stalled past its lease must not go on writing
        self.store.loop.update_task(task_id, stage=stage, details=details)
        self.on_progress(policy.name, stage)

    def _retrain(self, policy: Policy, task_id: int, trigger: dict[str, Any]) -> dict[str, Any]:
        from loopml.pipelines.run import run_pipeline

        self._stage(policy, task_id, "training")
        params = policy.pipeline_params(trigger)
        tags = {"loopml.loop.policy": policy.name, "loopml.loop.task": str(task_id)}
        result = run_pipeline(policy.pipeline, params, client=self.tracking, runner=self.runner,
                              experiment=policy.experiment, tags=tags)  # fmt: skip
        candidate = Candidate.of(result.output)

        self._stage(policy, task_id, "registering", {"pipeline_run_id": result.run_id})
        version = self._register(policy, candidate, result.run_id, task_id)
        details: dict[str, Any] = {"pipeline_run_id": result.run_id, "version": version.version,
                                   "run_id": version.run_id}  # fmt: skip

        self._stage(policy, task_id, "gates", details)
        champion_version, champion = self._champion(policy.model)
        explanation = version.evidence.get(EVIDENCE_KEY)
        verdicts = [
            gate.verdict(explanation) if isinstance(gate, ExplainedGate) and explanation else gate(candidate, champion)
            for gate in policy.gates
        ]
        evidence = {**version.evidence, "gates": [v.to_evidence() for v in verdicts],
                    "champion_version": champion_version, "policy": policy.name, "task_id": task_id,
                    "trigger": trigger}  # fmt: skip
        self.registry.set_evidence(policy.model, version.version, evidence, actor=self.actor)
        details["gates"] = {v.gate: v.passed for v in verdicts}
        details["champion_version"] = champion_version
        failed = [v for v in verdicts if not v.passed]
        if failed:
            reasons = "; ".join(f"{c.name}: {c.message}" for v in failed for c in v.failures)
            raise _Rejected(f"version {version.version} failed the gates ({reasons})", details)

        if policy.approval:
            request = self.registry.request_transition(
                policy.model, version.version, "production", comment=f"passed the gates of {policy.name}",
                actor=self.actor,
            )  # fmt: skip
            details["request_id"] = request.request_id
            details["outcome"] = (
                f"version {version.version} passed the gates; awaiting approval (request {request.request_id})"
            )
            return details

        if champion_version is not None:
            for share in policy.steps[:-1]:
                self._canary(policy, task_id, version.version, share, details)
        self._stage(policy, task_id, "promoting", details)
        self._promote(policy, version.version, task_id)
        details["outcome"] = f"version {version.version} promoted to @{CHAMPION}" + (
            f" (replacing version {champion_version})" if champion_version is not None else ""
        )
        return details

    def _register(self, policy: Policy, candidate: Candidate, pipeline_run_id: str, task_id: int) -> ModelVersion:
        parent = self.tracking.get_run(pipeline_run_id)
        run = self.tracking.create_run(
            parent.info.experiment_id, name=f"{policy.name}-candidate", parent_run_id=pipeline_run_id,
            tags={"loopml.loop.policy": policy.name, "loopml.loop.task": str(task_id)}, capture=False,
        )  # fmt: skip
        active = ActiveRun(self.tracking, run)
        try:
            if candidate.train is not None:  # its features are the reference of the new version's monitors
                features = candidate.train.drop(columns=[candidate.target])
                active.log_dataset(features, f"{policy.name}-train", context="train", store_data=True)
            active.log_model(candidate.model, "model", input_example=candidate.X.head(5))
        except BaseException:
            active.end("FAILED")
            raise
        active.end()
        # every candidate carries its explanations (evidence "explanations"), bounded like the explained() gate;
        # a policy with that gate has it explained with the gate's options, and the gate reads the record
        options = next(
            (g.options for g in policy.gates if isinstance(g, ExplainedGate)), {"max_rows": DEFAULT_MAX_ROWS}
        )
        return self.registry.register_model(
            f"runs:/{run.info.run_id}/model", policy.model, tags={"loopml.loop.task": str(task_id)}, actor=self.actor,
            holdout=candidate.holdout, target=candidate.target, explain_options=options,
        )  # fmt: skip

    def _champion(self, model: str) -> tuple[int | None, Any]:
        try:
            version = self.registry.get_model_version(model, CHAMPION)
        except (AliasNotFoundError, ModelNotFoundError):
            return None, None
        return version.version, self.registry.load_model(f"models:/{model}@{CHAMPION}")

    def _canary(self, policy: Policy, task_id: int, version: int, share: float, details: dict[str, Any]) -> None:
        self._stage(policy, task_id, f"canary {share:g}%", details)
        started_ms = int(self.clock() * 1000)
        self.serving.deploy(
            policy.model, CHAMPION, canary={"version": version, "percent": share},
            reason=f"{policy.name}: canary of version {version} at {share:g}%", actor=self.actor,
        )  # fmt: skip

        def read_window() -> pd.DataFrame:
            # failed requests kept (one row each, no prediction): else a canary answering 500 shows no errors
            return self.serving.search_predictions(
                policy.model, since=started_ms, flatten=True, with_feedback=True, keep_failed=True
            )

        def heartbeat(progress: dict[str, Any]) -> None:
            self.store.loop.update_task(task_id, details={"canary": {"percent": share, **progress}})

        verdict = canary_watch.watch(
            read_window, policy.canary, clock=self.clock, sleep=self.sleep, heartbeat=heartbeat
        )
        details.setdefault("canary_verdicts", []).append({"percent": share, "passed": verdict.passed,
                                                         "reason": verdict.reason, "figures": verdict.figures})  # fmt: skip
        self.store.loop.record_canary_verdict(
            task_id, version=version, passed=verdict.passed, reason=verdict.reason,
            evidence={"percent": share, **verdict.figures}, actor=self.actor,
        )  # fmt: skip
        if not verdict.passed:
            self._restore_champion(policy.model, f"{policy.name}: canary of version {version} failed: {verdict.reason}")
            raise _Rejected(f"canary of version {version} at {share:g}% failed: {verdict.reason}", details)

    def _promote(self, policy: Policy, version: int, task_id: int) -> None:
        reason = f"{policy.name} (task {task_id}): passed the gates and the canary"
        # one write: moving @champion makes the version production and archives the one it replaces
        self.registry.set_alias(policy.model, CHAMPION, version, reason=reason, actor=self.actor)
        self.serving.deploy(policy.model, CHAMPION, reason=reason, actor=self.actor)
