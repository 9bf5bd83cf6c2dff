"""Requests logged as the values the model was given: packed, stored by either sink, read back as JSON."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import warnings

import numpy as np
import pytest

from loopml.entities.serving import PredictionRecord
from loopml.serving import logframes
from loopml.serving.client import ServingClient
from loopml.serving.service import VALUES_FROM
from loopml.store.predictions.values import CorruptValuesError, as_text, pack_values, values_text
from loopml.timestamps import now_ms
from loopml.tracking.client import TrackingClient
from tests.serving.conftest import open_sqlite, service
from tests.serving.predlog_helpers import make_models, record

NAMES = ["age", "income", "score"]
MATRIX = np.array([[41.0, 5200.5, 0.1106], [37.0, 3100.25, 1e-7], [29.0, 0.0, -2.5]])


def packed(key: str | None = None) -> bytes:
    values = pack_values(NAMES, MATRIX, integer_columns=[0], key=key)
    assert values is not None
    return values


def as_values(request_id: str, time: int, values: bytes, **kwargs) -> PredictionRecord:
    return PredictionRecord(
        request_id, time, kwargs.get("model", "churn"), 1, "main", "", "[1, 0, 1]", 1.5, 200, values
    )


# -- the packed form ----------------------------------------------------------------------------------
def test_packed_values_read_back_as_columns_of_equal_value_with_whole_numbers_as_integers():
    text = values_text(packed(key="user-7"))
    assert json.loads(text) == {
        "columns": {"age": [41, 37, 29], "income": [5200.5, 3100.25, 0.0], "score": [0.1106, 1e-7, -2.5]},
        "key": "user-7",
    }
    assert '"age":[41,37,29]' in text  # the signature's integers are not written as 41.0
    ints = pack_values(["a", "b"], np.array([[1, 2], [3, 4]], dtype=np.int64))
    assert ints is not None and json.loads(values_text(ints)) == {"columns": {"a": [1, 3], "b": [2, 4]}}


def test_values_with_no_json_spelling_or_the_wrong_shape_are_not_packed():
    assert pack_values(["x"], np.array([[np.inf]])) is None  # JSON has no infinity
    assert pack_values(["x", "y"], np.array([[1.0, 2.0, 3.0]])) is None  # a name per column
    assert pack_values(["x"], np.array([1.0, 2.0])) is None  # rows of columns only
    assert pack_values(["x"], np.array([["a"]])) is None  # numbers only
    # a whole number past 2**53 is not marked as an integer: a float cannot say which integer it was
    big = pack_values(["x"], np.array([[2.0**60]]), integer_columns=[0])
    assert big is not None and json.loads(values_text(big)) == {"columns": {"x": [2.0**60]}}


@pytest.mark.parametrize("damage", [lambda b: b[:3], lambda b: b[:-8], lambda b: b"\x01" + b"\x00" * 12, lambda b: b""])
def test_damaged_values_are_a_clear_error_not_garbage(damage):
    with pytest.raises(CorruptValuesError, match="cannot be read back"):
        values_text(damage(packed()))


def test_a_record_as_text_carries_the_values_json_and_no_values():
    text_record = record("t", 1)
    assert as_text(text_record) is text_record
    converted = as_text(as_values("v", 1, packed()))
    assert converted.values is None and json.loads(converted.inputs)["columns"]["age"] == [41, 37, 29]


def test_values_cross_the_log_writers_wire_as_bytes_beside_text_bodies():
    records = [record("t0", 1), as_values("v1", 2, packed("k")), record("t2", 3, '{"inputs": {"x": "Zürich"}}')]
    ours, theirs = socket.socketpair()
    try:
        sender = threading.Thread(
            target=logframes.send_frame, args=(ours, logframes.batch_parts(logframes.LAST, records))
        )
        sender.start()
        kind, content = logframes.recv_frame(theirs)
        sender.join()
    finally:
        ours.close()
        theirs.close()
    assert kind == logframes.LAST and logframes.read_batch(content) == records


# -- either sink, every backend ---------------------------------------------------------------------------
@pytest.fixture(params=["sql", "parquet"])
def sink(request, monkeypatch):
    monkeypatch.setenv("LOOPML_PREDICTION_LOG", request.param)
    return request.param


@pytest.fixture
def store(sink, store):  # the sink's variable is set before conftest's store opens
    return store


def test_either_sink_stores_values_beside_text_and_reads_both_back(store, sink):
    make_models(store, "churn")
    now = now_ms()
    text_body = json.dumps({"records": [{"age": 41, "income": 5200.5, "score": 0.1106}]})
    store.serving.log_predictions(
        [record("t1", now, text_body), as_values("v1", now + 1, packed(key="user-7")), record("t2", now + 2)]
    )
    logged = {r.request_id: r for r in store.serving.read_predictions("churn")}
    assert logged["t1"].inputs == text_body and logged["t2"].inputs == record("t2", 0).inputs  # text as received
    assert logged["v1"].values is None
    assert json.loads(logged["v1"].inputs) == {
        "columns": {"age": [41, 37, 29], "income": [5200.5, 3100.25, 0.0], "score": [0.1106, 1e-7, -2.5]},
        "key": "user-7",
    }
    assert logged["v1"].outputs == "[1, 0, 1]" and logged["v1"].status == 200


def test_a_policy_redacts_and_indexes_values_as_it_does_text(store, sink):
    make_models(store, "churn")
    store.serving.set_log_policy("churn", redact={"income": "drop"}, entity_key="age", actor="dpo")
    now = now_ms()
    store.serving.log_predictions([as_values("v1", now, packed()), as_values("v2", now + 1, packed())])
    logged = store.serving.read_predictions("churn")
    assert [json.loads(r.inputs)["columns"] for r in logged] == [
        {"age": [41, 37, 29], "score": [0.1106, 1e-7, -2.5]}
    ] * 2
    assert store.serving.erase_predictions("37", actor="dpo") == {"predictions": 2, "feedback": 0}
    assert store.serving.read_predictions("churn") == []


# -- the service ------------------------------------------------------------------------------------------
@pytest.fixture
def iris_store(tmp_path, template):
    folder = tmp_path / "store"
    shutil.copytree(template[0], folder)
    opened = open_sqlite(folder)
    yield opened
    opened.close()


def test_the_service_logs_a_large_numeric_request_as_its_values_and_a_small_one_as_received(
    iris_store, asgi_client, iris
):
    from loopml.serving.app import create_serving_app

    ServingClient(TrackingClient(iris_store)).deploy("iris", "champion")
    rows = iris[0].to_dict(orient="records")  # 150 rows: past VALUES_FROM as JSON
    large = json.dumps({"records": rows, "key": "caller-1"})
    small = json.dumps({"records": rows[:2]})
    assert len(large) >= VALUES_FROM > len(small)
    api = asgi_client(create_serving_app(iris_store, poll_interval_s=60.0), raise_server_exceptions=False)
    with warnings.catch_warnings(), api:
        answers = [
            api.post("/v1/models/iris/predict", content=body, headers={"content-type": "application/json"})
            for body in (large, small)
        ]
        assert [answer.status_code for answer in answers] == [200, 200]
        assert service(api).log.flush()
    logged = {r.request_id: r for r in iris_store.serving.read_predictions("iris")}
    first, second = (logged[answer.json()["request_id"]] for answer in answers)
    assert second.inputs == small  # short: the body as it came
    values = json.loads(first.inputs)
    assert values["key"] == "caller-1" and set(values["columns"]) == set(iris[0].columns)
    for name, column in values["columns"].items():  # every value the model was given, in request order
        assert column == pytest.approx(iris[0][name].tolist(), rel=0, abs=0)
    assert json.loads(first.outputs) == answers[0].json()["predictions"]


def test_a_service_told_to_log_text_logs_even_a_large_numeric_request_as_received(iris_store, asgi_client, iris):
    from loopml.serving.app import create_serving_app

    ServingClient(TrackingClient(iris_store)).deploy("iris", "champion")
    large = json.dumps({"records": iris[0].to_dict(orient="records")})
    app = create_serving_app(iris_store, poll_interval_s=60.0, log_inputs="text")
    api = asgi_client(app, raise_server_exceptions=False)
    with warnings.catch_warnings(), api:
        answer = api.post("/v1/models/iris/predict", content=large, headers={"content-type": "application/json"})
        assert answer.status_code == 200 and service(api).log.flush()
    (logged,) = iris_store.serving.read_predictions("iris")
    assert logged.inputs == large


def test_an_unknown_log_inputs_form_is_refused_by_name(iris_store):
    from loopml.errors import InvalidValueError
    from loopml.serving.app import create_serving_app

    with pytest.raises(InvalidValueError, match="log_inputs must be one of values, text, got 'json'"):
        create_serving_app(iris_store, log_inputs="json")


def test_a_logged_error_quoting_a_lone_surrogate_is_text_every_sink_can_store():
    from loopml.errors import InvalidInputError
    from loopml.serving.service import _error_json

    logged = _error_json(InvalidInputError("no column '\ud800x' here"))
    logged.encode("utf-8")  # strict UTF-8, what SQLite, PostgreSQL and parquet take
    assert json.loads(logged)["error"]["message"] == "no column '\ud800x' here"  # the same message
