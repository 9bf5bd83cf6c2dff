"""Finding 1: nobody can swap the model behind a registered version.

The attack of the review: log model A in run R1 and register it as ``iris/1``;
log a different model B in run R2; copy R2's index entries onto R1. Before the
fix the server answered 204 and ``models:/iris/1`` predicted with B. Now a
finished run's index is append-only, every write after the end is audited, and
a version pins the sha256 of its manifest, so even an overwrite while the run
is still RUNNING is refused at load time (and by serving, which loads the same way).
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from loopml.entities.artifacts import ArtifactEntry
from loopml.errors import ArtifactImmutableError, ModelIntegrityError
from loopml.models.package import log_model
from loopml.registry.client import RegistryClient
from loopml.tracking.client import TrackingClient


def _two_models(iris):
    features, target = iris
    a = LogisticRegression(max_iter=500).fit(features, target)
    b = DecisionTreeClassifier(max_depth=1).fit(features, target)  # predicts only two of the three classes
    assert not np.array_equal(a.predict(features), b.predict(features))
    return a, b


def _logged(client: TrackingClient, model, *, end: bool = True) -> str:
    run_id = client.create_run("iris", capture=False).run_id
    log_model(client, run_id, model)
    if end:
        client.end_run(run_id)
    return run_id


def test_a_finished_runs_model_cannot_be_replaced(store, iris):
    client = TrackingClient(store)
    registry = RegistryClient(client)
    model_a, model_b = _two_models(iris)
    r1 = _logged(client, model_a)
    version = registry.register_model(f"runs:/{r1}/model", "iris")
    assert version.manifest_digest == store.tracking.get_artifact_entry(r1, "model/loopml-model.json").digest
    r2 = _logged(client, model_b)
    swapped = store.tracking.list_artifacts(r2, "model")
    before = store.tracking.list_artifacts(r1, "model")

    with pytest.raises(ArtifactImmutableError, match="never change"):
        store.tracking.log_artifact_entries(r1, swapped)

    assert store.tracking.list_artifacts(r1, "model") == before  # nothing of the batch was written
    features, _ = iris
    loaded = registry.load_model("models:/iris/1")
    assert np.array_equal(loaded.predict(features), model_a.predict(features))


def test_an_ended_run_may_gain_new_paths_and_each_write_is_audited(store, iris):
    client = TrackingClient(store)
    run_id = _logged(client, _two_models(iris)[0])
    blob = store.artifacts.put_bytes(b"late report")
    entry = ArtifactEntry("reports/late.txt", blob, len(b"late report"))

    store.tracking.log_artifact_entries(run_id, [entry], actor="auditor-test")
    store.tracking.log_artifact_entries(run_id, [entry], actor="auditor-test")  # a retry changes nothing

    assert store.tracking.get_artifact_entry(run_id, "reports/late.txt") == entry
    events = store.audit.list_events(action="run.artifacts.append", target=run_id)
    assert len(events) == 1
    assert events[0].actor == "auditor-test"
    assert events[0].after == {"entries": [{"path": "reports/late.txt", "digest": blob, "size": 11}]}


def test_a_version_whose_manifest_changed_while_running_is_refused(store, iris):
    client = TrackingClient(store)
    registry = RegistryClient(client)
    model_a, model_b = _two_models(iris)
    r1 = _logged(client, model_a, end=False)  # registered while still RUNNING, where paths may be rewritten
    registry.register_model(f"runs:/{r1}/model", "iris")
    r2 = _logged(client, model_b)
    store.tracking.log_artifact_entries(r1, store.tracking.list_artifacts(r2, "model"))

    with pytest.raises(ModelIntegrityError, match="not the package that was registered"):
        registry.load_model("models:/iris/1")
    # the run itself now holds B, and loading it by run says so honestly (no pin there)
    features, _ = iris
    by_run = registry.load_model(f"runs:/{r1}/model")
    assert np.array_equal(by_run.predict(features), model_b.predict(features))


def test_the_pin_is_taken_by_the_store_not_the_client(store, iris):
    """A client cannot register a source whose manifest is missing, nor one from another run."""
    from loopml.errors import ArtifactNotFoundError, InvalidValueError

    client = TrackingClient(store)
    r1 = _logged(client, _two_models(iris)[0])
    r2 = client.create_run("iris", capture=False).run_id
    with pytest.raises(ArtifactNotFoundError):
        store.registry.create_version("iris", run_id=r2, source=f"runs:/{r2}/model", description=None, tags={}, actor="x")
    with pytest.raises(InvalidValueError, match="source"):
        store.registry.create_version("iris", run_id=r2, source=f"runs:/{r1}/model", description=None, tags={}, actor="x")


def test_the_reviewers_attack_over_http_is_a_409_and_audited(auth_server, iris, monkeypatch):
    """The exact reproduction against ``create_app(auth=True)``: an editor POSTs B's entries onto R1."""
    url, server_store, tokens = auth_server
    from loopml.store.rest import open_rest_store

    monkeypatch.setenv("LOOPML_TOKEN", tokens["editor"])
    remote = open_rest_store(url, "")
    try:
        client = TrackingClient(remote)
        registry = RegistryClient(client)
        model_a, model_b = _two_models(iris)
        r1 = _logged(client, model_a)
        registry.register_model(f"runs:/{r1}/model", "iris")
        r2 = _logged(client, model_b)
        headers = {"Authorization": f"Bearer {tokens['editor']}"}
        listed = httpx.get(f"{url}/api/v1/runs/{r2}/artifacts", params={"prefix": "model"}, headers=headers)
        answer = httpx.post(f"{url}/api/v1/runs/{r1}/artifacts", json={"entries": listed.json()}, headers=headers)
        assert answer.status_code == 409
        assert answer.json()["error"]["type"] == "ArtifactImmutableError"

        late = {"path": "notes/extra.txt", "digest": listed.json()[0]["digest"], "size": 1}
        fresh = httpx.post(
            f"{url}/api/v1/runs/{r1}/artifacts", json={"entries": [late], "actor": "someone-else"}, headers=headers
        )
        assert fresh.status_code == 204
        features, _ = iris
        assert np.array_equal(registry.load_model("models:/iris/1").predict(features), model_a.predict(features))
    finally:
        remote.close()
    (event,) = server_store.audit.list_events(action="run.artifacts.append", target=r1)
    assert event.actor == "editor"  # the token's name, never the actor the body claims
