"""Batch scoring of a partitioned parquet dataset with a registered model: output layout, lineage, logging, Ray."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopml.batch import batch_predict
from loopml.errors import AliasNotFoundError, InvalidValueError, NotFoundError
from loopml.registry.client import RegistryClient
from loopml.tracking.runs import ActiveRun


def _register(client):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    run = client.create_run("batch", capture=False)
    info = ActiveRun(client, run).log_model(model, "model", input_example=X.head())
    registry = RegistryClient(client)
    registry.register_model(info.uri, "iris")
    registry.set_alias("iris", "champion", 1)
    return X, model


def _dataset(folder: Path, X: pd.DataFrame) -> Path:
    for day, part in (("2026-11-01", X.iloc[:70]), ("2026-11-02", X.iloc[70:])):
        (folder / f"day={day}").mkdir(parents=True)
        part.to_parquet(folder / f"day={day}" / "part-0.parquet", index=False)
    return folder


def test_scores_every_partition_with_the_pinned_version_and_records_lineage(client, tmp_path):
    X, model = _register(client)
    source = _dataset(tmp_path / "in", X)
    result = batch_predict("models:/iris@champion", str(source), str(tmp_path / "out"), client=client,
                           log_predictions=True)  # fmt: skip

    assert (result.model, result.version, result.rows) == ("iris", 1, len(X))
    assert result.files == ("day=2026-11-01/part-0.parquet", "day=2026-11-02/part-0.parquet")
    for relative in result.files:  # partitioned as the input, input columns kept, one prediction per row
        scored = pd.read_parquet(tmp_path / "out" / relative)
        original = pd.read_parquet(source / relative)
        pd.testing.assert_frame_equal(scored.drop(columns="prediction"), original)
        assert scored["prediction"].tolist() == model.predict(original).tolist()

    run = client.get_run(result.run_id)
    assert run.tags["loopml.batch.model"] == "iris" and run.tags["loopml.batch.version"] == "1"
    assert run.tags["loopml.batch.input_sha256"] == result.input_sha256
    assert run.tags["loopml.batch.output_sha256"] == result.output_sha256
    assert run.params["model_uri"] == "models:/iris/1" and run.metrics["rows"] == len(X)

    logged = client.store.serving.read_predictions("iris")
    assert result.logged == len(logged) == 2  # 70 and 80 rows: one record per 100 rows of each file
    assert {r.version for r in logged} == {1}

    again = batch_predict("models:/iris/1", str(source), str(tmp_path / "again"), client=client)
    assert again.input_sha256 == result.input_sha256 and again.output_sha256 == result.output_sha256
    assert again.logged == 0 and len(client.store.serving.read_predictions("iris")) == 2


def test_bad_requests_are_refused_before_anything_is_written(client, tmp_path):
    X, _ = _register(client)
    source = _dataset(tmp_path / "in", X)
    with pytest.raises(InvalidValueError, match="runner"):
        batch_predict("models:/iris@champion", str(source), str(tmp_path / "out"), runner="spark", client=client)
    with pytest.raises(AliasNotFoundError):
        batch_predict("models:/iris@nobody", str(source), str(tmp_path / "out"), client=client)
    with pytest.raises(NotFoundError, match="does not exist"):
        batch_predict("models:/iris@champion", str(tmp_path / "missing"), str(tmp_path / "out"), client=client)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.parquet").write_bytes(b"keep me")
    with pytest.raises(InvalidValueError, match="already holds files"):
        batch_predict("models:/iris@champion", str(source), str(tmp_path / "full"), client=client)
    assert (tmp_path / "full" / "old.parquet").read_bytes() == b"keep me"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_on_ray_the_output_is_byte_for_byte_the_local_one(tmp_path, monkeypatch):
    import ray

    from loopml.store import open_store
    from loopml.tracking.client import TrackingClient

    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", str(tmp_path / "artifacts"))  # the Ray workers open the same store
    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        client = TrackingClient(store)
        X, _ = _register(client)
        source = _dataset(tmp_path / "in", X)
        local = batch_predict("models:/iris@champion", str(source), str(tmp_path / "local"), client=client)
        on_ray = batch_predict("models:/iris@champion", str(source), str(tmp_path / "ray"), runner="ray", workers=2,
                               client=client)  # fmt: skip
        assert on_ray.files == local.files and on_ray.rows == local.rows
        assert on_ray.output_sha256 == local.output_sha256
    finally:
        ray.shutdown()
        store.close()


def test_the_cli_scores_and_names_a_bad_runner(loopml_env, tmp_path):
    from typer.testing import CliRunner

    import loopml
    from loopml.cli.main import app

    X, _ = _register(loopml.get_tracking_client())
    source = _dataset(tmp_path / "in", X)
    done = CliRunner().invoke(app, ["batch-predict", "models:/iris@champion", str(source), str(tmp_path / "out"), "--log"])
    assert done.exit_code == 0, done.output
    assert "Scored 150 rows in 2 file(s) with models:/iris/1" in done.output and "logged 2 records" in done.output
    assert (tmp_path / "out" / "day=2026-11-02" / "part-0.parquet").exists()
    bad = CliRunner().invoke(app, ["batch-predict", "models:/iris@champion", str(source), str(tmp_path / "x"),
                                   "--runner", "spark"])  # fmt: skip
    assert bad.exit_code == 2 and "--runner" in bad.output and not (tmp_path / "x").exists()
