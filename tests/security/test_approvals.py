"""Finding 4: when a model requires approval nothing unapproved is served, and audit events cannot be forged.

Before the fix an editor could deploy a ``candidate`` (or canary or shadow it),
or move the alias a deployment follows, and it was served; only the production
stage label needed admin. Editors could also append any audit event through
``POST /api/v1/audit/events``. The checks now live in the store, in the
transaction of the change, so every backend and the server refuse alike.
"""

from __future__ import annotations

import httpx
import pytest

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.registry import Stage
from loopml.errors import ApprovalRequiredError, MonitorNotFoundError, TaskEndedError


@pytest.fixture
def guarded(store):
    """Model "loans" (requires approval): v1 approved and in production behind @champion, v2 a candidate."""
    experiment = store.tracking.create_experiment("approvals")
    run = store.tracking.create_run(experiment.experiment_id, name="r", user="u", start_time=1)
    manifest = store.artifacts.put_bytes(b"{}")
    store.tracking.log_artifact_entries(run.run_id, [ArtifactEntry("model/loopml-model.json", manifest, 2)])
    registry = store.registry
    registry.create_model("loans", description=None, tags={}, require_approval=True, actor="setup")
    for _ in range(2):
        registry.create_version("loans", run_id=run.run_id, source=f"runs:/{run.run_id}/model", description=None,
                                tags={}, actor="setup")  # fmt: skip
    request = registry.create_request("loans", 1, Stage.PRODUCTION, actor="alice", comment=None)
    registry.decide_request(request.request_id, approve=True, actor="bob", comment=None)
    registry.transition("loans", 1, Stage.PRODUCTION, actor="alice", reason=None, archive_existing=True,
                        request_id=request.request_id)  # fmt: skip
    registry.set_alias("loans", "champion", 1, actor="alice", reason=None)
    store.serving.create_deployment("loans", target="champion", canary_version=None, canary_percent=None,
                                    shadow_version=None, actor="alice", reason=None)  # fmt: skip
    return store


def _deploy(store, target="champion", canary=None, shadow=None):
    return store.serving.create_deployment(
        "loans", target=target, canary_version=canary, canary_percent=None if canary is None else 10.0,
        shadow_version=shadow, actor="mallory", reason=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    "how", [{"target": "2"}, {"canary": 2}, {"shadow": 2}], ids=["target", "canary", "shadow"]
)
def test_an_unapproved_version_cannot_be_deployed_in_any_role(guarded, how):
    before = guarded.serving.current_deployment("loans")
    with pytest.raises(ApprovalRequiredError, match="version 2"):
        _deploy(guarded, **how)
    assert guarded.serving.current_deployment("loans") == before


def test_the_alias_a_deployment_follows_cannot_be_moved_to_an_unapproved_version(guarded):
    with pytest.raises(ApprovalRequiredError, match="@champion"):
        guarded.registry.set_alias("loans", "champion", 2, actor="mallory", reason=None)
    assert guarded.registry.get_version_by_alias("loans", "champion").version == 1
    guarded.registry.set_alias("loans", "review", 2, actor="mallory", reason=None)  # an alias nobody serves is fine
    with pytest.raises(ApprovalRequiredError):
        _deploy(guarded, target="review")


def test_production_without_an_approved_request_is_refused_by_the_store(guarded):
    with pytest.raises(ApprovalRequiredError):
        guarded.registry.transition("loans", 2, Stage.PRODUCTION, actor="mallory", reason=None, archive_existing=True)
    assert guarded.registry.get_version("loans", 2).stage is Stage.CANDIDATE


def test_once_approved_the_version_may_be_canaried_and_promoted(guarded):
    request = guarded.registry.create_request("loans", 2, Stage.PRODUCTION, actor="alice", comment=None)
    with pytest.raises(ApprovalRequiredError):
        _deploy(guarded, canary=2)  # pending is not approved
    guarded.registry.decide_request(request.request_id, approve=True, actor="bob", comment=None)
    assert _deploy(guarded, canary=2).canary_version == 2
    guarded.registry.set_alias("loans", "champion", 2, actor="alice", reason="approved")
    assert guarded.serving.rollback_deployment("loans", actor="alice", reason=None).canary_version is None


def test_a_model_without_approval_deploys_any_version(store):
    experiment = store.tracking.create_experiment("free")
    run = store.tracking.create_run(experiment.experiment_id, name="r", user="u", start_time=1)
    manifest = store.artifacts.put_bytes(b"{}")
    store.tracking.log_artifact_entries(run.run_id, [ArtifactEntry("model/loopml-model.json", manifest, 2)])
    store.registry.create_version("free", run_id=run.run_id, source=f"runs:/{run.run_id}/model", description=None,
                                  tags={}, actor="setup")  # fmt: skip
    deployed = store.serving.create_deployment("free", target="1", canary_version=None, canary_percent=None,
                                               shadow_version=None, actor="x", reason=None)  # fmt: skip
    assert deployed.target == "1"


def test_loop_and_monitor_events_are_written_by_the_store_actions(store):
    task = store.loop.start_task("p", "loans", trigger="manual", trigger_ref=None, actor="agent")
    assert store.loop.start_task("p", "loans", trigger="alert", trigger_ref="7", actor="agent", evidence={"a": 1}) is None
    (skipped,) = store.audit.list_events(action="loop.trigger.skipped")
    assert (skipped.actor, skipped.target, skipped.evidence["trigger_ref"], skipped.evidence["a"]) == ("agent", "loans", "7", 1)

    store.loop.record_canary_verdict(task.task_id, version=3, passed=False, reason="worse", evidence={"n": 5},
                                     actor="agent")  # fmt: skip
    (verdict,) = store.audit.list_events(action="loop.canary.*")
    assert (verdict.action, verdict.target, verdict.evidence) == ("loop.canary.fail", "loans/3", {"task_id": task.task_id, "n": 5})
    store.loop.finish_task(task.task_id, state="failed", outcome="x", details=None, actor="agent")
    with pytest.raises(TaskEndedError):
        store.loop.record_canary_verdict(task.task_id, version=3, passed=True, reason="", evidence={}, actor="agent")
    with pytest.raises(MonitorNotFoundError):
        store.monitoring.record_action_failures("nope", [{"error": "down"}], actor="agent")


def test_editors_cannot_append_free_form_audit_events(auth_server):
    url, store, tokens = auth_server
    before = store.audit.list_events()
    for role in ("editor", "admin"):
        forged = {"actor": "alice", "action": "request.approve", "target_type": "model_version", "target": "loans/2",
                  "after": {"status": "approved"}}  # fmt: skip
        answer = httpx.post(
            f"{url}/api/v1/audit/events", json=forged, headers={"Authorization": f"Bearer {tokens[role]}"}
        )
        assert answer.status_code == 405, (role, answer.text)
    assert store.audit.list_events() == before
    assert not hasattr(store.audit, "log_event")
