"""The registry on every backend: versions, aliases, lifecycle, approvals, audit, lineage."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest
import sqlalchemy as sa

from loopml.entities.registry import RequestStatus, Stage
from loopml.errors import (
    AliasNotFoundError,
    ApprovalRequiredError,
    ArtifactNotFoundError,
    InvalidTransitionError,
    InvalidUriError,
    InvalidValueError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RunNotFoundError,
)
from loopml.registry.client import RegistryClient
from loopml.registry.lineage import lineage


@pytest.fixture
def registry(client):
    return RegistryClient(client)


def model_run(client, name="model", **kwargs):
    """A finished run holding a (placeholder) packaged model at ``name``."""
    run = client.create_run("registry", capture=False, **kwargs)
    client.log_artifact_bytes(run.run_id, {f"{name}/loopml-model.json": b"{}", f"{name}/model.bin": b"weights"})
    client.end_run(run.run_id)
    return run


def events(registry, **filters):
    return [(e.action, e.target) for e in registry.tracking.store.audit.list_events(**filters)]


def test_versions_are_numbered_per_model_and_linked_to_their_run(registry, client):
    first, second = model_run(client), model_run(client)
    v1 = registry.register_model(f"runs:/{first.run_id}/model", "churn", description="baseline", tags={"team": "risk"})
    v2 = registry.register_model(f"runs:/{second.run_id}/model", "churn")
    other = registry.register_model(f"runs:/{first.run_id}/model", "fraud")
    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    assert v1.run_id == first.run_id and v1.source == f"runs:/{first.run_id}/model"
    assert v1.stage is Stage.CANDIDATE and v1.tags == {"team": "risk"} and v1.description == "baseline"
    assert registry.get_registered_model("churn").latest_version == 2
    assert [v.version for v in registry.search_model_versions("churn")] == [2, 1]
    assert registry.get_model_version("churn", "latest").version == 2
    assert registry.resolve("models:/churn/1") == registry.get_model_version("churn", 1)


def test_registering_what_is_not_a_model_changes_nothing(registry, client):
    run = model_run(client)
    with pytest.raises(ArtifactNotFoundError, match=r"no packaged model at 'nope'.*model"):
        registry.register_model(f"runs:/{run.run_id}/nope", "churn")
    with pytest.raises(RunNotFoundError):
        registry.register_model(f"runs:/{'0' * 32}/model", "churn")
    with pytest.raises(InvalidUriError):
        registry.register_model("models:/churn/1", "churn")
    with pytest.raises(InvalidValueError, match="Invalid model name"):
        registry.register_model(f"runs:/{run.run_id}/model", "bad/name")
    assert registry.search_models() == []
    assert events(registry) == []


def test_aliases_move_and_resolve(registry, client):
    for _ in range(3):
        registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn")
    registry.set_alias("churn", "champion", 1, reason="first good one")
    registry.set_alias("churn", "challenger", 3)
    registry.set_alias("churn", "champion", 2, reason="better AUC")
    assert registry.get_model_version("churn", "champion").version == 2
    assert registry.resolve("models:/churn@challenger").version == 3
    assert registry.get_model_version("churn", 2).aliases == ("champion",)
    assert dict(registry.get_registered_model("churn").aliases) == {"challenger": 3, "champion": 2}
    registry.delete_alias("churn", "challenger")
    with pytest.raises(AliasNotFoundError, match="champion"):
        registry.get_model_version("churn", "challenger")
    moved = registry.tracking.store.audit.list_events(action="alias.move")
    assert [(e.before, e.after, e.reason) for e in moved] == [({"version": 1}, {"version": 2}, "better AUC")]


def test_bad_alias_requests_name_the_problem_and_change_nothing(registry, client):
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn")
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "fraud")
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "fraud")
    before = events(registry)
    with pytest.raises(ModelVersionNotFoundError, match="'churn' has no version 2"):
        registry.set_alias("churn", "champion", 2)  # version 2 exists only for another model
    with pytest.raises(ModelNotFoundError, match="Did you mean 'churn'"):
        registry.set_alias("chrun", "champion", 1)
    for bad in ("latest", "1x!", "", "7"):
        with pytest.raises(InvalidValueError, match="Invalid alias"):
            registry.set_alias("churn", bad, 1)
    with pytest.raises(AliasNotFoundError):
        registry.delete_alias("churn", "champion")
    assert events(registry) == before
    assert registry.get_registered_model("churn").aliases == {}


@pytest.mark.parametrize(
    "uri",
    ["models:/churn", "models:/churn/0", "models:/churn/x", "models:/churn@", "runs:/abc/model", "models:/a/b/c", "churn"],
)
def test_malformed_model_uris_are_refused(registry, uri):
    with pytest.raises(InvalidUriError):
        registry.resolve(uri)


def test_production_archives_the_previous_production_version(registry, client):
    for _ in range(2):
        registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn")
    registry.transition("churn", 1, "staging")
    registry.transition("churn", 1, "production", reason="passed gates")
    registry.transition("churn", 2, Stage.PRODUCTION)
    assert registry.get_model_version("churn", 1).stage is Stage.ARCHIVED
    assert registry.get_model_version("churn", 2).stage is Stage.PRODUCTION
    assert [v.version for v in registry.search_model_versions("churn", stage="production")] == [2]
    registry.transition("churn", 1, "staging")
    registry.transition("churn", 1, "production", archive_existing=False)
    assert len(registry.search_model_versions("churn", stage="production")) == 2


def test_invalid_transitions_are_refused(registry, client):
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn")
    with pytest.raises(InvalidValueError, match=r"Unknown stage 'prod'.*candidate, staging, production, archived"):
        registry.transition("churn", 1, "prod")
    with pytest.raises(InvalidTransitionError, match="candidate"):
        registry.transition("churn", 1, "candidate")
    registry.transition("churn", 1, "archived")
    with pytest.raises(InvalidTransitionError, match="archived"):
        registry.transition("churn", 1, "production")
    assert registry.get_model_version("churn", 1).stage is Stage.ARCHIVED


def test_production_needs_an_approval_from_someone_else(registry, client):
    registry.create_registered_model("credit", require_approval=True, actor="alice")
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "credit", actor="alice")
    with pytest.raises(ApprovalRequiredError, match="request_transition"):
        registry.transition("credit", 1, "production", actor="alice")
    request = registry.request_transition("credit", 1, "production", comment="AUC +2%", actor="alice")
    assert request.status is RequestStatus.PENDING
    with pytest.raises(ApprovalRequiredError):
        registry.transition("credit", 1, "production", actor="alice")  # pending is not approved
    with pytest.raises(InvalidTransitionError, match="cannot approve it too"):
        registry.approve(request.request_id, actor="alice")
    approved = registry.approve(request.request_id, comment="looks good", actor="bob")
    assert (approved.status, approved.decided_by) == (RequestStatus.APPROVED, "bob")
    with pytest.raises(InvalidTransitionError, match="already decided"):
        registry.reject(request.request_id, actor="carol")
    moved = registry.transition("credit", 1, "production", actor="alice", reason="approved by bob")
    assert moved.stage is Stage.PRODUCTION
    assert registry.list_transition_requests("credit")[0].status is RequestStatus.APPLIED
    assert registry.get_model_version("credit", "champion").version == 1  # production moved @champion
    registry.delete_alias("credit", "champion", actor="alice")  # the champion's version cannot leave production
    registry.transition("credit", 1, "staging", actor="alice")
    with pytest.raises(ApprovalRequiredError):  # an applied approval is not reusable
        registry.transition("credit", 1, "production", actor="alice")


def test_a_rejected_request_does_not_allow_the_transition(registry, client):
    registry.create_registered_model("credit", require_approval=True)
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "credit")
    request = registry.request_transition("credit", 1, "production", actor="alice")
    registry.reject(request.request_id, comment="bias check missing", actor="bob")
    with pytest.raises(ApprovalRequiredError):
        registry.transition("credit", 1, "production")
    assert registry.get_model_version("credit", 1).stage is Stage.CANDIDATE


def test_search_models_by_name_and_tags(registry, client):
    for name, team in (("churn", "risk"), ("churn-v2", "risk"), ("fraud", "payments")):
        registry.create_registered_model(name, tags={"team": team, "tier": "1" if name == "fraud" else "2"})
    assert [m.name for m in registry.search_models("tags.team = 'risk'")] == ["churn", "churn-v2"]
    assert [m.name for m in registry.search_models("name like 'churn%' and tags.tier = 2")] == ["churn", "churn-v2"]
    assert [m.name for m in registry.search_models("tags.team != 'risk' or name = 'churn'")] == ["churn", "fraud"]
    assert [m.name for m in registry.search_models("tags.owner is null")] == ["churn", "churn-v2", "fraud"]
    from loopml.errors import InvalidFilterError

    with pytest.raises(InvalidFilterError, match="search_models"):
        registry.search_models("metrics.acc > 1")


def test_version_tags_filter_and_evidence(registry, client):
    run = model_run(client)
    registry.register_model(f"runs:/{run.run_id}/model", "churn", tags={"data": "2026-10"})
    registry.register_model(f"runs:/{run.run_id}/model", "churn", tags={"data": "2026-11"})
    assert [v.version for v in registry.search_model_versions("churn", "tags.data = '2026-11'")] == [2]
    evidence = {"gate": "auc >= 0.9", "metrics": {"auc": 0.93}, "passed": True}
    assert registry.set_evidence("churn", 2, evidence).evidence == evidence
    assert registry.get_model_version("churn", 2).evidence == evidence
    with pytest.raises(InvalidValueError, match="JSON"):
        registry.set_evidence("churn", 2, {"bad": object()})


def test_deleting_a_version_keeps_its_number_retired(registry, client):
    run = model_run(client)
    registry.register_model(f"runs:/{run.run_id}/model", "churn")
    registry.set_alias("churn", "champion", 1)
    registry.delete_model_version("churn", 1, reason="leaked labels")
    with pytest.raises(ModelVersionNotFoundError):
        registry.get_model_version("churn", 1)
    with pytest.raises(AliasNotFoundError):
        registry.get_model_version("churn", "champion")
    assert registry.register_model(f"runs:/{run.run_id}/model", "churn").version == 2


def test_every_registry_mutation_is_audited_with_actor_and_reason(registry, client):
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn", actor="ci")
    registry.set_alias("churn", "champion", 1, reason="best", actor="ci")
    registry.delete_alias("churn", "champion", actor="ci")
    log = registry.tracking.store.audit.list_events(target="churn")
    assert [(e.action, e.target, e.actor) for e in log] == [
        ("model.create", "churn", "ci"),
        ("model_version.register", "churn/1", "ci"),
        ("alias.set", "churn@champion", "ci"),
        ("model_version.transition", "churn/1", "ci"),  # derived from @champion, in the same transaction
        ("alias.delete", "churn@champion", "ci"),
    ]
    transition = log[3]
    assert (transition.before, transition.after, transition.reason) == (
        {"stage": "candidate"},
        {"stage": "production"},
        "@champion moved to version 1: best",
    )
    assert [e.action for e in registry.tracking.store.audit.list_events(action="alias.*")] == ["alias.set", "alias.delete"]


def test_the_champion_alias_and_the_production_stage_never_disagree(registry, client):
    for _ in range(3):
        registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn")

    def production() -> list[int]:
        return [v.version for v in registry.search_model_versions("churn", stage="production")]

    registry.set_alias("churn", "champion", 1)
    assert production() == [1]
    registry.set_alias("churn", "challenger", 2)  # any other alias is a plain pointer
    assert production() == [1] and registry.get_model_version("churn", 2).stage is Stage.CANDIDATE
    registry.transition("churn", 2, "production", reason="launch")
    assert production() == [2] and registry.get_model_version("churn", "champion").version == 2
    assert registry.get_model_version("churn", 1).stage is Stage.ARCHIVED
    registry.set_alias("churn", "champion", 1, reason="roll back")  # an alias may point back at archived
    assert production() == [1] and registry.get_model_version("churn", 2).stage is Stage.ARCHIVED
    with pytest.raises(InvalidTransitionError, match="@champion"):
        registry.transition("churn", 1, "archived")
    assert production() == [1]
    moves = registry.tracking.store.audit.list_events(target="churn@champion")
    assert [(e.action, e.after) for e in moves] == [
        ("alias.set", {"version": 1}), ("alias.move", {"version": 2}), ("alias.move", {"version": 1}),
    ]  # fmt: skip


def test_audit_events_cannot_be_edited_or_deleted(registry, client, store, db_url):
    registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn")
    # Straight at the database behind the store (behind the server, for REST): the triggers hold there.
    engine = sa.create_engine(db_url)
    try:
        for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
            with pytest.raises(sa.exc.DatabaseError, match="immutable"), engine.begin() as conn:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()
    assert {e.actor for e in store.audit.list_events()} != {"mallory"}
    assert len(store.audit.list_events()) == 2


def _register_many(db_url: str, artifacts_url: str, run_id: str, n: int) -> list[int]:
    from loopml.store import open_store
    from loopml.tracking.client import TrackingClient

    registry = RegistryClient(TrackingClient(open_store(db_url, artifacts_url=artifacts_url)))
    numbers = [registry.register_model(f"runs:/{run_id}/model", "race").version for _ in range(n)]
    registry.tracking.close()
    return numbers


@pytest.mark.slow
def test_processes_registering_at_once_get_distinct_versions(registry, client, db_url, tmp_path):
    run = model_run(client)
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(_register_many, [(db_url, str(tmp_path / "artifacts"), run.run_id, 10)] * 4)
    numbers = sorted(n for batch in results for n in batch)
    assert numbers == list(range(1, 41))
    assert registry.get_registered_model("race").latest_version == 40


def test_lineage_reaches_datasets_code_environment_and_parents(registry, client):
    sweep = client.create_run("registry", name="sweep", capture=False)
    run = client.create_run("registry", name="trial", parent_run_id=sweep.run_id)  # with capture
    data = client.log_dataset(run.run_id, pd.DataFrame({"x": [1, 2, 3]}), "train-set", "train")
    client.log_artifact_bytes(run.run_id, {"model/loopml-model.json": b"{}"})
    client.end_run(run.run_id)
    registry.register_model(f"runs:/{run.run_id}/model", "churn")
    registry.set_alias("churn", "champion", 1)
    tree = lineage(registry, "models:/churn@champion")
    assert tree.kind == "model_version" and "@champion" in tree.label
    run_node = tree.children[0]
    assert run_node.id == run.run_id
    datasets = tree.find("dataset")
    assert [(d.attributes["sha256"], d.attributes["context"]) for d in datasets] == [(data.digest, "train")]
    assert [p.id for p in tree.find("parent_run")] == [sweep.run_id]
    assert tree.find("environment")[0].attributes["requirements"].endswith("requirements.txt")
    assert tree.to_dict()["children"][0]["id"] == run.run_id
    reverse = lineage(registry, dataset=data.ref)
    assert [c.id for c in reverse.children] == [run.run_id]
    assert [v.id for v in reverse.find("model_version")] == ["models:/churn/1"]
    with pytest.raises(InvalidValueError):
        lineage(registry)


def test_a_real_model_round_trips_through_the_registry(registry, client):
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from loopml.errors import ArtifactImmutableError, SchemaError
    from loopml.tracking.runs import ActiveRun

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    handle = ActiveRun(client, client.create_run("registry", capture=False))
    info = handle.log_model(model, "model", input_example=X.head())
    handle.end()
    version = registry.register_model(info.uri, "iris")
    registry.set_alias("iris", "champion", version.version)
    for uri in ("models:/iris@champion", "models:/iris/1", "models:/iris/latest", info.uri):
        loaded = registry.load_model(uri)
        assert (loaded.predict(X) == model.predict(X)).all()
    assert loaded.metadata["flavor"] == "sklearn"
    with pytest.raises(SchemaError) as caught:
        loaded.predict(X.drop(columns=["petal width (cm)"]).assign(extra=1))
    assert set(caught.value.problems) == {"petal width (cm)", "extra"}
    # the run has ended, so its files cannot be swapped; and the version is pinned besides
    with pytest.raises(ArtifactImmutableError, match=r"model/model.skops"):
        client.log_artifact_bytes(handle.id, {"model/model.skops": b"tampered"})
    assert (registry.load_model("models:/iris@champion").predict(X) == model.predict(X)).all()
    assert version.manifest_digest == client.store.tracking.get_artifact_entry(
        handle.id, "model/loopml-model.json"
    ).digest


def test_request_and_approval_inputs_are_checked(registry, client):
    from loopml.errors import ConflictError, RequestNotFoundError

    registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn")
    with pytest.raises(RequestNotFoundError, match="999"):
        registry.approve(999, actor="bob")
    with pytest.raises(InvalidValueError, match="integer"):
        registry.approve("1", actor="bob")
    with pytest.raises(InvalidValueError, match="Unknown request status 'bogus'"):
        registry.list_transition_requests("churn", status="bogus")
    with pytest.raises(ConflictError, match="require_approval=False"):
        registry.register_model(f"runs:/{model_run(client).run_id}/model", "churn", require_approval=True)
    assert registry.get_registered_model("churn").latest_version == 1


def test_boolean_tag_filters_compare_by_equality_only(registry):
    from loopml.errors import InvalidFilterError

    registry.create_registered_model("a", tags={"pii": "true"})
    registry.create_registered_model("b", tags={"pii": "false"})
    assert [m.name for m in registry.search_models("tags.pii = true")] == ["a"]
    with pytest.raises(InvalidFilterError, match="true and false only compare with '=' or '!='"):
        registry.search_models("tags.pii < true")
