"""``loopml import mlflow``: a store filled by the real MLflow client arrives whole, once, on every backend.

The source is an mlruns folder written by MLflow 3's file store and the same
folder served by a live ``mlflow server`` (read through its REST API). After
the import the data is checked through loopml's API, the imported model is
loaded back by the MLflow client from a loopml server, and a second import
adds nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from loopml.entities.registry import Stage
from loopml.entities.tracking import RunStatus
from loopml.interop.mlflow_import import import_mlflow
from loopml.tracking.client import TrackingClient
from tests.interop.conftest import result_of, run_client

EXPECTED = {"experiments": 1, "runs": 3, "params": 7, "logged models": 1, "models": 1, "versions": 1, "aliases": 1}


def check_arrived(store: Any, result: Mapping[str, Any]) -> None:
    """The workflow's runs, nesting, params, histories, artifacts and registry are in loopml."""
    tracking = TrackingClient(store)
    runs = {r.tags["mlflow.import.runId"]: r for r in tracking.search_runs("fs-sweep", as_frame=False)}
    assert set(runs) == {result["parent_run_id"], *result["trial_run_ids"]}
    parent = runs[result["parent_run_id"]]
    assert parent.info.name == "sweep" and parent.info.status is RunStatus.FINISHED
    assert parent.params == {"search": "grid"} and parent.tags["team"] == "interop"
    for i, source_id in enumerate(result["trial_run_ids"]):
        trial = runs[source_id]
        assert trial.info.parent_run_id == parent.run_id and trial.tags["mlflow.parentRunId"] == parent.run_id
        assert trial.params["C"] == str(10.0 ** (i - 1)) and trial.info.end_time is not None
        history = tracking.get_metric_history(trial.run_id, "loss")
        assert [p.step for p in history] == list(range(5))
        assert history[2].value == pytest.approx(1 / 3 + 0.01 * i)
    assert tracking.read_artifact(parent.run_id, "report/summary.txt").decode() == result["summary"]
    version = store.registry.get_version_by_alias("fs-classifier", "champion")
    # in loopml the champion alias is what production means, so the aliased version's stage follows it
    assert version.run_id == parent.run_id and version.stage is Stage.PRODUCTION
    assert version.tags["mlflow.import.version"] == "1" and version.manifest_digest
    folder = version.artifact_path
    assert folder.startswith("mlflow-models/m-") and {e.path for e in tracking.list_artifacts(parent.run_id, folder)} >= {
        f"{folder}/MLmodel",
        f"{folder}/loopml-model.json",
    }


def test_import_mlruns_folder_whole_and_once(store: Any, mlflow_file_store: tuple[Path, Mapping[str, Any]]) -> None:
    folder, result = mlflow_file_store
    seen: list[tuple[str, int, int]] = []
    first = import_mlflow(str(folder), store=store, progress=lambda *a: seen.append(a), actor="migration")
    assert first.verified and first.skipped == []
    for kind, n in EXPECTED.items():
        assert (first.counts[kind].source, first.counts[kind].imported, first.counts[kind].in_loopml) == (n, n, n), kind
    assert first.counts["metric points"].imported == first.counts["metric points"].source > 2 * 5 * 1
    assert ("runs", 3, 3) in seen and ("models", 1, 1) in seen
    check_arrived(store, result)

    again = import_mlflow(folder.as_uri(), store=store)
    assert again.verified and all(c.imported == 0 for c in again.counts.values())
    assert again.counts["runs"].present == 3 and again.counts["versions"].present == 1
    assert len(TrackingClient(store).search_runs("fs-sweep", as_frame=False)) == 3
    assert len(store.registry.list_versions("fs-classifier")) == 1


def test_a_run_deleted_mid_import_is_reported(
    mlflow_file_store: tuple[Path, Mapping[str, Any]], tmp_path: Path
) -> None:
    from loopml.store import open_store

    source, result = mlflow_file_store
    folder = tmp_path / "mlruns"
    shutil.copytree(source, folder)
    doomed = result["trial_run_ids"][1]
    (victim,) = folder.glob(f"*/{doomed}")

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "runs" and done == 1:  # the parent is in; a trial vanishes before it is read
            shutil.rmtree(victim)

    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        report = import_mlflow(str(folder), store=store, progress=progress)
        assert not report.verified
        assert report.counts["runs"].skipped == 1 and report.counts["runs"].in_loopml == 2
        assert any(doomed in line and "nothing of it was imported" in line for line in report.skipped)
        imported = {r.tags["mlflow.import.runId"] for r in TrackingClient(store).search_runs("fs-sweep", as_frame=False)}
        assert doomed not in imported and len(imported) == 2
        assert report.counts["versions"].in_loopml == 1  # the model came from the parent run
    finally:
        store.close()


@pytest.fixture
def mlflow_server(mlflow_python: Path, mlflow_file_store: tuple[Path, Mapping[str, Any]], tmp_path: Path) -> Iterator[str]:
    """A live ``mlflow server`` over the workflow's mlruns folder, on a free 127.0.0.1 port."""
    folder, _ = mlflow_file_store
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPML_"))}
    env.update(MLFLOW_ALLOW_FILE_STORE="true", PATH=f"{mlflow_python.parent}{os.pathsep}{env.get('PATH', '')}")
    log = (tmp_path / "mlflow-server.log").open("w")
    server = subprocess.Popen(
        [str(mlflow_python.parent / "mlflow"), "server", "--backend-store-uri", folder.as_uri(),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start: " + (tmp_path / "mlflow-server.log").read_text()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.usefixtures("fresh_cli_client")
def test_import_from_a_live_mlflow_server_then_load_by_alias_from_loopml(
    mlflow_server: str,
    mlflow_file_store: tuple[Path, Mapping[str, Any]],
    mlflow_python: Path,
    served: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loopml.cli.main import app

    url, store = served()
    monkeypatch.setenv("LOOPML_TRACKING_URI", url)
    out = CliRunner().invoke(app, ["import", "mlflow", "--from", mlflow_server], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "metric points" in out.output and "✗" not in out.output
    check_arrived(store, mlflow_file_store[1])
    again = CliRunner().invoke(app, ["import", "mlflow", "--from", mlflow_server], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "Already in loopml" in again.output

    # the imported model serves MLflow clients of the loopml server, loaded by its alias
    script = (
        "import json, mlflow, numpy as np\n"
        "m = mlflow.pyfunc.load_model('models:/fs-classifier@champion')\n"
        "x = np.random.default_rng(0).normal(size=(200, 4))[:10]\n"
        "print('RESULT ' + json.dumps({'predictions': [int(v) for v in m.predict(x)]}))\n"
    )
    loaded = result_of(run_client(mlflow_python, ["-c", script], url, tmp_path))
    assert len(loaded["predictions"]) == 10 and set(loaded["predictions"]) <= {0, 1}
