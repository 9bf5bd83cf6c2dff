"""POST /v1/models/{name}/predict?explain=true: additive attributions over HTTP, the budget's 429, bad input."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from loopml.explain.importance import explain_model
from loopml.registry.client import RegistryClient
from loopml.store import open_store
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun


class StepClock:
    """A clock that moves one second each time it is read: every explanation 'takes' a second."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def served(tmp_path: Path, asgi_client: Any, task: dict[str, Any]) -> Iterator[dict[str, Any]]:
    import tempfile

    from loopml.serving.app import create_serving_app

    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}", artifacts_url=str(tmp_path / "artifacts"))
    tracking = TrackingClient(store)
    registry = RegistryClient(tracking)
    X, y = task["X"], task["y"]
    models = {
        "forest": RandomForestClassifier(n_estimators=20, random_state=0).fit(X.iloc[:400], y[:400]),
        "linear": LogisticRegression().fit(X.iloc[:400], y[:400]),
    }
    for name, model in models.items():
        run = tracking.create_run("serve", capture=False)
        info = ActiveRun(tracking, run).log_model(model, "model", input_example=X.head())
        registry.register_model(info.uri, name)
    explain_model("models:/linear/1", X.iloc[:400], client=registry)  # stores the background rows
    old_tempdir = tempfile.tempdir
    tempfile.tempdir = str(tmp_path)
    client = asgi_client(create_serving_app(store, poll_interval_s=60.0), raise_server_exceptions=False)
    client.__enter__()
    try:
        yield {"api": client, "models": models, "X": X}
    finally:
        with warnings.catch_warnings():
            client.__exit__(None, None, None)
        tempfile.tempdir = old_tempdir
        store.close()


def test_explained_predictions_add_up_over_http(served) -> None:
    api, X = served["api"], served["X"]
    rows = X.iloc[400:405]
    for name, own in (
        ("forest", lambda m, r: m.predict_proba(r)[:, 1]),
        ("linear", lambda m, r: m.decision_function(r)),
    ):
        answer = api.post(
            f"/v1/models/{name}/versions/1/predict?explain=true", json={"records": rows.to_dict(orient="records")}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["predictions"] == served["models"][name].predict(rows).tolist()
        outputs = own(served["models"][name], rows)
        assert len(body["explanations"]) == 5
        for entry, output in zip(body["explanations"], outputs, strict=True):
            assert list(entry["attributions"]) == list(X.columns)
            assert entry["output_value"] == pytest.approx(output)
            assert sum(entry["attributions"].values()) == pytest.approx(entry["output_value"] - entry["expected_value"])
    plain = api.post(
        "/v1/models/forest/versions/1/predict?explain=false", json={"records": rows.to_dict(orient="records")}
    )
    assert plain.status_code == 200 and "explanations" not in plain.json()


def test_over_the_budget_an_explanation_is_refused_with_429_and_plain_predictions_still_answer(served) -> None:
    from loopml.serving.explaining import Explanations

    api = served["api"]
    app = api.app
    app.state.explanations = Explanations(app.state.service, seconds_per_second=0.01, burst_s=0.5, clock=StepClock())
    body = {"records": served["X"].iloc[400:402].to_dict(orient="records")}
    first = api.post("/v1/models/forest/versions/1/predict?explain=true", json=body)
    assert first.status_code == 200
    refused = api.post("/v1/models/forest/versions/1/predict?explain=true", json=body)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "TooManyRequestsError" and "explanation budget" in refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert api.post("/v1/models/forest/versions/1/predict", json=body).status_code == 200  # the hot path is untouched
    assert (
        api.post("/v1/models/linear/versions/1/predict?explain=true", json=body).status_code == 200
    )  # a budget per model


def test_bad_explain_requests_are_4xx_naming_the_fault(served) -> None:
    api = served["api"]
    body = {"records": served["X"].iloc[400:402].to_dict(orient="records")}
    wrong = api.post("/v1/models/forest/versions/1/predict?explain=maybe", json=body)
    assert wrong.status_code == 422 and "explain must be true or false" in wrong.text
    v2 = api.post("/v2/models/forest/versions/1/infer?explain=true", json={"inputs": []})
    assert 400 <= v2.status_code < 500 and "v1 route" in v2.text
    unknown = api.post("/v1/models/nope/predict?explain=true", json=body)
    assert unknown.status_code == 404
    assert np.isfinite(
        api.post("/v1/models/forest/versions/1/predict?explain=1", json=body).json()["explanations"][0]["output_value"]
    )
