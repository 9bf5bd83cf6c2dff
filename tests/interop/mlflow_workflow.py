"""A realistic MLflow 3 client script; it runs in the MLflow venv, never imports loopml.

Run as ``python mlflow_workflow.py <prefix> [trials] [steps]`` with
``MLFLOW_TRACKING_URI`` set (and ``MLFLOW_TRACKING_TOKEN`` for a server with
auth). It does what a team's training script does: a sweep with nested runs,
params, stepped metrics and ``log_batch``, tags, a searched-for best trial, an
artifact folder logged and downloaded back, and a scikit-learn model logged,
registered, given an alias and loaded back by that alias through pyfunc. It
prints one JSON object with what the caller needs to check the result.
tests/interop/test_mlflow_client.py runs it against a live loopml server and
benchmarks/interop.py times it against ``mlflow server`` and loopml.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from sklearn.linear_model import LogisticRegression


def main(prefix: str, trials: int = 3, steps: int = 20) -> dict[str, object]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(int)
    client = MlflowClient()
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[phase] = timings.get(phase, 0.0) + now - clock
        clock = now

    experiment = mlflow.set_experiment(f"{prefix}-sweep")
    model_name = f"{prefix}-classifier"
    with mlflow.start_run(run_name="sweep") as parent:
        mlflow.log_param("search", "grid")
        mlflow.set_tags({"team": "interop", "purpose": "sweep"})
        trial_ids = []
        for i in range(trials):
            c = 10.0 ** (i - 1)
            with mlflow.start_run(run_name=f"trial-{i}", nested=True) as child:
                mlflow.log_params({"C": c, "solver": "lbfgs"})
                for step in range(steps):
                    mlflow.log_metric("loss", 1.0 / (step + 1) + 0.01 * i, step=step)
                model = LogisticRegression(C=c).fit(features, labels)
                now = int(time.time() * 1000)
                client.log_batch(
                    child.info.run_id,
                    metrics=[Metric("acc", float(model.score(features, labels)), now, 0), Metric("trial", i, now, 0)],
                    params=[Param("rows", str(len(features)))],
                    tags=[RunTag("kind", "trial")],
                )
                trial_ids.append(child.info.run_id)
        best = mlflow.search_runs(
            experiment_ids=[experiment.experiment_id],
            filter_string="tags.kind = 'trial' and metrics.acc > 0",
            order_by=["metrics.acc DESC"],
            output_format="list",
        )
        history = client.get_metric_history(trial_ids[0], "loss")
        lap("tracking")
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp)
            (report / "plots").mkdir()
            (report / "summary.txt").write_text(f"best trial {best[0].info.run_id}\n")
            (report / "plots" / "loss.csv").write_text("step,loss\n" + "".join(f"{p.step},{p.value}\n" for p in history))
            mlflow.log_artifacts(tmp, artifact_path="report")
        lap("artifacts")
        final = LogisticRegression(C=float(best[0].data.params["C"])).fit(features, labels)
        mlflow.log_metric("best_acc", float(best[0].data.metrics["acc"]))
        info = mlflow.sklearn.log_model(
            final,
            name="model",
            registered_model_name=model_name,
            input_example=features[:2],
            pip_requirements=["scikit-learn"],
        )
    version = info.registered_model_version
    client.set_registered_model_alias(model_name, "champion", version)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
    expected = final.predict(features[:10]).tolist()
    got = [int(x) for x in loaded.predict(features[:10])]
    lap("model")
    with tempfile.TemporaryDirectory() as tmp:
        folder = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="report", dst_path=tmp)
        downloaded = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
        summary = (Path(folder) / "summary.txt").read_text()
    lap("artifacts")
    alias_version = client.get_model_version_by_alias(model_name, "champion").version
    return {
        "experiment_id": experiment.experiment_id,
        "parent_run_id": parent.info.run_id,
        "trial_run_ids": trial_ids,
        "best_run_id": best[0].info.run_id,
        "searched": len(best),
        "history_steps": [p.step for p in history],
        "downloaded": downloaded,
        "summary": summary,
        "model_name": model_name,
        "model_id": info.model_id,
        "version": str(version),
        "alias_version": str(alias_version),
        "predictions_match": got == expected,
        "parent_status": client.get_run(parent.info.run_id).info.status,
        "timings": timings,
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    result = main(args[0], *(int(a) for a in args[1:3]))
    print("RESULT " + json.dumps(result))
