"""Shared set-up of the prediction-log tests: a store on every backend with either sink, and a model to log for."""

from __future__ import annotations

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.serving import PredictionRecord
from loopml.serving.predlog import LoggedPrediction

DAY_MS = 86_400_000


def make_models(store, *names: str) -> None:
    """Registered models ``names`` (one version each) so policies and deployments can name them."""
    experiment = store.tracking.create_experiment("predlog")
    run = store.tracking.create_run(experiment.experiment_id, name="r", user="u", start_time=1)
    manifest = store.artifacts.put_bytes(b"{}")
    store.tracking.log_artifact_entries(run.run_id, [ArtifactEntry("model/loopml-model.json", manifest, 2)])
    for name in names:
        store.registry.create_version(
            name, run_id=run.run_id, source=f"runs:/{run.run_id}/model", description=None, tags={}, actor="setup"
        )


def record(request_id, time, inputs='{"inputs": {"x": 1}}', *, model="churn", version=1, role="main"):
    return PredictionRecord(request_id, time, model, version, role, inputs, "[1]", 1.5, 200)


def offered(request_id, time, body=b'{"inputs": {"x": 1}}', *, model="churn", version=1, role="main"):
    """A prediction as ``loopml serve`` offers it to the log: the request body still the bytes received."""
    return LoggedPrediction(request_id, time, model, version, role, body, "[1]", 1.5, 200)
