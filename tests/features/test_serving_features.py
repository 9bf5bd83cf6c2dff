"""Serving by entity key, over HTTP: the model version's features come from the online store and are logged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from loopml.store import Store
from tests.features.online_fixtures import ONLINE_BACKENDS
from tests.features.serving_fixtures import serving_setup


@pytest.fixture(params=ONLINE_BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: Any
) -> Iterator[tuple[httpx.Client, Store, Any]]:
    """The serving app of ``serving_setup`` on each online store."""
    with serving_setup(request.param, tmp_path, monkeypatch, live_server) as found:
        yield found


def test_predict_by_entity_key_logs_the_features_used(served: tuple[httpx.Client, Store, Any]) -> None:
    http, store, (models, service) = served
    expected = pd.DataFrame({"spend": [95.0, 80.0], "orders": [12, 9]})
    for version in (1, 2):  # 1 names its feature service, 2 is known by its training data's lineage
        answer = http.post(
            f"/v1/models/churn_model/versions/{version}/predict",
            json={"entities": [{"customer_id": 1}, {"customer_id": 2}]},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == models[version].predict(expected).tolist()
    assert service.log.barrier().wait(30)  # the log writer batches: wait until it wrote these requests
    logged = store.serving.read_predictions("churn_model")
    assert len(logged) == 2
    for record in logged:
        rows = json.loads(record.inputs)["records"]
        assert rows == [
            {"customer_id": 1, "spend": 95.0, "orders": 12},
            {"customer_id": 2, "spend": 80.0, "orders": 9},
        ]
    metrics = http.get("/metrics").text
    assert 'loopml_serving_feature_values_total{outcome="present"} 8.0' in metrics
    assert 'loopml_feature_materialization_lag_seconds{view="customers"}' in metrics


def test_unknown_keys_and_bad_bodies_answer_4xx(served: tuple[httpx.Client, Store, Any]) -> None:
    http, _, _ = served
    unknown = http.post("/v1/models/churn_model/versions/1/predict", json={"entities": [{"customer_id": 99}]})
    assert unknown.status_code == 422 and "spend" in unknown.text  # no feature value: the model cannot predict
    no_key = http.post("/v1/models/churn_model/versions/1/predict", json={"entities": [{"client": 1}]})
    assert no_key.status_code == 422 and "customer_id" in no_key.text
    shape = http.post("/v1/models/churn_model/versions/1/predict", json={"entities": [], "key": "a"})
    assert shape.status_code == 422 and "entities" in shape.text
    extra = http.post("/v1/models/churn_model/versions/1/predict", json={"entities": [{"customer_id": 1}], "x": 1})
    assert extra.status_code == 422 and "'x'" in extra.text
    metrics = http.get("/metrics").text
    assert 'loopml_serving_feature_values_total{outcome="missing"} 2.0' in metrics
