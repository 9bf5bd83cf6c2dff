"""Finding 9: request ids name one answered request, and feedback only labels requests that were answered.

The attack of the review: predict with a victim's ``X-Request-ID`` (or v2
``id``) so the log holds two rows under one id and the victim's label joins
the attacker's inputs; or send ``/v1/feedback`` for ids that were never
served, so monitoring and retraining read labels for predictions that did
not happen. Now the service rewrites an id it answered already (the answer
says so), the store keeps the first row's id across restarts and replicas,
and feedback for an id the log does not hold is refused (404), named and
counted. Every test runs with the real prediction service over each backend.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopml.entities.serving import Feedback
from loopml.errors import PredictionNotFoundError
from loopml.registry.client import RegistryClient
from loopml.serving import service as service_module
from loopml.serving.app import create_serving_app
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun

PREDICT = "/v1/models/iris/versions/1/predict"
INFER = "/v2/models/iris/versions/1/infer"


@pytest.fixture
def served(store: Any, iris: tuple[pd.DataFrame, pd.Series], asgi_client: Any) -> Iterator[Callable[[], Any]]:
    """``start()`` -> a started prediction service over ``store`` (models "iris" and "other", version 1 each)."""
    tracking = TrackingClient(store)
    registry = RegistryClient(tracking)
    model = LogisticRegression(max_iter=500).fit(*iris)
    for name in ("iris", "other"):
        info = ActiveRun(tracking, tracking.create_run("serving", capture=False)).log_model(
            model, "model", input_example=iris[0].head()
        )
        registry.register_model(info.uri, name)
    opened: list[Any] = []

    def start() -> Any:
        client = asgi_client(create_serving_app(store, poll_interval_s=60.0), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    try:
        yield start
    finally:
        for client in opened:
            stop(client)


def stop(client: Any) -> None:
    """Shut a service down (its log written out); a second call does nothing."""
    if not getattr(client, "stopped", False):
        client.stopped = True
        with warnings.catch_warnings():
            client.__exit__(None, None, None)


def body(iris: tuple[pd.DataFrame, pd.Series], rows: int = 2) -> dict[str, Any]:
    return {"records": iris[0].head(rows).to_dict(orient="records")}


def service(client: Any) -> Any:
    return client.app.state.service


def test_a_repeated_request_id_is_rewritten_and_the_answer_says_so(served, store, iris):
    api = served()
    first = api.post(PREDICT, json=body(iris), headers={"X-Request-ID": "order-17"})
    assert first.status_code == 200, first.text
    assert first.json()["request_id"] == first.headers["x-request-id"] == "order-17"
    assert "x-request-id-rewritten-from" not in first.headers and "request_id_rewritten_from" not in first.json()

    again = api.post(PREDICT, json=body(iris, 1), headers={"X-Request-ID": "order-17"})
    assert again.status_code == 200, again.text
    rewritten = again.json()["request_id"]
    assert rewritten != "order-17" and again.headers["x-request-id"] == rewritten
    assert again.headers["x-request-id-rewritten-from"] == again.json()["request_id_rewritten_from"] == "order-17"

    tensors = [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": iris[0].iloc[0].tolist()}]
    v2 = api.post(INFER, json={"id": "order-17", "inputs": tensors})
    assert v2.status_code == 200, v2.text
    assert v2.json()["id"] not in ("order-17", rewritten) and v2.headers["x-request-id"] == v2.json()["id"]
    assert v2.json()["parameters"] == {"request_id_rewritten_from": "order-17"}
    # feedback names the id alone, so another model may not reuse it either
    other = api.post("/v1/models/other/versions/1/predict", json=body(iris), headers={"X-Request-ID": "order-17"})
    assert other.json()["request_id_rewritten_from"] == "order-17"

    # ids the service makes up cannot be claimed ahead of it: they are random, and taken once answered
    made = api.post(PREDICT, json=body(iris)).json()["request_id"]
    following = api.post(PREDICT, json=body(iris)).json()["request_id"]
    assert abs(int(following, 16) - int(made, 16)) > 1_000_000
    taken = api.post(PREDICT, json=body(iris), headers={"X-Request-ID": made}).json()
    assert taken["request_id"] != made and taken["request_id_rewritten_from"] == made
    assert "loopml_serving_request_ids_rewritten_total 4.0" in api.get("/metrics").text

    assert service(api).log.flush()
    rows = store.serving.read_predictions("iris") + store.serving.read_predictions("other")
    assert len(rows) == 7 and len({r.request_id for r in rows}) == 7
    [kept] = [r for r in rows if r.request_id == "order-17"]
    assert json.loads(kept.inputs) == body(iris)  # the first request keeps the id


def test_a_request_id_repeated_on_another_replica_or_after_a_restart_is_logged_once(served, store, iris):
    """The services cannot see each other's ids: the store keeps the first row's id when the batches are written."""
    one, two = served(), served()
    assert one.post(PREDICT, json=body(iris, 1), headers={"X-Request-ID": "shared-1"}).json()["request_id"] == (
        "shared-1"
    )
    assert service(one).log.flush()
    assert two.post(PREDICT, json=body(iris, 2), headers={"X-Request-ID": "shared-1"}).status_code == 200
    assert service(two).log.flush()
    stop(one)  # a restart: the new process remembers no ids
    three = served()
    assert three.post(PREDICT, json=body(iris, 3), headers={"X-Request-ID": "shared-1"}).status_code == 200
    assert service(three).log.flush()

    rows = store.serving.read_predictions("iris")
    assert len(rows) == 3 and len({r.request_id for r in rows}) == 3
    [kept] = [r for r in rows if r.request_id == "shared-1"]
    assert json.loads(kept.inputs) == body(iris, 1)
    # so the label for shared-1 lands on the first request only
    assert three.post("/v1/feedback", json={"request_id": "shared-1", "label": 2}).status_code == 201
    labelled = {f.request_id for f in store.serving.read_feedback(name="iris")}
    assert labelled == {"shared-1"} and [r for r in rows if r.request_id in labelled] == [kept]


def test_feedback_for_a_request_never_served_is_refused_named_and_counted(served, store, iris):
    api = served()
    answered = api.post(PREDICT, json=body(iris)).json()["request_id"]

    refused = api.post("/v1/feedback", json={"request_id": "never-served", "label": 1})
    assert refused.status_code == 404, refused.text
    error = refused.json()["error"]
    assert error["type"] == "PredictionNotFoundError" and "'never-served'" in error["message"]
    assert error["request_ids"] == ["never-served"]
    mixed = [{"request_id": answered, "label": 1}, {"request_id": "forged-2", "label": 0}]
    refused = api.post("/v1/feedback", json=mixed)
    assert refused.status_code == 404 and refused.json()["error"]["request_ids"] == ["forged-2"]
    assert store.serving.read_feedback() == []  # a refused batch stores nothing, not even its known ids

    assert api.post("/v1/feedback", json=mixed[:1]).json() == {"accepted": 1}
    # the store refuses on its own too: loopml.send_feedback and the control plane's /api/v1/feedback go there
    with pytest.raises(PredictionNotFoundError) as direct:
        store.serving.log_feedback([Feedback("never-served", 1, 1)])
    assert direct.value.request_ids == ["never-served"]

    text = api.get("/metrics").text
    assert 'loopml_serving_feedback_items_total{outcome="refused"} 3.0' in text
    assert 'loopml_serving_feedback_items_total{outcome="accepted"} 1.0' in text
    assert [(f.request_id, f.label) for f in store.serving.read_feedback()] == [(answered, 1)]


def test_feedback_sent_before_its_prediction_is_written_waits_for_the_writer(served, store, iris, monkeypatch):
    """The writer batches, so feedback may come first: it waits for the batch rather than being refused or guessed."""
    api = served()
    log = service(api).log
    gate = threading.Event()
    write = store.serving.log_predictions

    def held(records: Any) -> None:
        gate.wait(timeout=60)
        write(records)

    monkeypatch.setattr(store.serving, "log_predictions", held)  # the service's log writes through this object
    waiting = threading.Event()
    barrier = log.barrier

    def spied() -> threading.Event:
        waiting.set()
        return barrier()

    monkeypatch.setattr(log, "barrier", spied)
    rid = api.post(PREDICT, json=body(iris)).json()["request_id"]

    # with no time to wait, the answer is a 503 to retry, never a refusal nor an unjoined label
    monkeypatch.setattr(service_module, "FEEDBACK_WAIT_S", 0.0)
    busy = api.post("/v1/feedback", json={"request_id": rid, "label": 2})
    assert busy.status_code == 503 and busy.json()["error"]["type"] == "ServiceUnavailableError"
    monkeypatch.setattr(service_module, "FEEDBACK_WAIT_S", 60.0)
    waiting.clear()

    with ThreadPoolExecutor(max_workers=1) as pool:
        sent = pool.submit(api.post, "/v1/feedback", json={"request_id": rid, "label": 2})
        assert waiting.wait(timeout=60)  # the feedback waits for the writer...
        assert not sent.done()
        assert store.serving.read_predictions("iris") == [] and store.serving.read_feedback() == []
        gate.set()  # ...which writes the prediction, then lets the feedback through
        answer = sent.result(timeout=60)
    assert answer.status_code == 201, answer.text
    assert [(f.request_id, f.label) for f in store.serving.read_feedback(name="iris")] == [(rid, 2)]
    text = api.get("/metrics").text
    assert "loopml_serving_feedback_log_waits_total 2.0" in text
    assert 'loopml_serving_feedback_items_total{outcome="unavailable"} 1.0' in text
