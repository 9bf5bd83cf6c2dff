"""The continuous-training agent on a real model: alert -> retrain -> gates -> canary -> promotion, and its faults."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from pandas.testing import assert_frame_equal

import loopml
from loopml.entities.monitoring import AlertSpec
from loopml.entities.serving import Feedback, PredictionRecord
from loopml.errors import NotFoundError
from loopml.loop import Agent, CanaryRules, beats_champion, policy, thresholds
from loopml.registry.client import RegistryClient
from loopml.serving.client import ServingClient
from loopml.tracking.runs import ActiveRun
from tests.loop import library

MODEL = "bc"
MONITOR = "bc-drift"
FAST = CanaryRules(window_s=0.3, min_requests=20, min_labelled=10, timeout_s=5)


@pytest.fixture
def champion(client):
    """Version 1 of ``bc`` (a weak model) as @champion, deployed, with a monitor."""
    registry = RegistryClient(client)
    run = client.create_run("loop-tests", capture=False)
    active = ActiveRun(client, run)
    frame = library.data()
    active.log_model(library.weak_champion(), "model", input_example=frame[library.FEATURES].head(3))
    active.end()
    registry.register_model(f"runs:/{run.info.run_id}/model", MODEL)
    registry.set_alias(MODEL, "champion", 1)
    ServingClient(client).deploy(MODEL, "champion")
    client.store.monitoring.put_monitor(MONITOR, MODEL, {"checks": ["data_drift"]}, actor="test")
    return registry


def raise_alert(client, message="3 of 5 columns drifted"):
    _, alerts = client.store.monitoring.record_result(
        MONITOR, model=MODEL, version=1, status="alert", summary={}, figures={},
        alerts=[AlertSpec("data_drift", message, {"drifted": ["mean radius"]})], actor="monitor",
    )  # fmt: skip
    return alerts[0]


class Traffic:
    """Stands in for live traffic: each sleep of the agent logs a batch of main and canary predictions."""

    def __init__(self, client, *, canary_status=200, canary_correct=True):
        self.store = client.store
        self.canary_status = canary_status
        self.canary_correct = canary_correct

    def __call__(self, seconds: float) -> None:
        now = int(time.time() * 1000)
        records, feedback = [], []
        for role, n in (("main", 30), ("canary", 10)):
            for _ in range(n):
                rid = uuid.uuid4().hex
                ok = role == "main" or self.canary_status == 200
                right = role == "main" or self.canary_correct
                records.append(PredictionRecord(rid, now, MODEL, 1 if role == "main" else 2, role,
                                                json.dumps({"inputs": {"x": 1}}), json.dumps([1] if ok else {"error": "x"}),
                                                1.0, 200 if ok else 500))  # fmt: skip
                feedback.append(Feedback(rid, 1 if right else 0, now))
        self.store.serving.log_predictions(records)
        self.store.serving.log_feedback(feedback)
        time.sleep(min(seconds, 0.05))


def make_agent(client, pol, **kw):
    return Agent([pol], client=client, sleep=kw.pop("sleep", Traffic(client)), **kw)


def test_an_alert_retrains_gates_canaries_and_promotes(client, champion):
    pol = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, gates=[thresholds({"roc_auc": 0.9}),
                 beats_champion("roc_auc")], rollout="canary:10%->100%", canary=FAST)  # fmt: skip
    agent = make_agent(client, pol)
    assert [d.action for d in agent.tick()] == ["idle"]  # no alert yet
    alert = raise_alert(client)

    [decision] = agent.tick()
    assert decision.action == "started", decision
    task = decision.task
    assert task.state == "succeeded", task.details.get("traceback", task.outcome)
    assert task.details["version"] == 2 and "promoted" in task.outcome
    assert [s["stage"] for s in task.stages][:4] == ["started", "training", "registering", "gates"]
    assert "canary 10%" in [s["stage"] for s in task.stages]

    assert champion.get_model_version(MODEL, "champion").version == 2
    assert champion.get_model_version(MODEL, 2).stage.value == "production"
    deployment = ServingClient(client).get_deployment(MODEL)
    assert deployment.target == "champion" and deployment.canary_version is None
    evidence = champion.get_model_version(MODEL, 2).evidence
    assert [g["gate"] for g in evidence["gates"]] == ["thresholds", "challenger_vs_champion"]
    assert evidence["trigger"]["alert_ids"] == [alert.alert_id]

    actions = [e.action for e in client.store.audit.list_events(target=MODEL)]
    for expected in ("monitor.alert", "loop.task.start", "deployment.create", "loop.canary.pass", "alias.move",
                     "model_version.transition", "loop.task.succeeded"):  # fmt: skip
        assert expected in actions, (expected, actions)
    assert [d.action for d in agent.tick()] == ["idle"]  # the alert was handled once


def test_the_training_data_a_pipeline_declares_becomes_the_new_champions_monitoring_reference(client, champion):
    from loopml.monitoring.windows import lineage_reference

    for pipeline, version in ((library.retrain, 2), (library.retrain_declaring_its_data, 3)):
        pol = policy(MODEL, pipeline=pipeline, monitor=MONITOR, rollout="direct")
        decision = make_agent(client, pol).trigger(pol)
        assert decision.task.state == "succeeded", decision.task.details.get("traceback", decision.task.outcome)
        assert champion.get_model_version(MODEL, "champion").version == version
    with pytest.raises(NotFoundError, match="No training dataset found for bc version 2"):
        lineage_reference(client, MODEL, 2)  # the pipeline said nothing of its training data
    reference = lineage_reference(client, MODEL, 3)
    expected = library.data().iloc[:380].drop(columns="target")
    assert_frame_equal(reference.frame.reset_index(drop=True), expected.reset_index(drop=True))
    run = client.get_run(champion.get_model_version(MODEL, 3).run_id)
    assert [item.context for item in run.inputs] == ["train"] and reference.run_id == run.run_id


def test_a_second_alert_while_a_retrain_is_in_flight_starts_nothing(client, champion):
    pol = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, canary=FAST)
    in_flight = client.store.loop.start_task(pol.name, MODEL, trigger="manual", trigger_ref=None, actor="other-agent")
    raise_alert(client)
    [decision] = make_agent(client, pol).tick()
    assert decision.action == "skipped"
    assert [t.task_id for t in client.store.loop.list_tasks(policy=pol.name)] == [in_flight.task_id]
    assert champion.search_model_versions(MODEL)[-1].version == 1
    assert client.store.audit.list_events(action="loop.trigger.skipped")


def test_a_failed_gate_rejects_and_the_champion_stays(client, champion):
    pol = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, gates=[thresholds({"roc_auc": 0.9999})], canary=FAST)
    raise_alert(client)
    [decision] = make_agent(client, pol).tick()
    assert decision.task.state == "rejected" and "failed the gates" in decision.task.outcome
    assert champion.get_model_version(MODEL, "champion").version == 1
    assert champion.get_model_version(MODEL, 2).evidence["gates"][0]["passed"] is False
    assert ServingClient(client).get_deployment(MODEL).canary_version is None


def test_a_failing_canary_is_rolled_back(client, champion):
    pol = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, canary=FAST)
    raise_alert(client)
    agent = make_agent(client, pol, sleep=Traffic(client, canary_status=500))
    [decision] = agent.tick()
    assert decision.task.state == "rejected" and "canary error rate 100.00%" in decision.task.outcome
    deployment = ServingClient(client).get_deployment(MODEL)
    assert deployment.canary_version is None and deployment.target == "champion"
    assert champion.get_model_version(MODEL, "champion").version == 1
    assert client.store.audit.list_events(action="loop.canary.fail")


def test_a_canary_with_worse_accuracy_is_rolled_back(client, champion):
    pol = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, canary=FAST)
    raise_alert(client)
    [decision] = make_agent(client, pol, sleep=Traffic(client, canary_correct=False)).tick()
    assert decision.task.state == "rejected" and "accuracy" in decision.task.outcome


def test_a_step_that_raises_fails_the_task_with_its_traceback(client, champion):
    pol = policy(MODEL, pipeline=library.broken, monitor=MONITOR, canary=FAST)
    raise_alert(client)
    [decision] = make_agent(client, pol).tick()
    assert decision.task.state == "failed" and "feature store is down" in decision.task.details["traceback"]
    assert champion.get_model_version(MODEL, "champion").version == 1
    assert len(champion.search_model_versions(MODEL)) == 1


def test_a_task_whose_agent_died_is_failed_and_the_champion_restored(client, champion):
    pol = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, canary=FAST)
    dead = client.store.loop.start_task(pol.name, MODEL, trigger="alert", trigger_ref="1", actor="dead-agent")
    ServingClient(client).deploy(MODEL, "champion", canary={"version": 1, "percent": 10})  # a canary left behind
    later = time.time() + 3600
    decisions = Agent([pol], client=client, clock=lambda: later).recover()
    assert [d.action for d in decisions] == ["recovered"]
    task = client.store.loop.get_task(dead.task_id)
    assert task.state == "failed" and "agent stopped" in task.outcome and task.details["champion_restored"]
    assert ServingClient(client).get_deployment(MODEL).canary_version is None


def test_a_long_step_keeps_its_task_alive(client, champion, monkeypatch):
    pol = policy(MODEL, pipeline=library.slow_retrain, monitor=MONITOR, rollout="direct", canary=FAST)
    beats = []
    update = client.store.loop.update_task

    def counting(task_id, *, stage=None, details=None):
        if stage is None and details is None:  # a bare heartbeat, not a stage or canary progress
            beats.append(task_id)
        return update(task_id, stage=stage, details=details)

    monkeypatch.setattr(client.store.loop, "update_task", counting)
    raise_alert(client)
    [decision] = make_agent(client, pol, stale_after_s=0.3).tick()
    assert decision.task.state == "succeeded", decision.task.details.get("traceback", decision.task.outcome)
    assert beats and set(beats) == {decision.task.task_id}  # heartbeats while the 1 s step ran


def test_a_holdout_without_the_target_fails_with_a_clear_error(client, champion):
    pol = policy(MODEL, pipeline=library.no_target, monitor=MONITOR, canary=FAST)
    raise_alert(client)
    [decision] = make_agent(client, pol).tick()
    assert decision.task.state == "failed" and "InvalidValueError" in decision.task.outcome
    assert "target column 'label'" in decision.task.outcome
    assert champion.get_model_version(MODEL, "champion").version == 1


def test_approval_stops_at_a_request(client, champion):
    pol = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, approval=True, canary=FAST)
    raise_alert(client)
    [decision] = make_agent(client, pol).tick()
    assert decision.task.state == "succeeded" and "awaiting approval" in decision.task.outcome
    assert champion.get_model_version(MODEL, "champion").version == 1
    assert champion.list_transition_requests(MODEL)[0].version == 2


def test_bad_policies_are_refused():
    with pytest.raises(loopml.errors.InvalidValueError, match="monitor, a schedule"):
        policy(MODEL, pipeline=library.retrain)
    with pytest.raises(loopml.errors.InvalidValueError, match="rollout"):
        policy(MODEL, pipeline=library.retrain, monitor=MONITOR, rollout="canary:10%->50%")
    for plan in ("canary:100%->junk", "canary:50%->100%->"):
        with pytest.raises(loopml.errors.InvalidValueError, match="rollout"):
            policy(MODEL, pipeline=library.retrain, monitor=MONITOR, rollout=plan)
    with pytest.raises(loopml.errors.InvalidValueError, match="cron"):
        policy(MODEL, pipeline=library.retrain, schedule="every day")
    with pytest.raises(loopml.errors.InvalidValueError, match="pipeline"):
        policy(MODEL, pipeline=lambda: None, monitor=MONITOR)
    for name in ("team/churn", " churn"):  # a '/' cannot travel as one URL segment to a loopml server
        with pytest.raises(loopml.errors.InvalidValueError, match="policy name"):
            policy(MODEL, pipeline=library.retrain, monitor=MONITOR, name=name)
