"""The REST app through TestClient: errors as JSON, 422/404/413, streamed blobs, OpenAPI."""

from __future__ import annotations

import hashlib
import json
import math
import os

import pytest

from loopml.entities.search import And, Comparison, Not, Or, OrderBy
from loopml.server.schemas.search import (
    ComparisonJson,
    OrderByJson,
    filter_to_json,
    order_by_to_json,
    to_filter,
    to_order_by,
)
from loopml.store.rest import codec
from loopml.tracking.search import parse_filter, parse_order_by

API = "/api/v1"


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def new_run(api):
    experiment = api.post(f"{API}/experiments", json={"name": "exp"}).json()
    body = {"experiment_id": experiment["experiment_id"], "name": "r", "user": "u", "start_time": 1}
    response = api.post(f"{API}/runs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["info"]["run_id"]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("GET", f"{API}/nope"), ("POST", f"{API}/runs/x/y/z")])
def test_unknown_routes_answer_404_json(api, method, path):
    response = api.request(method, path)
    assert response.status_code == 404
    assert error_of(response)["type"] == "NotFoundError"


def test_a_wrong_method_is_a_json_client_error(api):
    response = api.delete(f"{API}/experiments")
    assert response.status_code == 405
    assert error_of(response)["type"] == "InvalidInputError"


def test_a_loopml_error_keeps_its_class_and_status(api):
    response = api.get(f"{API}/runs/{'0' * 32}")
    assert response.status_code == 404
    assert error_of(response) == {"type": "RunNotFoundError", "message": f"No run with id {'0' * 32!r}."}
    api.post(f"{API}/experiments", json={"name": "churn"})
    conflict = api.post(f"{API}/experiments", json={"name": "churn"})
    assert (conflict.status_code, error_of(conflict)["type"]) == (409, "ExperimentAlreadyExistsError")


def test_a_string_metric_value_is_422_naming_the_field(api):
    run_id = new_run(api)
    body = {"metrics": [{"key": "loss", "value": "low", "step": 0, "timestamp": 1}]}
    response = api.post(f"{API}/runs/{run_id}/batch", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["type"] == "InvalidInputError"
    assert "body.metrics.0.value" in error["message"]
    assert list(error["problems"]) == ["body.metrics.0.value"]


@pytest.mark.parametrize(
    ("filter_json", "field"),
    [
        ({"type": "comparison", "kind": "metric", "key": "acc", "op": "~=", "value": 1}, "body.filter.comparison.op"),
        ({"type": "comparison", "kind": "metrc", "key": "acc", "op": "=", "value": 1}, "body.filter.comparison.kind"),
        ({"type": "xor", "items": []}, "body.filter"),
        (
            {"type": "not", "item": {"type": "comparison", "kind": "param", "key": "a", "op": "=", "value": [[1]]}},
            "body.filter.not.item",
        ),
        (
            {"type": "comparison", "kind": "metric", "key": "acc", "op": "=", "value": {"float": "big"}},
            "body.filter.comparison.value",
        ),
        ({"type": "and", "items": [], "extra": 1}, "body.filter.and.extra"),
    ],
)
def test_a_malformed_filter_is_422_naming_the_field(api, filter_json, field):
    response = api.post(f"{API}/runs/search", json={"filter": filter_json})
    assert response.status_code == 422, response.text
    assert any(where.startswith(field) for where in error_of(response)["problems"]), error_of(response)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"content-type": "application/json"}),
        (b"[1, 2]", {"content-type": "application/json"}),
        (b'{"name": "x"}', {}),  # no content type: not parsed as JSON
        (
            b'{"filter": ' + b'{"type": "not", "item": ' * 5000 + b"null" + b"}" * 5001,
            {"content-type": "application/json"},
        ),
    ],
)
def test_malformed_bodies_are_client_errors(api, content, headers):
    response = api.post(f"{API}/runs/search", content=content, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert error_of(response)["type"] in ("InvalidInputError", "PayloadTooLargeError")  # the deep one is > 64 KiB


def test_out_of_range_integers_are_422_not_500(api):
    assert api.get(f"{API}/experiments/{2**70}").status_code == 422
    assert api.get(f"{API}/experiments/abc").status_code == 422
    run_id = new_run(api)
    body = {"metrics": [{"key": "loss", "value": 1.0, "step": 2**64, "timestamp": 1}]}
    assert api.post(f"{API}/runs/{run_id}/batch", json=body).status_code == 422


def test_a_filter_error_carries_its_extra_fields(api):
    metric_filter = {"type": "comparison", "kind": "metric", "key": "acc", "op": ">", "value": 1}
    response = api.post(f"{API}/models/search", json={"filter": metric_filter})
    assert response.status_code == 422
    error = error_of(response)
    assert error["type"] == "InvalidFilterError"
    assert (error["token"], error["position"]) == ("acc", 0)
    assert "search_models" in error["message"]


def test_bodies_over_the_limit_are_413_declared_or_streamed(api, body_limit):
    big = b"x" * (body_limit + 1)
    as_json = {"content-type": "application/json"}
    declared = api.post(f"{API}/experiments", content=b'{"name": "' + big + b'"}', headers=as_json)
    assert declared.status_code == 413
    assert error_of(declared)["type"] == "PayloadTooLargeError"
    chunked = api.post(f"{API}/experiments", content=iter([b'{"name": "', big, b'"}']), headers=as_json)
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413
    assert error_of(chunked)["type"] == "PayloadTooLargeError"
    # artifact uploads have their own, larger limit (tests/security/test_uploads.py)
    assert api.put(f"{API}/artifacts/blobs", content=big).status_code == 200


def test_health_hides_the_password(sql_store, asgi_client):
    from dataclasses import replace

    from loopml.config import hide_password
    from loopml.server.app import create_app

    assert hide_password("postgresql+psycopg://me:secret@db:5432/x") == "postgresql+psycopg://me:***@db:5432/x"
    with asgi_client(create_app(replace(sql_store, url="postgresql://me:secret@db/x"))) as client:
        assert client.get(f"{API}/health").json() == {"status": "ok", "store": "postgresql://me:***@db/x", "auth": "none"}


# -- values that JSON cannot hold -------------------------------------------------------------------


def test_non_finite_metrics_travel_as_strings(api):
    run_id = new_run(api)
    points = [
        {"key": "m", "value": v, "step": i, "timestamp": 1}
        for i, v in enumerate(["NaN", "Infinity", "-Infinity", -0.0])
    ]
    assert api.post(f"{API}/runs/{run_id}/batch", json={"metrics": points}).status_code == 204
    history = api.get(f"{API}/runs/{run_id}/metrics/history", params={"key": "m"})
    assert [p["value"] for p in history.json()] == ["NaN", "Infinity", "-Infinity", -0.0]


def test_filter_json_round_trips_and_matches_the_client_codec():
    text = "(metrics.acc > 0.9 or metrics.loss = nan) and not params.model in ('rf', 1, 2.5, true, -inf) and tags.t is null"
    parsed = parse_filter(text)
    assert isinstance(parsed, And) and isinstance(parsed.items[0], Or) and isinstance(parsed.items[1], Not)
    encoded = filter_to_json(parsed)
    assert encoded == codec.filter_out(parsed)
    from pydantic import TypeAdapter

    from loopml.server.schemas.search import FilterJson

    decoded = to_filter(TypeAdapter(FilterJson).validate_json(json.dumps(encoded)))
    assert repr(decoded) == repr(parsed)  # NaN != NaN, so compare the spelling
    leaf = decoded.items[1].item
    assert isinstance(leaf, Comparison) and leaf.value[2:] == (2.5, True, -math.inf)
    assert type(leaf.value[1]) is int
    order = parse_order_by(["metrics.acc DESC", "name"])
    assert order_by_to_json(order) == codec.order_by_out(order)
    assert to_order_by([OrderByJson(**o) for o in order_by_to_json(order)]) == order
    assert to_order_by([]) == ()
    assert OrderBy("metric", "acc", True) in order
    assert ComparisonJson(type="comparison", kind="tag", key="t", op="=", value=None).value is None


# -- artifacts --------------------------------------------------------------------------------------


def test_a_5mb_blob_streams_up_and_down(sql_store, asgi_client):
    from loopml.server.app import create_app

    data = os.urandom(5 * 1024 * 1024 + 123)
    digest = hashlib.sha256(data).hexdigest()
    chunks = [data[i : i + 300_000] for i in range(0, len(data), 300_000)]
    with asgi_client(create_app(sql_store)) as client:
        uploaded = client.put(f"{API}/artifacts/blobs", content=iter(chunks))
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json() == {"digest": digest, "size": len(data)}
        assert client.head(f"{API}/artifacts/blobs/{digest}").status_code == 200
        with client.stream("GET", f"{API}/artifacts/blobs/{digest}") as response:
            assert response.status_code == 200
            hasher = hashlib.sha256()
            for block in response.iter_bytes():
                hasher.update(block)
        assert hasher.hexdigest() == digest
    assert sql_store.artifacts.get_bytes(digest) == data


def test_blob_lookups_answer_404_or_422(api):
    assert api.head(f"{API}/artifacts/blobs/{'0' * 64}").status_code == 404
    assert api.head(f"{API}/artifacts/blobs/xyz").status_code == 422
    bad = api.get(f"{API}/artifacts/blobs/..%2F..%2Fetc")
    assert bad.status_code in (404, 422)


def test_a_missing_blob_is_a_server_side_integrity_error(api):
    response = api.get(f"{API}/artifacts/blobs/{'0' * 64}")
    assert response.status_code == 500
    assert error_of(response)["type"] == "ArtifactIntegrityError"


# -- OpenAPI -------------------------------------------------------------------------------------------


def test_the_openapi_document_lists_every_route(api):
    document = api.get(f"{API}/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    for path, method in [
        (f"{API}/health", "get"),
        (f"{API}/experiments", "post"),
        (f"{API}/runs/search", "post"),
        (f"{API}/runs/{{run_id}}/batch", "post"),
        (f"{API}/models/{{name}}/aliases/{{alias}}", "put"),
        (f"{API}/models/{{name}}/versions/{{version}}/transition", "post"),
        (f"{API}/audit/events", "get"),
        (f"{API}/artifacts/blobs", "put"),
        (f"{API}/artifacts/blobs/{{digest}}", "head"),
        (f"{API}/artifacts/blobs/{{digest}}", "get"),
    ]:
        assert method in paths[path], (path, method)
    assert len(paths) >= 25
    assert api.get(f"{API}/docs").status_code == 200
