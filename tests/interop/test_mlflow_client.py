"""The real MLflow 3 client against a live loopml server: its data is loopml data.

The client runs from its own venv (``mlflow_python``) as a subprocess, with
``MLFLOW_TRACKING_URI`` at the test server; what it wrote is then checked
through loopml's own Python API, the CLI and the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopml.entities.auth import Role
from loopml.entities.tracking import RunStatus
from loopml.errors import UnsupportedModelError, UntrustedTypeError
from loopml.registry.client import RegistryClient
from loopml.tracking.client import TrackingClient
from tests.interop.conftest import WORKFLOW, result_of, run_client


@pytest.mark.usefixtures("fresh_cli_client")
def test_mlflow_workflow_lands_in_loopml(mlflow_python: Path, served: Any, tmp_path: Path) -> None:
    url, store = served()
    result = result_of(run_client(mlflow_python, [str(WORKFLOW), "demo"], url, tmp_path))

    # what the client saw
    assert result["searched"] == 3 and result["history_steps"] == list(range(20))
    assert result["downloaded"] == ["plots/loss.csv", "summary.txt"]
    assert result["summary"] == f"best trial {result['best_run_id']}\n"
    assert result["version"] == result["alias_version"] == "1"
    assert result["predictions_match"] is True
    assert result["parent_status"] == "FINISHED"

    # ... is loopml data: runs, nesting, params, metric histories, tags, artifacts
    tracking = TrackingClient(store)
    experiment = tracking.get_experiment("demo-sweep")
    assert str(experiment.experiment_id) == result["experiment_id"]
    parent = tracking.get_run(result["parent_run_id"])
    assert parent.info.status is RunStatus.FINISHED and parent.info.name == "sweep"
    assert parent.params["search"] == "grid" and parent.tags["team"] == "interop"
    trials = tracking.search_runs(experiment.name, filter="tags.kind = 'trial'", order_by=["metrics.trial"], as_frame=False)
    assert [r.run_id for r in trials] == result["trial_run_ids"]
    for i, trial in enumerate(trials):
        assert trial.info.parent_run_id == parent.run_id
        assert trial.info.name == f"trial-{i}" and trial.params["C"] == str(10.0 ** (i - 1))
        assert trial.params["rows"] == "200" and trial.info.status is RunStatus.FINISHED
        history = tracking.get_metric_history(trial.run_id, "loss")
        assert [p.step for p in history] == list(range(20))
        assert history[-1].value == pytest.approx(1 / 20 + 0.01 * i)
    best = tracking.search_runs(experiment.name, filter="metrics.acc > 0", order_by=["metrics.acc DESC"], as_frame=False)
    assert best[0].run_id == result["best_run_id"]
    files = {e.path for e in tracking.list_artifacts(parent.run_id)}
    assert {"report/summary.txt", "report/plots/loss.csv"} <= files
    folder = f"mlflow-models/{result['model_id']}"
    assert {f"{folder}/MLmodel", f"{folder}/loopml-model.json"} <= files
    assert tracking.read_artifact(parent.run_id, "report/summary.txt").decode() == result["summary"]

    # the registry holds the version, pinned, with its alias; loopml keeps the MLflow folder opaque
    registry = RegistryClient(tracking)
    version = registry.get_model_version(result["model_name"], "champion")
    assert version.version == 1 and version.run_id == parent.run_id
    assert version.source == f"runs:/{parent.run_id}/{folder}" and version.manifest_digest
    with pytest.raises((UntrustedTypeError, UnsupportedModelError)):
        registry.load_model(f"models:/{result['model_name']}@champion")

    # and the CLI lists the runs
    from loopml.cli.main import app

    out = CliRunner().invoke(app, ["runs", "list", "--experiment", "demo-sweep"], env={"LOOPML_TRACKING_URI": url})
    assert out.exit_code == 0, out.output
    assert "trial-0" in out.output and "sweep" in out.output


AUTH_SCRIPT = """
import json, os, sys
import mlflow
from mlflow.exceptions import MlflowException

outcomes = []
for token in sys.argv[1:]:  # MLflow reads MLFLOW_TRACKING_TOKEN on every request
    if token == "-":
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    else:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        mlflow.set_experiment("secured")
        with mlflow.start_run() as run:
            mlflow.log_metric("m", 1.0, step=1)
        outcomes.append(run.info.run_id)
    except MlflowException as exc:
        outcomes.append(exc.error_code)
print("RESULT " + json.dumps({"outcomes": outcomes}))
"""


def test_mlflow_token_is_a_loopml_bearer_token(mlflow_python: Path, served: Any, tmp_path: Path) -> None:
    url, store = served(auth=True)
    editor = store.tokens.issue_token("trainer", Role.EDITOR, actor="setup").secret
    viewer = store.tokens.issue_token("reader", Role.VIEWER, actor="setup").secret
    done = result_of(run_client(mlflow_python, ["-c", AUTH_SCRIPT, "-", "nope", viewer, editor], url, tmp_path))
    *refused, run_id = done["outcomes"]
    assert refused == ["UNAUTHENTICATED", "UNAUTHENTICATED", "PERMISSION_DENIED"]
    run = store.tracking.get_run(run_id)
    assert run.info.user == "trainer"  # the token's name is the actor, whatever the client claims
    assert [p.value for p in store.tracking.get_metric_history(run.run_id, "m")] == [1.0]
