"""Per-model redaction in the prediction log: no plaintext of a redacted column reaches the stored bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy

from loopml.errors import InvalidValueError, ModelNotFoundError
from loopml.store.predictions.policy import KEY_ENV, keyed_hash
from loopml.timestamps import now_ms
from tests.serving.predlog_helpers import make_models, record

SECRETS = ("alice@example.com", "078-05-1120", "94103", "Alice Liddell")
RULES = {"email": "drop", "ssn": "hash", "zip": "truncate:3", "name": "drop"}


@pytest.fixture(params=["sql", "parquet"])
def sink(request, monkeypatch):
    monkeypatch.setenv("LOOPML_PREDICTION_LOG", request.param)
    monkeypatch.setenv(KEY_ENV, "a-redaction-key-of-32-characters")
    return request.param


@pytest.fixture
def store(sink, store):
    return store


def bodies() -> list[str]:
    """The same person in every request shape a service logs."""
    person = {"email": SECRETS[0], "ssn": SECRETS[1], "zip": SECRETS[2], "name": SECRETS[3], "age": 41}
    return [
        json.dumps({"records": [person, {**person, "age": 42}]}),
        json.dumps({"columns": {key: [value] for key, value in person.items()}}),
        json.dumps({"inputs": person}),
        json.dumps(
            {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in person.items()]}
        ),
    ]


def stored_bytes(backend: str, db_url: str, tmp_path: Path) -> bytes:
    """Everything the store holds: the database's files (SQLite) or a dump of its tables (PostgreSQL), and the log's files."""
    found = b""
    if backend in ("sqlite", "rest"):  # the REST store's server keeps a SQLite file too
        for path in tmp_path.glob("loopml.db*"):
            found += path.read_bytes()
    else:
        engine = sqlalchemy.create_engine(db_url)
        with engine.connect() as conn:
            for table in ("predictions", "prediction_entities", "prediction_feedback", "audit_events"):
                for row in conn.execute(sqlalchemy.text(f"SELECT * FROM {table}")):
                    found += repr(tuple(row)).encode()
        engine.dispose()
    for path in (tmp_path / "artifacts").rglob("*.parquet"):
        found += path.read_bytes()
        found += repr(pq.read_table(path).to_pylist()).encode()  # the decoded (decompressed) values too
    return found


@pytest.fixture(params=["in place", "helper process"])
def redacted_where(request, monkeypatch):
    """Small batches are redacted in the writer's thread, large ones in a helper process: both, on every batch."""
    from loopml.store.predictions.redactor import REDACTOR

    monkeypatch.setattr(REDACTOR, "offload_bytes", 1 << 60 if request.param == "in place" else 0)
    return request.param


def test_nothing_a_policy_redacts_reaches_the_stored_bytes(store, sink, backend, db_url, tmp_path, redacted_where):
    make_models(store, "churn")
    policy = store.serving.set_log_policy("churn", redact=RULES, entity_key=None, actor="dpo", reason="GDPR")
    assert dict(policy.redact) == RULES
    now = now_ms()
    unparsable = '{"inputs": {"email": "' + SECRETS[0] + '"'  # cut short: cannot be redacted column by column
    store.serving.log_predictions(
        [*(record(f"r{i}", now + i, body) for i, body in enumerate(bodies())), record("r4", now + 4, unparsable)]
    )

    raw = stored_bytes(backend, db_url, tmp_path)
    for secret in SECRETS:
        assert secret.encode() not in raw
    logged = store.serving.read_predictions("churn")
    assert len(logged) == 5 and "redacted" in logged[4].inputs
    token = keyed_hash(SECRETS[1], b"a-redaction-key-of-32-characters")
    first = json.loads(logged[0].inputs)["records"]
    assert first[0] == {"ssn": token, "zip": "941", "age": 41} and first[1]["ssn"] == token  # joins still work
    assert json.loads(logged[1].inputs)["columns"] == {"ssn": [token], "zip": ["941"], "age": [41]}
    assert json.loads(logged[2].inputs)["inputs"] == {"ssn": token, "zip": "941", "age": 41}
    tensors = {t["name"]: t["data"] for t in json.loads(logged[3].inputs)["inputs"]}
    assert tensors == {"ssn": [token], "zip": ["941"], "age": [41]}
    (event,) = store.audit.list_events(action="predictions.policy")
    assert event.actor == "dpo" and event.target == "churn" and event.after["redact"] == RULES

    # removing the policy: rows from then on are logged as received
    store.serving.set_log_policy("churn", redact={}, entity_key=None, actor="dpo")
    assert store.serving.get_log_policy("churn").empty
    store.serving.log_predictions([record("r5", now + 5, bodies()[2])])
    assert store.serving.read_predictions("churn")[-1].inputs == bodies()[2]


def test_a_dead_redaction_helper_never_lets_plaintext_through(store, sink, backend, db_url, tmp_path, monkeypatch):
    from loopml.store.predictions.redactor import REDACTOR

    monkeypatch.setattr(REDACTOR, "offload_bytes", 0)
    make_models(store, "churn")
    store.serving.set_log_policy("churn", redact=RULES, entity_key=None, actor="dpo")
    now = now_ms()
    store.serving.log_predictions([record("r0", now, bodies()[0])])  # starts the helper
    for process in list(REDACTOR._helper()._processes.values()):
        process.kill()
        process.join()
    store.serving.log_predictions([record("r1", now + 1, bodies()[2])])  # the helper is gone: redacted in place
    store.serving.log_predictions([record("r2", now + 2, bodies()[1])])  # a new helper
    raw = stored_bytes(backend, db_url, tmp_path)
    assert not [secret for secret in SECRETS if secret.encode() in raw]
    assert len(store.serving.read_predictions("churn")) == 3


BAD_POLICIES = [
    ({"email": "blur"}, None, "'drop', 'hash' or 'truncate:N'"),
    ({"email": "truncate:0"}, None, "'drop', 'hash' or 'truncate:N'"),
    (["email"], None, "mapping of column"),
    ({"": "drop"}, None, "redacted column name"),
    ({"user_id": "drop"}, "user_id", "never dropped or truncated"),
]


def test_a_bad_policy_is_refused_by_name_and_nothing_changes(store, sink):
    make_models(store, "churn")
    for rules, entity_key, message in BAD_POLICIES:
        with pytest.raises(InvalidValueError, match=message):
            store.serving.set_log_policy("churn", redact=rules, entity_key=entity_key, actor="dpo")
    with pytest.raises(ModelNotFoundError):
        store.serving.set_log_policy("nobody", redact={"email": "drop"}, entity_key=None, actor="dpo")
    assert store.serving.get_log_policy("churn").empty
    assert store.audit.list_events(action="predictions.policy") == []


def test_hashing_without_a_key_is_refused_where_the_log_is_written(sink, monkeypatch, tmp_path):
    from loopml.store import open_store

    monkeypatch.delenv(KEY_ENV)
    opened = open_store(f"sqlite:///{tmp_path / 'k.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        make_models(opened, "churn")
        with pytest.raises(InvalidValueError, match=KEY_ENV):
            opened.serving.set_log_policy("churn", redact={"ssn": "hash"}, entity_key=None, actor="dpo")
    finally:
        opened.close()


def test_policies_and_erasure_over_rest_need_admin_checked_before_the_body(auth_server):
    import httpx

    url, store, tokens = auth_server
    make_models(store, "churn")
    api = f"{url}/api/v1"

    def call(method, path, role, **kwargs):
        return httpx.request(method, api + path, headers={"Authorization": f"Bearer {tokens[role]}"}, **kwargs)

    for role in ("viewer", "editor"):  # a body that is not even JSON: refused for the role first
        assert call("POST", "/predictions/erase", role, content=b"{not json").status_code == 403
        assert call("PUT", "/predictions/policies/churn", role, content=b"{not json").status_code == 403
        assert call("POST", "/predictions/prune", role, content=b"{not json").status_code == 403
    bad = call("PUT", "/predictions/policies/churn", "admin", json={"redact": {"email": "blur"}, "actor": "x"})
    assert bad.status_code == 422 and "email" in bad.text
    ok = call("PUT", "/predictions/policies/churn", "admin", json={"entity_key": "user_id", "actor": "forged"})
    assert ok.status_code == 200 and ok.json() == {"redact": {}, "entity_key": "user_id"}
    assert call("GET", "/predictions/policies/churn", "viewer").json()["entity_key"] == "user_id"
    erased = call("POST", "/predictions/erase", "admin", json={"key": "user-42", "actor": "forged"})
    assert erased.status_code == 200 and erased.json() == {"counts": {"predictions": 0, "feedback": 0}}
    assert [e.actor for e in store.audit.list_events(action="predictions.*")] == ["admin", "admin"]
