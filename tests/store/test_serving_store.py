"""The ServingStore contract on every backend: deployments (audited), the prediction log, feedback."""

from __future__ import annotations

import pytest

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.serving import Feedback, PredictionRecord
from loopml.errors import (
    AliasNotFoundError,
    DeploymentNotFoundError,
    InvalidValueError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    PredictionNotFoundError,
)


@pytest.fixture
def serving(store):
    return store.serving


@pytest.fixture
def churn(store):
    """Model "churn" with versions 1-3, @champion -> 2; model "fraud" with version 1."""
    experiment = store.tracking.create_experiment("serving")
    run = store.tracking.create_run(experiment.experiment_id, name="r", user="u", start_time=1)
    manifest = store.artifacts.put_bytes(b"{}")  # a version pins its manifest, so the run needs one
    store.tracking.log_artifact_entries(run.run_id, [ArtifactEntry("model/loopml-model.json", manifest, 2)])
    for _ in range(3):
        store.registry.create_version("churn", run_id=run.run_id, source=f"runs:/{run.run_id}/model",
                                      description=None, tags={}, actor="setup")  # fmt: skip
    store.registry.create_version("fraud", run_id=run.run_id, source=f"runs:/{run.run_id}/model",
                                  description=None, tags={}, actor="setup")  # fmt: skip
    store.registry.set_alias("churn", "champion", 2, actor="setup", reason=None)
    return "churn"


def deploy(serving, target, *, canary=None, shadow=None, name="churn", actor="alice", reason=None):
    return serving.create_deployment(
        name,
        target=target,
        canary_version=None if canary is None else canary[0],
        canary_percent=None if canary is None else canary[1],
        shadow_version=shadow,
        actor=actor,
        reason=reason,
    )


def record(request_id, time, *, model="churn", version=1, role="main", status=200, outputs="[1]"):
    return PredictionRecord(request_id, time, model, version, role, '{"inputs": {"x": 1}}', outputs, 1.5, status)


# -- deployments ---------------------------------------------------------------------------


def test_a_deployment_records_its_split_and_is_audited_in_the_same_transaction(store, serving, churn):
    first = deploy(serving, "1", reason="first release")
    assert (first.name, first.target, first.version, first.alias, first.action) == ("churn", "1", 1, None, "deploy")
    assert first.previous_id is None and first.created_by == "alice" and first.reason == "first release"
    second = deploy(serving, "champion", canary=(3, 10.0), shadow=1)
    assert (second.version, second.alias, second.canary_version, second.canary_percent, second.shadow_version) == (
        2, "champion", 3, 10.0, 1,
    )  # fmt: skip
    assert second.previous_id == first.deployment_id
    assert serving.current_deployment("churn") == second
    events = store.audit.list_events(action="deployment.*")
    assert [(e.action, e.target, e.actor) for e in events] == [("deployment.create", "churn", "alice")] * 2
    assert events[0].before is None and events[0].after["target"] == "1" and events[0].reason == "first release"
    assert events[1].before["target"] == "1"
    assert events[1].after["canary"] == {"version": 3, "percent": 10.0} and events[1].after["shadow"] == {"version": 1}
    assert [e.action for e in store.audit.list_events(target="churn")][-2:] == ["deployment.create"] * 2


def test_an_alias_deployment_follows_the_alias(store, serving, churn):
    deploy(serving, "champion")
    assert serving.current_deployment("churn").version == 2
    store.registry.set_alias("churn", "champion", 3, actor="bob", reason=None)
    assert serving.current_deployment("churn").version == 3
    store.registry.delete_alias("churn", "champion", actor="bob", reason=None)
    assert serving.current_deployment("churn").version is None  # still deployed, the alias is gone


def test_deploying_what_does_not_exist_is_refused_and_changes_nothing(store, serving, churn):
    with pytest.raises(ModelNotFoundError):
        deploy(serving, "1", name="nope")
    with pytest.raises(ModelVersionNotFoundError):
        deploy(serving, "9")
    with pytest.raises(AliasNotFoundError, match="champion"):
        deploy(serving, "champio")
    with pytest.raises(ModelVersionNotFoundError):
        deploy(serving, "1", canary=(9, 5.0))
    with pytest.raises(ModelVersionNotFoundError):
        deploy(serving, "1", shadow=9)
    for bad in [{"target": "1", "canary": (2, 101.0)}, {"target": "1", "canary": (2, -1.0)}, {"target": "bad alias!"},
                {"target": "latest"}, {"target": "0"}, {"target": "²"}, {"target": "1", "canary": (2, "5")},
                {"target": "1", "canary": (2, True)}, {"target": "1", "canary": (0, 5.0)}]:  # fmt: skip
        with pytest.raises(InvalidValueError):
            deploy(serving, bad["target"], canary=bad.get("canary"))
    with pytest.raises(DeploymentNotFoundError):
        serving.current_deployment("churn")
    assert store.audit.list_events(action="deployment.*") == []


def test_rollback_walks_back_through_history(store, serving, churn):
    with pytest.raises(DeploymentNotFoundError, match="never been deployed"):
        serving.rollback_deployment("churn", actor="bob", reason=None)
    with pytest.raises(ModelNotFoundError):
        serving.rollback_deployment("nope", actor="bob", reason=None)
    one = deploy(serving, "1")
    with pytest.raises(DeploymentNotFoundError, match="no earlier one"):
        serving.rollback_deployment("churn", actor="bob", reason=None)
    deploy(serving, "2", canary=(3, 20.0))
    deploy(serving, "3")
    back = serving.rollback_deployment("churn", actor="bob", reason="v3 is slow")
    assert (back.action, back.version, back.canary_version, back.canary_percent) == ("rollback", 2, 3, 20.0)
    assert serving.current_deployment("churn") == back
    again = serving.rollback_deployment("churn", actor="bob", reason=None)
    assert (again.version, again.canary_version, again.previous_id) == (1, None, None)
    assert again.previous_id == one.previous_id
    with pytest.raises(DeploymentNotFoundError):
        serving.rollback_deployment("churn", actor="bob", reason=None)
    rollbacks = store.audit.list_events(action="deployment.rollback")
    assert [(e.actor, e.reason, e.before["target"], e.after["target"]) for e in rollbacks] == [
        ("bob", "v3 is slow", "3", "2"),
        ("bob", None, "2", "1"),
    ]


def test_current_and_listed_deployments(serving, churn):
    assert serving.current_deployments() == []
    a = deploy(serving, "1")
    b = deploy(serving, "1", name="fraud")
    c = deploy(serving, "champion")
    assert serving.current_deployments() == [c, b]  # one per model, by name
    assert serving.current_deployments(["fraud", "nope"]) == [b]
    assert serving.current_deployments([]) == []
    assert serving.list_deployments() == [c, b, a]
    assert serving.list_deployments("churn") == [c, a]
    assert serving.list_deployments("churn", max_results=1) == [c]
    assert serving.resolve_aliases([("churn", "champion"), ("churn", "nope"), ("nope", "champion")]) == {
        ("churn", "champion"): 2
    }
    assert serving.resolve_aliases([]) == {}


# -- prediction log and feedback ---------------------------------------------------------------


def test_a_request_id_already_in_the_log_is_stored_under_a_new_id(serving):
    """The first answer keeps its id (a caller repeating ids after a restart, two replicas given one id)."""
    serving.log_predictions([record("r1", 10), record("r1", 10, role="shadow", version=2)])
    serving.log_predictions(
        [record("r1", 20), record("r1", 20, role="shadow", version=2), record("r1", 21, model="fraud"),
         record("r2", 22), record("r2", 23, role="canary")]
    )  # fmt: skip
    churn = serving.read_predictions("churn")
    ids = [(r.request_id, r.role) for r in churn]
    assert ids[:2] == [("r1", "main"), ("r1", "shadow")] and ids[4] == ("r2", "main") and len(set(ids)) == 6
    renamed = [r for r in churn if r.time == 20]
    assert {r.role for r in renamed} == {"main", "shadow"} and len({r.request_id for r in renamed}) == 1
    assert renamed[0].request_id.startswith("r1.dup.")  # the shadow follows its answer's new id
    assert churn[-1].role == "canary" and churn[-1].request_id.startswith("r2.dup.")
    [fraud] = serving.read_predictions("fraud")
    assert fraud.request_id.startswith("r1.dup.")  # feedback names the id alone: unique across models too


def test_predictions_are_appended_in_batches_and_read_back_by_time_version_and_role(serving, churn):
    serving.log_predictions([])
    batch = [record(f"r{i}", 1_000 + i, version=1 + i % 2) for i in range(10)]
    batch.append(
        record("r0", 1_000, version=3, role="shadow", outputs='{"error": {"type": "SchemaError"}}', status=422)
    )
    batch.append(record("f0", 1_005, model="fraud"))
    serving.log_predictions(batch)
    every = serving.read_predictions("churn")
    assert len(every) == 11 and every[0] == batch[0] and every[1] == batch[10]  # by time, then insertion order
    assert [r.request_id for r in serving.read_predictions("churn", since=1_003, until=1_006)] == ["r3", "r4", "r5"]
    assert {r.version for r in serving.read_predictions("churn", version=2)} == {2}
    shadow = serving.read_predictions("churn", role="shadow")
    assert [(r.request_id, r.status, r.outputs) for r in shadow] == [("r0", 422, '{"error": {"type": "SchemaError"}}')]
    assert len(serving.read_predictions("churn", max_results=3)) == 3
    assert serving.read_predictions("nope") == []
    with pytest.raises(InvalidValueError):
        serving.read_predictions("churn", role="other")


def test_long_bodies_are_stored_compressed_and_read_back_exactly(serving, churn, db_url):
    import json

    import sqlalchemy as sa

    long_body = json.dumps({"records": [{"x": i / 7, "city": "Zürich ✓"} for i in range(400)]}, ensure_ascii=False)
    short = record("short", 1_000)
    long = PredictionRecord("long", 1_001, "churn", 1, "main", long_body, "[1]", 2.0, 200)
    serving.log_predictions([short, long])
    assert serving.read_predictions("churn") == [short, long]
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = {
                row.request_id: row
                for row in conn.execute(sa.text("SELECT request_id, inputs, inputs_zstd FROM predictions"))
            }
    finally:
        engine.dispose()
    assert rows["short"].inputs == short.inputs and rows["short"].inputs_zstd is None  # short: text, as it came
    stored = bytes(rows["long"].inputs_zstd)
    assert rows["long"].inputs == "" and len(stored) < len(long_body.encode()) / 3  # long: compressed
    assert "Zürich".encode() not in stored


def test_feedback_is_joined_to_the_model_through_the_prediction_log(serving, churn):
    serving.log_predictions([record("r1", 10), record("r2", 11), record("f1", 12, model="fraud")])
    with pytest.raises(PredictionNotFoundError) as refused:  # r9 was never answered: the batch is refused whole
        serving.log_feedback([Feedback("r1", 1, 100), Feedback("r9", "late", 102)])
    assert refused.value.request_ids == ["r9"] and "'r9'" in refused.value.message
    assert serving.read_feedback() == []
    serving.log_predictions([record("r9", 13, model="other")])
    serving.log_feedback([Feedback("r1", 1, 100), Feedback("f1", {"fraud": True}, 101), Feedback("r9", "late", 102)])
    serving.log_feedback([Feedback("r1", 0, 103)])  # corrected later: both kept, oldest first
    assert [(f.request_id, f.label) for f in serving.read_feedback(name="churn")] == [("r1", 1), ("r1", 0)]
    assert [f.label for f in serving.read_feedback(name="fraud")] == [{"fraud": True}]
    assert [f.request_id for f in serving.read_feedback()] == ["r1", "f1", "r9", "r1"]
    assert [f.request_id for f in serving.read_feedback(request_ids=["r9", "f1"])] == ["f1", "r9"]
    assert [f.time for f in serving.read_feedback(since=101, until=103)] == [101, 102]
    assert serving.read_feedback(request_ids=[]) == []
    with pytest.raises(InvalidValueError, match="request id"):
        serving.log_feedback([Feedback("has space", 1, 1)])
    with pytest.raises(InvalidValueError, match="JSON"):
        serving.log_feedback([Feedback("r1", float("nan"), 1)])
    assert len(serving.read_feedback()) == 4  # the refused batches wrote nothing
