"""Right to erasure: every logged request and feedback about an entity key goes, on both sinks, audited."""

from __future__ import annotations

import json

import pytest

from loopml.entities.serving import Feedback
from loopml.errors import InvalidValueError
from loopml.store.predictions.policy import KEY_ENV
from loopml.timestamps import now_ms
from tests.serving.predlog_helpers import DAY_MS, make_models, record


@pytest.fixture(params=["sql", "parquet"])
def sink(request, monkeypatch):
    monkeypatch.setenv("LOOPML_PREDICTION_LOG", request.param)
    monkeypatch.setenv(KEY_ENV, "a-redaction-key-of-32-characters")
    return request.param


@pytest.fixture
def store(sink, store):
    return store


def body(*users: object) -> str:
    return json.dumps({"records": [{"user_id": user, "x": 1} for user in users]})


def test_erasing_a_key_removes_its_requests_and_feedback_and_nothing_else(store, sink):
    make_models(store, "churn", "fraud", "plain")
    store.serving.set_log_policy("churn", redact={}, entity_key="user_id", actor="dpo")
    store.serving.set_log_policy("fraud", redact={"user_id": "hash"}, entity_key="user_id", actor="dpo")
    now = now_ms()
    store.serving.log_predictions(
        [
            record("a1", now - 2 * DAY_MS, body("user-42")),
            record("a1", now - 2 * DAY_MS, body("user-42"), role="shadow", version=2),
            record("a2", now - DAY_MS, body("user-7", "user-42")),  # a batch that mentions them among others
            record("a3", now, body("user-7")),
            record("b1", now, body("user-42"), model="fraud"),  # hashed entity key: found by the same key
            record("b2", now, body(42), model="fraud"),  # another person (a number, not the text "user-42")
            record("c1", now, body("user-42"), model="plain"),  # no entity key declared: not searchable
        ]
    )
    store.serving.log_feedback([Feedback("a1", 1, now), Feedback("a3", 0, now), Feedback("b1", 1, now)])
    store.serving.log_predictions([record("a4", now + 1, body("user-42"))])  # a later batch

    counts = store.serving.erase_predictions("user-42", actor="dpo", reason="erasure request #12")

    assert counts == {"predictions": 5, "feedback": 2}
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["a3"]
    assert [r.request_id for r in store.serving.read_predictions("fraud")] == ["b2"]
    assert [r.request_id for r in store.serving.read_predictions("plain")] == ["c1"]
    assert [f.request_id for f in store.serving.read_feedback()] == ["a3"]
    (event,) = store.audit.list_events(action="predictions.erase")
    assert event.actor == "dpo" and event.reason == "erasure request #12"
    assert event.after == {"predictions": 5, "feedback": 2, "models": ["churn", "fraud"]}
    assert "user-42" not in json.dumps([event.after, event.before, event.evidence])  # the key is not kept

    # once more: nothing left to remove, and the other person is intact
    assert store.serving.erase_predictions("user-42", actor="dpo") == {"predictions": 0, "feedback": 0}
    assert store.serving.erase_predictions("42", name="fraud", actor="dpo") == {"predictions": 1, "feedback": 0}
    assert store.serving.read_predictions("fraud") == []


def test_erasure_by_a_model_without_an_entity_key_is_refused_by_name(store, sink):
    make_models(store, "plain")
    store.serving.log_predictions([record("c1", now_ms(), body("user-42"), model="plain")])
    with pytest.raises(InvalidValueError, match="declares no entity key"):
        store.serving.erase_predictions("user-42", name="plain", actor="dpo")
    with pytest.raises(InvalidValueError, match="entity key to erase"):
        store.serving.erase_predictions("", actor="dpo")
    assert len(store.serving.read_predictions("plain")) == 1
    assert store.audit.list_events(action="predictions.erase") == []
