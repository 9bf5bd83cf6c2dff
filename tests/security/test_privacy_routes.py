"""Attacks on the prediction log's privacy routes: ``POST /predictions/erase`` and the redaction policies.

The role is checked before the body is read (a viewer's or an editor's malformed or oversized body is a
403, never a 413 or 422 that would show the body was looked at); an admin's malformed payload is a 4xx
naming the field, never a 500, never echoing the erased key, a file path or the redaction key; every
erasure and policy change is audited, and no audit event (nor error, nor the CLI's output) holds the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.entities.auth import Role
from loopml.errors import InvalidValueError
from loopml.store.predictions.policy import KEY_ENV
from loopml.timestamps import now_ms
from tests.serving.predlog_helpers import make_models, record

REDACTION_KEY = "a-redaction-key-of-32-characters"
PERSON = "alice.liddell@example.com"
LIMIT = 64 * 1024
JSON = {"Content-Type": "application/json"}  # FastAPI decodes a JSON body before it solves dependencies
ADMIN_ROUTES = [
    ("POST", "/api/v1/predictions/erase"),
    ("PUT", "/api/v1/predictions/policies/churn"),
    ("POST", "/api/v1/predictions/prune"),
]


@pytest.fixture
def server(tmp_path: Path, asgi_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, dict]]:
    """``(client, store, tokens)``: the control plane with auth on, a small body limit, a model "churn"."""
    from loopml.server.app import create_app
    from loopml.store import open_store

    monkeypatch.setenv(KEY_ENV, REDACTION_KEY)
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", artifacts_url=str(tmp_path / "artifacts"))
    make_models(store, "churn")
    tokens = {role.value: store.tokens.issue_token(role.value, role, actor="setup").secret for role in Role}
    try:
        with asgi_client(create_app(store, auth=True, max_body_bytes=LIMIT), raise_server_exceptions=False) as client:
            yield client, store, tokens
    finally:
        store.close()


def auth(tokens: dict, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def clean_error(answer: Any, *fields: str) -> str:
    """A 4xx whose message names one of ``fields`` and holds no path, no redaction key, no erased person."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    text = answer.text
    for secret in (REDACTION_KEY, PERSON, "/tmp", "p.db", "Traceback"):
        assert secret not in text, (secret, text)
    if fields:
        assert any(field in text for field in fields), (fields, text)
    return text


MALFORMED = [
    b"{not json",
    b"[" * 20_000 + b"]" * 20_000,  # deep nesting, under the body limit
    b'{"key": ' + b'"x' * 1000 + b'"}',
    b"\xff\xfe\x00",
    b"null",
    json.dumps({"key": PERSON, "actor": "a", "redact": {"email": "blur"}, "older_than_ms": -1}).encode(),
]


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_a_viewer_or_editor_is_refused_before_the_body_is_read(server, role):
    client, store, tokens = server
    for method, path in ADMIN_ROUTES:
        for body in MALFORMED:  # some under the body limit, some over it: all refused for the role first
            answer = client.request(method, path, content=body, headers={**auth(tokens, role), **JSON})
            assert answer.status_code == 403, (path, body[:20], answer.status_code, answer.text)
            assert answer.json()["error"]["type"] == "PermissionDeniedError"
        # a body streamed (no Content-Length) past the limit: the role is refused before the body is read
        streamed = client.request(method, path, content=iter([b"{" * LIMIT] * 3), headers=auth(tokens, role))
        assert streamed.status_code == 403, (path, streamed.status_code, streamed.text)
    assert store.audit.list_events(action="predictions.*") == []


def test_a_declared_oversized_body_is_refused_alike_for_every_caller(server):
    """A Content-Length past the limit is refused server-wide before any route runs (nothing is read): the
    same 413 for no token, a viewer and an admin, so it tells a caller nothing about roles or routes."""
    client, store, tokens = server
    for method, path in ADMIN_ROUTES:
        answers = [client.request(method, path, content=b"{" * (LIMIT + 1), headers=headers)
                   for headers in ({}, auth(tokens, "viewer"), auth(tokens, "admin"))]  # fmt: skip
        assert {a.status_code for a in answers} == {413} and len({a.text for a in answers}) == 1, path
    assert store.audit.list_events(action="predictions.*") == []


def test_without_a_token_the_answer_is_401_whatever_the_body(server):
    client, _, _ = server
    for method, path in ADMIN_ROUTES:
        for body in MALFORMED[:2]:
            assert client.request(method, path, content=body, headers=JSON).status_code == 401, path


ERASE_BODIES = [
    ({"key": PERSON + "x" * 256, "actor": "a"}, "key"),
    ({"key": 5, "actor": "a"}, "key"),
    ({"key": "", "actor": "a"}, "key"),
    ({"key": [PERSON], "actor": "a"}, "key"),
    ({"key": {"email": PERSON}, "actor": "a"}, "key"),
    ({"key": None, "actor": "a"}, "key"),
    ({"actor": "a"}, "key"),
    ({"key": PERSON}, "actor"),
    ({"key": PERSON, "actor": "a", "model": "bad name!"}, "model"),
    ({"key": PERSON, "actor": "a", "model": 7}, "model"),
    ({"key": PERSON, "actor": "a", "model": "ghost"}, "ghost"),
    ({"key": PERSON, "actor": "a", "model": "churn"}, "churn"),  # no entity key declared: refused by name
    ({"key": PERSON, "actor": "a", "reason": ["x"]}, "reason"),
    ({"key": PERSON, "actor": "a", "extra": 1}, "extra"),
    ([{"key": PERSON}], "body"),
    ("x", "body"),
]


def test_a_malformed_erasure_is_a_4xx_naming_the_field_and_never_echoes_the_key(server):
    client, store, tokens = server
    for body, field in ERASE_BODIES:
        answer = client.post("/api/v1/predictions/erase", json=body, headers=auth(tokens, "admin"))
        clean_error(answer, field)
    assert store.audit.list_events(action="predictions.erase") == []


POLICY_BODIES = [
    ({"redact": {"email": "blur"}, "actor": "a"}, "email"),
    ({"redact": {"email": "truncate:0"}, "actor": "a"}, "email"),
    ({"redact": {"email": "truncate:99999"}, "actor": "a"}, "email"),
    ({"redact": {"email\n": "drop"}, "actor": "a"}, "column"),
    ({"redact": {"": "drop"}, "actor": "a"}, "redact"),
    ({"redact": {"x" * 300: "drop"}, "actor": "a"}, "redact"),
    ({"redact": {"email": 5}, "actor": "a"}, "redact.email"),
    ({"redact": {"email": None}, "actor": "a"}, "redact.email"),
    ({"redact": ["email"], "actor": "a"}, "redact"),
    ({"redact": "drop", "actor": "a"}, "redact"),
    ({"redact": {str(i): "drop" for i in range(1001)}, "actor": "a"}, "1000"),
    ({"redact": {"user_id": "drop"}, "entity_key": "user_id", "actor": "a"}, "user_id"),
    ({"redact": {"user_id": "truncate:3"}, "entity_key": "user_id", "actor": "a"}, "user_id"),
    ({"entity_key": "", "actor": "a"}, "entity_key"),
    ({"entity_key": 5, "actor": "a"}, "entity_key"),
    ({"entity_key": "a\x00b", "actor": "a"}, "entity key"),
    ({"redact": {}}, "actor"),
    ({"redact": {}, "actor": "a", "extra": True}, "extra"),
]


def test_a_malformed_policy_is_a_4xx_naming_the_field_and_changes_nothing(server):
    client, store, tokens = server
    path = "/api/v1/predictions/policies/churn"
    client.put(path, json={"redact": {"email": "hash"}, "entity_key": "user_id", "actor": "a"}, headers=auth(tokens, "admin"))
    for body, field in POLICY_BODIES:
        clean_error(client.put(path, json=body, headers=auth(tokens, "admin")), field)
    assert client.get(path, headers=auth(tokens, "viewer")).json() == {"redact": {"email": "hash"}, "entity_key": "user_id"}
    assert len(store.audit.list_events(action="predictions.policy")) == 1
    for name in ("ghost", "%00", "a" * 300, "bad%20name!"):
        clean_error(client.get(f"/api/v1/predictions/policies/{name}", headers=auth(tokens, "viewer")))
        clean_error(client.put(f"/api/v1/predictions/policies/{name}", json={"actor": "a"}, headers=auth(tokens, "admin")))


def test_an_erasure_is_audited_without_the_key_and_the_actor_cannot_be_forged(server):
    client, store, tokens = server
    admin = auth(tokens, "admin")
    set_policy = {"redact": {"email": "hash"}, "entity_key": "email", "actor": "forged"}
    assert client.put("/api/v1/predictions/policies/churn", json=set_policy, headers=admin).status_code == 200
    now = now_ms()
    body = json.dumps({"records": [{"email": PERSON, "x": 1}]})
    store.serving.log_predictions([record("r1", now, body), record("r2", now, json.dumps({"records": [{"x": 2}]}))])
    erase = {"key": PERSON, "actor": "forged", "reason": "ticket 12"}
    answer = client.post("/api/v1/predictions/erase", json=erase, headers=admin)
    assert answer.status_code == 200 and answer.json() == {"counts": {"predictions": 1, "feedback": 0}}
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["r2"]
    events = store.audit.list_events(action="predictions.*")
    assert [(e.action, e.actor) for e in events] == [("predictions.policy", "admin"), ("predictions.erase", "admin")]
    dumped = json.dumps([[e.target, e.before, e.after, e.evidence, e.reason] for e in events])
    assert PERSON not in dumped and REDACTION_KEY not in dumped
    # and the audit log as the API shows it
    listed = client.get("/api/v1/audit/events", headers=admin)
    assert listed.status_code == 200 and PERSON not in listed.text and REDACTION_KEY not in listed.text


def test_the_store_refuses_a_bad_key_without_echoing_it(store, monkeypatch):
    """On every backend: a key too long (a pasted record, say) is refused without repeating its text."""
    monkeypatch.setenv(KEY_ENV, REDACTION_KEY)
    make_models(store, "churn")
    store.serving.set_log_policy("churn", redact={}, entity_key="email", actor="dpo")
    for key in (PERSON * 20, "", 42, None, [PERSON]):
        with pytest.raises(InvalidValueError) as raised:
            store.serving.erase_predictions(key, actor="dpo")
        assert PERSON not in str(raised.value) and "entity key to erase" in str(raised.value), key
    assert store.audit.list_events(action="predictions.erase") == []


def test_the_cli_erases_and_prints_no_key(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from loopml.cli.main import app
    from loopml.store import open_store

    monkeypatch.setenv(KEY_ENV, REDACTION_KEY)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOOPML_TRACKING_URI", url)
    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    opened = open_store(url, artifacts_url=str(tmp_path / "artifacts"))
    try:
        make_models(opened, "churn")
        opened.serving.set_log_policy("churn", redact={"email": "hash"}, entity_key="email", actor="dpo")
        opened.serving.log_predictions([record("r1", now_ms(), json.dumps({"records": [{"email": PERSON}]}))])
    finally:
        opened.close()
    runner = CliRunner()
    result = runner.invoke(app, ["predictions", "delete", "--key", PERSON, "--yes", "--reason", "ticket 7"])
    assert result.exit_code == 0, result.output
    assert "Erased 1 logged prediction" in result.output and PERSON not in result.output
    refused = runner.invoke(app, ["predictions", "delete", "--key", PERSON * 20, "--yes"])
    assert refused.exit_code != 0 and PERSON not in refused.output and "Traceback" not in refused.output

