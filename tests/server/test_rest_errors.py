"""The REST client's HTTP layer over httpx.MockTransport: error decoding and retries."""

from __future__ import annotations

import json

import httpx
import pytest

from loopml.errors import (
    ConflictError,
    InvalidFilterError,
    InvalidInputError,
    InvalidValueError,
    LoopMLError,
    NotFoundError,
    RunNotFoundError,
    SchemaError,
    StoreError,
    UntrustedTypeError,
)
from loopml.store.rest import open_rest_store
from loopml.store.rest.http import HttpSession

BASE = "http://loopml.test:5000"


def session_over(handler, sleeps=None, **kwargs):
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return HttpSession(BASE, client=client, sleep=(sleeps.append if sleeps is not None else lambda _s: None), **kwargs)


def error_answer(status, type_name, message="boom", **extra):
    return httpx.Response(status, json={"error": {"type": type_name, "message": message, **extra}})


def raised_by(answer):
    session = session_over(lambda request: answer)
    with pytest.raises(LoopMLError) as caught:
        session.call("GET", "/anything")
    return caught.value


def test_an_error_is_raised_again_as_the_class_it_names():
    error = raised_by(error_answer(404, "RunNotFoundError", "No run with id 'x'."))
    assert type(error) is RunNotFoundError
    assert str(error) == "No run with id 'x'."


def test_extra_fields_come_back_as_attributes():
    error = raised_by(error_answer(422, "InvalidFilterError", "bad", text="a ~ 1", position=2, token="~"))
    assert type(error) is InvalidFilterError
    assert (error.text, error.position, error.token) == ("a ~ 1", 2, "~")
    schema = raised_by(error_answer(422, "SchemaError", "columns", problems={"x": "missing"}))
    assert type(schema) is SchemaError and schema.problems == {"x": "missing"}
    untrusted = raised_by(error_answer(422, "UntrustedTypeError", "no", untrusted=["a.B"]))
    assert type(untrusted) is UntrustedTypeError and untrusted.untrusted == ["a.B"]
    validation = raised_by(error_answer(422, "InvalidInputError", "bad body", problems={"body.x": "required"}))
    assert type(validation) is InvalidInputError and validation.problems == {"body.x": "required"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, NotFoundError),
        (409, ConflictError),
        (422, InvalidInputError),
        (400, StoreError),
        (500, StoreError),
        (503, StoreError),
    ],
)
def test_an_unknown_type_name_falls_back_by_status(status, expected):
    for answer in (
        error_answer(status, "SomethingNewError"),
        error_answer(status, "__class__"),
        error_answer(status, "Exception"),  # not a loopml error: never raised by name
        httpx.Response(status, text="<html>proxy error</html>"),
        httpx.Response(status, json={"detail": "not ours"}),
    ):
        error = raised_by(answer)
        assert type(error) is expected, (answer, error)
        assert str(error)


def test_a_body_that_is_not_json_on_success_is_a_store_error():
    session = session_over(lambda request: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(StoreError, match="not JSON"):
        session.call("GET", "/experiments")


def test_idempotent_calls_are_retried_on_connection_errors_with_backoff():
    calls, sleeps = [], []

    def handler(request):
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"ok": True})

    session = session_over(handler, sleeps)
    assert session.call("GET", "/experiments") == {"ok": True}
    assert calls == ["GET"] * 3
    assert sleeps == pytest.approx([0.1, 0.4])


def test_retries_stop_after_three_tries():
    calls, sleeps = [], []

    def handler(request):
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    session = session_over(handler, sleeps)
    with pytest.raises(StoreError, match=r"Cannot reach the loopml server at http://loopml\.test:5000"):
        session.call("PUT", "/models/m/aliases/a", json_body={"version": 1, "actor": "a"})
    assert len(calls) == 3
    assert sleeps == pytest.approx([0.1, 0.4])


def test_a_post_with_an_idempotency_key_is_retried_and_one_without_is_not():
    calls = []

    def handler(request):
        calls.append(json.loads(request.content))
        if len(calls) == 1:
            raise httpx.ConnectError("reset", request=request)
        return httpx.Response(204)

    store = open_rest_store(BASE, "", client=httpx.Client(transport=httpx.MockTransport(handler)))
    store.tracking._http._sleep = lambda _s: None  # type: ignore[attr-defined]
    store.tracking.log_batch("a" * 32, params={"p": "1"}, idempotency_key="k1")
    assert [c["idempotency_key"] for c in calls] == ["k1", "k1"]

    calls.clear()
    with pytest.raises(StoreError, match="Cannot reach"):
        store.tracking.log_batch("a" * 32, params={"p": "1"})
    assert len(calls) == 1


def test_a_create_is_not_retried():
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ConnectError("reset", request=request)

    session = session_over(handler)
    with pytest.raises(StoreError):
        session.call("POST", "/experiments", json_body={"name": "x"})
    assert len(calls) == 1


def test_the_token_is_sent_as_a_bearer_header(monkeypatch):
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json=[])

    monkeypatch.setenv("LOOPML_TOKEN", "s3cret")
    session_over(handler).call("GET", "/experiments")
    monkeypatch.delenv("LOOPML_TOKEN")
    session_over(handler).call("GET", "/experiments")
    assert seen == ["Bearer s3cret", None]


def test_requests_go_under_api_v1_of_the_base_url():
    urls = []

    def handler(request):
        urls.append(str(request.url))
        return httpx.Response(200, json=[])

    for base in ("http://h:1", "http://h:1/", "http://h:1/api/v1", "http://h:1/prefix"):
        client = httpx.Client(transport=httpx.MockTransport(handler))
        HttpSession(base, client=client).call("GET", "/experiments", params={"a": None, "b": "x y"})
    assert urls == [
        "http://h:1/api/v1/experiments?b=x+y",
        "http://h:1/api/v1/experiments?b=x+y",
        "http://h:1/api/v1/experiments?b=x+y",
        "http://h:1/prefix/api/v1/experiments?b=x+y",
    ]


def test_a_value_json_cannot_hold_is_refused_before_sending():
    session = session_over(lambda request: pytest.fail("nothing should be sent"))
    with pytest.raises(InvalidValueError, match="JSON"):
        session.call("PUT", "/models/m/versions/1/evidence", json_body={"evidence": {"x": object()}, "actor": "a"})
