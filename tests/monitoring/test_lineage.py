"""The reference through lineage: the training data of the watched version, found from its run (or a parent's)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.errors import NotFoundError
from loopml.monitoring.monitors import monitor, run_monitor
from loopml.registry.client import RegistryClient
from loopml.tracking.runs import ActiveRun
from tests.monitoring.logdata import SHIFTED, features, log_requests, predict

NUMERIC = ["a", "b", "c", "d"]


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the model cache (under the system temp dir) inside this test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


def train(tracking: Any, *, dataset_run: str = "same", store_data: bool = True) -> tuple[pd.DataFrame, Any]:
    """Register "churn" v1, a logistic regression trained on a + 3 b > 0; log its training data where asked:
    in the model's run ("same"), in its parent ("parent"), in a sibling step run ("sibling"), or nowhere."""
    from sklearn.linear_model import LogisticRegression

    X = features(3000, seed=0)[NUMERIC]
    model = LogisticRegression(max_iter=500).fit(X, predict(X))
    experiment = tracking.get_or_create_experiment("churn").experiment_id
    parent = tracking.create_run(experiment, name="pipeline", capture=False)
    run = tracking.create_run(experiment, name="candidate", parent_run_id=parent.info.run_id, capture=False)
    holder = {"same": run, "parent": parent}.get(dataset_run)
    if dataset_run == "sibling":
        holder = tracking.create_run(experiment, name="step:train", parent_run_id=parent.info.run_id, capture=False)
    if holder is not None:
        tracking.log_dataset(holder.info.run_id, X, "churn-train", context="train", store_data=store_data)
    tracking.log_dataset(run.info.run_id, X.head(100), "churn-holdout", context="test")
    info = ActiveRun(tracking, run).log_model(model, "model", input_example=X.head())
    RegistryClient(tracking).register_model(info.uri, "churn")
    return X, model


def log_model_answers(store: Any, model: Any, frame: pd.DataFrame) -> None:
    log_requests(store, "churn", frame, predicted=pd.Series(model.predict(frame[NUMERIC])))


@pytest.mark.parametrize("where", ["same", "parent", "sibling"])
def test_the_training_data_of_the_version_is_the_reference(sqlite_client, sqlite_store, where):
    X, model = train(sqlite_client, dataset_run=where)
    log_model_answers(sqlite_store, model, features(1000, seed=1, shift=SHIFTED)[NUMERIC])
    monitor("churn-drift", "churn", checks=["data_drift", "prediction_drift"], thresholds={"drift_share": 0.2},
            client=sqlite_client)  # fmt: skip

    result = run_monitor("churn-drift", client=sqlite_client)

    reference = result.figures["reference"]
    assert reference["source"] == "lineage" and reference["dataset"].startswith("churn-train@")
    assert reference["n_rows"] == len(X)
    assert result.drift is not None and result.drift.drifted_columns == SHIFTED
    assert result.drift.prediction is not None and result.drift.prediction.drifted  # the model scored its training data
    assert {a.kind for a in result.alerts} == {"data_drift", "prediction_drift"}


def test_unshifted_traffic_of_the_model_raises_nothing(sqlite_client, sqlite_store):
    _, model = train(sqlite_client)
    log_model_answers(sqlite_store, model, features(1000, seed=1)[NUMERIC])
    monitor("churn-drift", "churn", thresholds={"drift_share": 0.2}, client=sqlite_client)
    result = run_monitor("churn-drift", client=sqlite_client)
    assert (result.status, result.alerts) == ("ok", ())
    assert result.drift is not None and result.drift.prediction is not None and not result.drift.prediction.drifted


@pytest.mark.parametrize(("where", "store_data", "match"), [
    (None, True, "No training dataset found for churn version 1.*reference=dataframe"),
    ("same", False, "churn-train@[0-9a-f]{12} \\(logged without its data\\).*store_data=True"),
])  # fmt: skip
def test_no_training_data_is_a_clear_error_and_stores_nothing(sqlite_client, sqlite_store, where, store_data, match):
    _, model = train(sqlite_client, dataset_run=where, store_data=store_data)
    log_model_answers(sqlite_store, model, features(200, seed=1)[NUMERIC])
    monitor("churn-drift", "churn", client=sqlite_client)
    with pytest.raises(NotFoundError, match=match):
        run_monitor("churn-drift", client=sqlite_client)
    assert sqlite_store.monitoring.list_results("churn-drift") == []


def test_a_frame_without_versions_needs_a_deployment(sqlite_client, sqlite_store):
    from loopml.serving.client import ServingClient

    train(sqlite_client)
    monitor("churn-drift", "churn", checks=["data_drift"], client=sqlite_client)
    current = features(300, seed=2)[NUMERIC]
    with pytest.raises(NotFoundError, match="churn has no deployment"):
        run_monitor("churn-drift", current=current, client=sqlite_client)
    ServingClient(sqlite_client).deploy("churn", 1)
    assert run_monitor("churn-drift", current=current, client=sqlite_client).figures["reference"]["source"] == "lineage"
