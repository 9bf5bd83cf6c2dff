"""The serving app in-process (TestClient, no socket): payload shapes, errors, routes, metrics, feedback, auth."""

from __future__ import annotations

import json

import pytest

from loopml.entities.auth import Role
from loopml.models.pyfunc import PythonModel
from loopml.serving.client import ServingClient
from tests.serving.conftest import Registered, service

ROWS = slice(0, 3)


def records(registered: Registered, rows: slice = ROWS) -> list[dict[str, float]]:
    return registered.X.iloc[rows].to_dict(orient="records")


@pytest.fixture
def deployed(registered: Registered) -> Registered:
    ServingClient(registered.tracking).deploy("iris", "champion")
    return registered


def test_every_payload_shape_gives_the_models_predictions(serve, deployed):
    api = serve()
    rows = deployed.X.iloc[ROWS]
    expected = deployed.expected(1, rows)
    answers = [
        api.post("/v1/models/iris/predict", json={"records": records(deployed)}),
        api.post("/v1/models/iris/predict", json={"columns": rows.to_dict(orient="list")}),
        api.post("/v1/models/iris@champion/predict", json={"records": records(deployed)}),
        api.post("/v1/models/iris/versions/1/predict", json={"records": records(deployed)}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["predictions"], body["model"], body["version"]) == (expected, "iris", 1)
        assert len(body["request_id"]) >= 16
    one = api.post("/v1/models/iris/predict", json={"inputs": records(deployed)[0]}).json()
    assert one["predictions"] == expected[:1]
    assert len({a.json()["request_id"] for a in answers}) == len(answers)
    tensors = [{"name": c, "shape": [3], "datatype": "FP64", "data": v} for c, v in rows.to_dict(orient="list").items()]
    v2 = api.post("/v2/models/iris/infer", json={"id": "abc-1", "inputs": tensors}).json()
    assert v2["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [3], "data": expected}]
    assert (v2["model_name"], v2["model_version"], v2["id"]) == ("iris", "1", "abc-1")
    matrix = [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": rows.to_numpy().ravel().tolist()}]
    assert api.post("/v2/models/iris/versions/3/infer", json={"inputs": matrix}).json()["outputs"][0]["data"] == (
        deployed.expected(3, rows)
    )
    assert (
        api.post(
            "/v1/models/iris/predict", json={"records": records(deployed)}, headers={"X-Request-ID": "mine-7"}
        ).json()["request_id"]
        == "mine-7"
    )


def test_the_fast_path_and_the_checked_path_agree(serve, deployed):
    """Bodies with true/null literals or extra columns take the checked path; answers stay the same."""
    api = serve()
    rows = records(deployed)
    fast = api.post("/v1/models/iris/predict", json={"records": rows}).json()["predictions"]
    slow = api.post("/v1/models/iris/predict", json={"records": rows, "key": "true"}).json()["predictions"]
    assert fast == slow == deployed.expected(1, deployed.X.iloc[ROWS])
    assert service(api).cache.get(("iris", 1)).fast is not None


def test_a_bad_input_is_422_naming_every_bad_column(serve, deployed):
    api = serve()
    row = records(deployed)[0]
    bad = {**row, "sepal length (cm)": "5.1", "petal width (cm)": True, "colour": "red"}
    del bad["sepal width (cm)"]
    answer = api.post("/v1/models/iris/predict", json={"records": [bad]})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["type"] == "SchemaError"
    assert set(error["problems"]) == {"sepal length (cm)", "sepal width (cm)", "petal width (cm)", "colour"}
    assert "strings are not converted" in error["problems"]["sepal length (cm)"]
    assert "missing column" in error["problems"]["sepal width (cm)"]
    assert "unexpected column" in error["problems"]["colour"]


BAD_BODIES = [
    b"{nope",
    b"",
    b"[]",
    b"null",
    b"\xff\xfe\x00garbage",
    b'{"records": []}',
    b'{"records": [1, 2]}',
    b'{"records": {"a": 1}}',
    b'{"records": [[1, 2, 3, 4]]}',
    b'{"columns": {"a": 1}}',
    b'{"columns": {"sepal length (cm)": [1, 2], "sepal width (cm)": [1]}}',
    b'{"columns": {}}',
    b'{"inputs": [1, 2]}',
    b'{"inputs": {}}',
    b'{"records": [{"a": 1}], "inputs": {"a": 1}}',
    b'{"records": [{"a": 1}], "extra": 1}',
    b'{"records": [{"a": 1}], "key": {"k": 1}}',
    b'{"records": [{"sepal length (cm)": [1, 2], "sepal width (cm)": {"x": 1}, "petal length (cm)": null, '
    b'"petal width (cm)": 1e999}]}',
    b'{"records": [{"sepal length (cm)": 99999999999999999999999999, "sepal width (cm)": NaN, '
    b'"petal length (cm)": Infinity, "petal width (cm)": -Infinity}]}',
    b'{"records": [{"sepal length (cm)": 1e308, "sepal width (cm)": 1e308, "petal length (cm)": 1e308, '
    b'"petal width (cm)": 1e309}]}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"records": [{"\\ud800": 1}]}',  # a lone surrogate: pandas cannot hold it
    b'{"records": [{"sepal length (cm)": "\\ud800", "sepal width (cm)": 1, "petal length (cm)": 1, '
    b'"petal width (cm)": 1}]}',
    b'{"records": [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, '
    b'"petal width (cm)": 0.2}], "key": true}',
]


def test_no_client_mistake_is_a_server_error(serve, deployed):
    api = serve()
    for index, body in enumerate(BAD_BODIES):
        answer = api.post("/v1/models/iris/predict", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, (index, answer.text)
        error = answer.json()["error"]
        assert error["type"] in ("InvalidInputError", "InvalidValueError", "SchemaError") and error["message"], index
    assert api.post("/v1/models/iris/predict", json={"records": records(deployed)}).status_code == 200


BAD_V2 = [
    {"inputs": []},
    {"inputs": [{"name": "x"}]},
    {"inputs": [{"name": "x", "shape": [1, 2, 3], "datatype": "FP64", "data": [1]}]},
    {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3]}]},
    {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[1, 2, 3]]}]},
    {"inputs": [{"name": "sepal length (cm)", "shape": [2], "datatype": "FP64", "data": [1]}]},
    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1], "junk": 1}]},
    {"inputs": [{"name": "x", "shape": "1", "datatype": "FP64", "data": [1]}]},
    {"inputs": [{"name": 1, "shape": [1], "datatype": "FP64", "data": 1}]},
    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], "other": 1},
    # well-formed tensors, but a datatype the protocol does not have, or an id that cannot be the request id
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FLOAT64", "data": [5.1, 3.5, 1.4, 0.2]}]},
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": ["FP64"], "data": [5.1, 3.5, 1.4, 0.2]}]},
    {"id": "has space", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]},
    {"id": 7, "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]},
]


def test_a_malformed_inference_request_is_400_in_the_protocols_error_shape(serve, deployed):
    api = serve()
    for index, body in enumerate(BAD_V2):
        answer = api.post("/v2/models/iris/infer", json=body)
        assert answer.status_code == 400, (index, answer.text)
        assert set(answer.json()) == {"error"} and isinstance(answer.json()["error"], str), answer.text
        assert answer.headers["x-loopml-error"] == "InvalidInputError"
    message = api.post("/v2/models/iris/infer", json=BAD_V2[-4]).json()["error"]
    assert "inputs[0].datatype 'FLOAT64'" in message and "FP64" in message
    assert api.post("/v2/models/iris/infer", json=BAD_V2[-2]).json()["error"].startswith("'id': ")


def test_the_lane_and_the_fastapi_routes_answer_alike(asgi_client, sql_store, deployed):
    """The routes behind the lane answer every request as the lane does (they serve when it is bypassed)."""
    from loopml.serving.app import create_serving_app
    from loopml.serving.lane import PredictLane

    bypassed = create_serving_app(sql_store, poll_interval_s=60.0)
    bypassed.user_middleware = [m for m in bypassed.user_middleware if m.cls is not PredictLane]
    with (
        asgi_client(create_serving_app(sql_store, poll_interval_s=60.0), raise_server_exceptions=False) as lane,
        asgi_client(bypassed, raise_server_exceptions=False) as routes,
    ):
        requests = [("/v1/models/iris/predict", body) for body in BAD_BODIES[-4:]]
        requests += [("/v2/models/iris/infer", json.dumps(body).encode()) for body in BAD_V2[-4:]]
        requests += [(path, json.dumps({"records": records(deployed)}).encode())
                     for path in ("/v1/models/iris/predict", "/v1/models/iris/versions/\u00b2/predict",
                                  "/v2/models/iris/versions/\u00b2/infer", "/v1/models/iris/versions/9/predict")]  # fmt: skip
        for path, body in requests:
            first, second = lane.post(path, content=body), routes.post(path, content=body)
            assert first.status_code == second.status_code < 500, (path, body, first.text, second.text)
            if first.status_code != 200 and path.startswith("/v2"):
                assert first.json() == second.json() and first.headers["x-loopml-error"], (path, body)
            elif first.status_code != 200:
                assert first.json()["error"]["type"] == second.json()["error"]["type"], (path, body)
        # request ids: each carries the id it used; a repeated one is rewritten and said so, alike
        tensors = [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": deployed.X.iloc[0].tolist()}]
        for path, body, headers in [
            ("/v1/models/iris/predict", {"records": records(deployed)}, {"X-Request-ID": "same-1"}),
            ("/v1/models/iris/predict", {"records": records(deployed)}, {"X-Request-ID": "same-1"}),
            ("/v1/models/iris/predict", {"records": records(deployed)}, {"X-Request-ID": "not valid"}),
            ("/v2/models/iris/infer", {"id": "same-1", "inputs": tensors}, {}),
            ("/v2/models/iris/infer", {"inputs": tensors}, {"X-Request-ID": "same-2"}),
            ("/v2/models/iris/infer", {"inputs": tensors}, {"X-Request-ID": "same-2"}),
        ]:
            first, second = lane.post(path, json=body, headers=headers), routes.post(path, json=body, headers=headers)
            assert first.status_code == second.status_code == 200, (path, first.text, second.text)
            used = [a.json().get("request_id") or a.json()["id"] for a in (first, second)]
            assert [a.headers["x-request-id"] for a in (first, second)] == used, (path, headers)
            supplied = headers.get("X-Request-ID", body.get("id"))
            assert (used[0] == supplied) == (used[1] == supplied), (path, body, headers)
            rewritten = [a.headers.get("x-request-id-rewritten-from") for a in (first, second)]
            assert rewritten[0] == rewritten[1], (path, body, headers)
        feedback = {"request_id": "never-answered", "label": 1}
        refused = lane.post("/v1/feedback", json=feedback), routes.post("/v1/feedback", json=feedback)
        assert [r.status_code for r in refused] == [404, 404]


def test_what_does_not_exist_is_404_and_a_body_too_large_is_413(serve, deployed):
    api = serve(max_body_bytes=2_000)
    body = {"records": records(deployed)}
    for path in ["/v1/models/nope/predict", "/v1/models/iris/versions/9/predict", "/v1/models/iris@nope/predict",
                 "/v1/models/nope@champion/predict", "/v1/models/bad name!/predict", "/v2/models/nope/infer",
                 "/v1/models/nope", "/v1/nothing"]:  # fmt: skip
        answer = api.post(path, json=body) if path.endswith(("predict", "infer")) else api.get(path)
        assert answer.status_code == 404, (path, answer.text)
        if path.startswith("/v2"):
            assert isinstance(answer.json()["error"], str) and answer.headers["x-loopml-error"].endswith("NotFoundError")
        else:
            assert answer.json()["error"]["type"].endswith("NotFoundError"), answer.text
    assert api.post("/v1/models/iris/versions/x/predict", json=body).status_code == 422
    for digits in ("\u00b2", "\u0661"):  # str.isdigit says yes, int() refuses or reads another script's digit
        assert api.post(f"/v1/models/iris/versions/{digits}/predict", json=body).status_code == 422, digits
        assert api.post(f"/v2/models/iris/versions/{digits}/infer", json=body).status_code == 400, digits
    big = json.dumps({"records": records(deployed, slice(0, 100))}).encode()
    declared = api.post("/v1/models/iris/predict", content=big)
    assert declared.status_code == 413 and declared.json()["error"]["type"] == "PayloadTooLargeError"
    streamed = api.post("/v1/models/iris/predict", content=iter([big[:1500], big[1500:]]))  # chunked: no length
    assert streamed.status_code == 413
    assert api.post("/v1/feedback", content=b'{"request_id": "' + b"a" * 3000 + b'", "label": 1}').status_code == 413


def test_models_listing_readiness_and_v2_metadata(serve, deployed):
    ServingClient(deployed.tracking).deploy("iris", 1, canary={"version": 2, "percent": 25}, shadow={"version": 3})
    api = serve(models=["iris"])
    ready = api.get("/readyz")  # the named model's versions load in the background
    for _ in range(200):
        if ready.status_code == 200:
            break
        ready = api.get("/readyz")
    assert ready.json() == {"status": "ready", "waiting_for": []}
    listed = api.get("/v1/models").json()
    [model] = listed["models"]
    assert model["traffic"] == [
        {"version": 1, "role": "main", "percent": 75.0},
        {"version": 2, "role": "canary", "percent": 25.0},
    ]
    assert model["shadow"] == {"version": 3} and model["source"] == "deployment"
    assert {v: s["state"] for v, s in model["versions"].items()} == {"1": "loaded", "2": "loaded", "3": "loaded"}
    assert model["versions"]["1"]["fast_path"] is True
    assert listed["serves"] == ["iris"] and listed["cache"]["loaded"] == 3
    assert api.get("/v1/models/iris").json()["name"] == "iris"
    meta = api.get("/v2/models/iris").json()
    assert meta["versions"] == ["1", "2", "3"] and meta["inputs"][0] == {
        "name": "sepal length (cm)",
        "datatype": "FP64",
        "shape": [-1],
    }
    assert api.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert api.get("/v2/health/ready").json() == {"ready": True} and api.get("/v2/health/live").status_code == 200
    assert api.get("/healthz").json() == {"status": "ok"} and api.get("/v2").json()["name"] == "loopml"
    assert "/v1/models/{name}/predict" in api.get("/openapi.json").json()["paths"]


def test_a_named_model_without_a_route_keeps_the_service_unready(serve, registered):
    api = serve(models=["iris@nope"])
    answer = api.get("/readyz")
    assert answer.status_code == 503 and "alias 'nope' not found" in answer.json()["waiting_for"][0]
    assert api.post("/v1/models/iris/predict", json={"records": records(registered)}).status_code == 404
    assert api.post("/v1/models/other/versions/1/predict", json={"records": []}).status_code == 404  # not served here


def test_metrics_count_requests_errors_latency_cache_and_the_log_queue(serve, deployed):
    api = serve()
    for _ in range(3):
        api.post("/v1/models/iris/predict", json={"records": records(deployed)})
    api.post("/v1/models/iris/predict", json={"records": [{"x": 1}]})
    api.post("/v1/models/nope/predict", json={"records": [{"x": 1}]})
    text = api.get("/metrics").text
    assert 'loopml_serving_requests_total{model="iris",role="main",status="200",version="1"} 3.0' in text
    assert 'loopml_serving_requests_total{model="iris",role="main",status="422",version="1"} 1.0' in text
    assert 'loopml_serving_errors_total{kind="client",model="iris",version="1"} 1.0' in text
    assert 'loopml_serving_rejected_requests_total{status="404"} 1.0' in text
    assert 'loopml_serving_request_duration_seconds_count{model="iris",version="1"} 4.0' in text
    assert "loopml_serving_cache_misses_total 1.0" in text and "loopml_serving_cache_hits_total 3.0" in text
    assert "loopml_serving_loaded_models 1.0" in text
    for name in ("prediction_log_queue_depth", "prediction_log_dropped_total", "prediction_log_written_total"):
        assert f"loopml_serving_{name}" in text


def test_versions_that_do_not_exist_are_not_counted_per_model(serve, deployed):
    """A path naming a missing model or version must not add label sets (callers could grow them without end)."""
    api = serve()
    for path in ("/v1/models/nope/versions/1/predict", "/v1/models/iris/versions/9/predict",
                 "/v1/models/iris/versions/10/predict"):  # fmt: skip
        assert api.post(path, json={"records": records(deployed)}).status_code == 404, path
    text = api.get("/metrics").text
    assert 'model="nope"' not in text and 'version="9"' not in text and 'version="10"' not in text
    assert 'loopml_serving_rejected_requests_total{status="404"} 3.0' in text


def test_every_answer_is_logged_and_feedback_joins_it(serve, deployed):
    api = serve()
    ok = api.post("/v1/models/iris/predict", json={"records": records(deployed)}).json()
    api.post("/v1/models/iris/predict", json={"records": [{"x": 1}]})
    second = api.post("/v1/models/iris/predict", json={"inputs": records(deployed)[0]}).json()
    assert api.post("/v1/feedback", json={"request_id": ok["request_id"], "label": [0, 0, 1]}).status_code == 201
    batch = [{"request_id": second["request_id"], "label": 0}, {"request_id": "other", "label": "x"}]
    refused = api.post("/v1/feedback", json=batch)  # "other" was never answered: the whole batch is refused
    assert refused.status_code == 404 and refused.json()["error"]["request_ids"] == ["other"]
    assert api.post("/v1/feedback", json=batch[:1]).json() == {"accepted": 1}
    for bad in [{"request_id": "has space", "label": 1}, {"label": 1}, [], {"items": [{"request_id": "a"}]}, [1], "x"]:
        assert api.post("/v1/feedback", json=bad).status_code == 422, bad
    assert service(api).log.flush()
    frame = ServingClient(deployed.tracking).search_predictions("iris", with_feedback=True)
    assert list(frame["status"]) == [200, 422, 200]
    assert frame["request_id"][0] == ok["request_id"] and frame["outputs"][0] == ok["predictions"]
    assert frame["inputs"][0] == records(deployed) and frame["inputs"][2] == records(deployed)[:1]
    assert frame["outputs"][1]["error"]["type"] == "SchemaError"
    assert list(frame["label"]) == [[0, 0, 1], None, 0]
    assert (frame["latency_ms"] > 0).all() and str(frame["time"].dtype).startswith("datetime64")
    flat = ServingClient(deployed.tracking).search_predictions("iris", flatten=True)
    assert len(flat) == 4 and list(flat["prediction"]) == ok["predictions"] + second["predictions"]
    assert (
        list(flat["row"]) == [0, 1, 2, 0] and flat["sepal length (cm)"][0] == records(deployed)[0]["sepal length (cm)"]
    )


def test_a_malformed_inference_request_in_the_log_does_not_break_reading_it(serve, deployed):
    api = serve()
    ragged = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [[5.1, 3.5, 1.4, 0.2], 5]}]}
    # the protocol's 400 to the client; logged as the invalid input it is (422), as on the v1 routes
    assert api.post("/v2/models/iris/infer", json=ragged).status_code == 400  # logged: it reached the model
    assert api.post("/v1/models/iris/predict", json={"records": records(deployed)}).status_code == 200
    assert service(api).log.flush()
    client = ServingClient(deployed.tracking)
    frame = client.search_predictions("iris")
    assert list(frame["status"]) == [422, 200] and frame["inputs"][0] == ragged  # kept as it was sent
    assert len(client.search_predictions("iris", flatten=True)) == 3


def test_a_request_in_utf16_is_logged_as_the_same_json(serve, deployed):
    api = serve()
    body = json.dumps({"records": records(deployed)}).encode("utf-16")  # JSON may come in any UTF (RFC 8259 §8.1)
    sent = api.post("/v1/models/iris/predict", content=body, headers={"content-type": "application/json"})
    assert sent.status_code == 200
    assert service(api).log.flush()
    frame = ServingClient(deployed.tracking).search_predictions("iris")
    assert frame["inputs"][0] == records(deployed)  # stored as text a reader parses, not as UTF-16 bytes


def test_prediction_logging_can_be_off(serve, deployed):
    api = serve(log_predictions=False)
    assert api.post("/v1/models/iris/predict", json={"records": records(deployed)}).status_code == 200
    assert service(api).log is None and api.get("/v1/models").json()["prediction_log"] is None
    assert ServingClient(deployed.tracking).search_predictions("iris").empty


def test_a_shadow_sees_every_request_and_never_answers(serve, deployed):
    ServingClient(deployed.tracking).deploy("iris", 1, shadow=3)
    api = serve()
    ids = [
        api.post("/v1/models/iris/predict", json={"records": records(deployed)}).json()["request_id"] for _ in range(5)
    ]
    bad = api.post("/v1/models/iris/predict", json={"records": [{"x": 1}]})
    assert bad.status_code == 422
    svc = service(api)
    svc._shadow_pool.submit(lambda: None).result()  # the shadow thread has caught up
    assert svc.log.flush()
    frame = ServingClient(deployed.tracking).search_predictions("iris")
    shadow = frame[frame["role"] == "shadow"]
    assert set(shadow["request_id"]) >= set(ids) and set(shadow["version"]) == {3}
    main = frame[(frame["role"] == "main") & (frame["status"] == 200)]
    assert set(main["version"]) == {1}
    assert next(iter(shadow[shadow["status"] == 200]["outputs"])) == deployed.expected(3, deployed.X.iloc[ROWS])


def test_a_new_deployment_or_alias_move_is_served_after_one_refresh(serve, deployed):
    api = serve()
    body = {"records": records(deployed)}
    assert api.post("/v1/models/iris/predict", json=body).json()["version"] == 1
    assert api.post("/v1/models/iris@champion/predict", json=body).json()["version"] == 1
    deployed.registry.set_alias("iris", "champion", 2)
    svc = service(api)
    svc.watcher.refresh()
    assert ("iris", 2) in svc.cache  # loaded before the swap: no request waits for it
    assert ("iris", 1) not in svc.cache  # released: nothing routes to it any more
    assert api.post("/v1/models/iris/predict", json=body).json()["version"] == 2
    assert api.post("/v1/models/iris@champion/predict", json=body).json()["version"] == 2
    ServingClient(deployed.tracking).deploy("iris", 3)
    svc.watcher.refresh()
    assert api.post("/v1/models/iris/predict", json=body).json()["version"] == 3
    ServingClient(deployed.tracking).rollback("iris")
    svc.watcher.refresh()
    assert api.post("/v1/models/iris/predict", json=body).json()["version"] == 2


def test_a_canary_takes_its_share_and_a_key_sticks(serve, deployed):
    ServingClient(deployed.tracking).deploy("iris", 1, canary={"version": 2, "percent": 30})
    api = serve(log_predictions=False)
    body = {"inputs": records(deployed)[0]}
    versions = [api.post("/v1/models/iris/predict", json=body).json()["version"] for _ in range(400)]
    assert 0.30 - 0.08 < versions.count(2) / len(versions) < 0.30 + 0.08
    for key in ("user-1", "user-2", "user-3", "user-4"):
        seen = {api.post("/v1/models/iris/predict", json={**body, "key": key}).json()["version"] for _ in range(5)}
        by_header = {api.post("/v1/models/iris/predict", json=body, headers={"X-Loopml-Key": key}).json()["version"]}
        assert len(seen) == 1 and seen == by_header


def test_auth_viewer_predicts_editor_sends_feedback(serve, deployed):
    tokens = {role.value: deployed.store.tokens.issue_token(role.value, role, actor="setup").secret for role in Role}
    api = serve(auth=True)
    body = {"records": records(deployed)}

    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    for path in ["/v1/models/iris/predict", "/v1/models/nope/predict", "/v2/models/iris/infer", "/v1/feedback"]:
        for headers in ({}, {"Authorization": "Bearer lml_000000000000_" + "A" * 43}, {"Authorization": "Basic x"}):
            answer = api.post(path, json=body, headers=headers)
            error = answer.json()["error"]
            kind = answer.headers["x-loopml-error"] if path.startswith("/v2") else error["type"]
            assert answer.status_code == 401 and kind == "AuthenticationError"
    assert api.get("/v1/models").status_code == 401
    assert api.post("/v1/models/iris/predict", json=body, headers=auth("viewer")).status_code == 200
    assert api.get("/v1/models", headers=auth("viewer")).status_code == 200
    request_id = api.post("/v1/models/iris/predict", json=body, headers=auth("viewer")).json()["request_id"]
    feedback = {"request_id": request_id, "label": 1}
    refused = api.post("/v1/feedback", json=feedback, headers=auth("viewer"))
    assert refused.status_code == 403 and "editor" in refused.json()["error"]["message"]
    assert api.post("/v1/feedback", json=feedback, headers=auth("editor")).status_code == 201
    for public in ("/healthz", "/readyz", "/metrics", "/v2/health/live"):
        assert api.get(public).status_code == 200, public


class Broken(PythonModel):
    """A model whose own code fails: that is the service's 500, logged and counted, never the client's."""

    def predict(self, frame):  # type: ignore[no-untyped-def]
        raise RuntimeError("the model's own bug")


def test_a_model_that_breaks_is_a_logged_500(serve, registered):
    version = registered.register(Broken(), name="broken")
    api = serve()
    answer = api.post(f"/v1/models/broken/versions/{version}/predict", json={"records": records(registered)})
    assert answer.status_code == 500 and answer.json()["error"]["message"].startswith(
        "Internal server error (RuntimeError)"
    )
    assert 'loopml_serving_errors_total{kind="server",model="broken",version="1"} 1.0' in api.get("/metrics").text
    assert service(api).log.flush()
    [row] = ServingClient(registered.tracking).search_predictions("broken").itertuples()
    assert row.status == 500 and row.outputs["error"]["message"] == "the model's own bug"


def test_a_v1_body_that_merely_mentions_entities_is_an_ordinary_prediction(serve, deployed):
    """The cheap byte test for requests by entity key also matches a value "entities": such a body is still v1."""
    api = serve()
    body = {"records": records(deployed), "key": "entities"}  # the routing key's value is the word
    answer = api.post("/v1/models/iris/predict", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == deployed.expected(1, deployed.X.iloc[ROWS])
