"""The parquet sink on a real S3 API (moto's server on 127.0.0.1): the same layout, reads, erasure and retention."""

from __future__ import annotations

import pytest

from loopml.entities.serving import Feedback
from loopml.timestamps import now_ms
from tests.s3_fixtures import moto_endpoint, object_keys, s3_url
from tests.serving.predlog_helpers import DAY_MS, make_models, record

__all__ = ["moto_endpoint", "s3_url"]


@pytest.fixture
def s3_store(s3_url, tmp_path, monkeypatch):
    """A SQLite store whose artifacts, and so its parquet log, are in a fresh S3 bucket."""
    from loopml.store import open_store

    monkeypatch.setenv("LOOPML_PREDICTION_LOG", "parquet")
    monkeypatch.setenv("LOOPML_REDACTION_KEY", "a-redaction-key-of-32-characters")
    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=s3_url)
    yield opened
    opened.close()


def test_the_parquet_sink_logs_reads_erases_and_prunes_on_s3(s3_store, s3_url, moto_endpoint):
    make_models(s3_store, "churn")
    s3_store.serving.set_log_policy("churn", redact={"email": "drop"}, entity_key="user_id", actor="dpo")
    now = now_ms()
    body = '{"inputs": {"user_id": "%s", "email": "someone@example.com"}}'
    s3_store.serving.log_predictions(
        [
            record("old", now - 40 * DAY_MS, body % "user-7"),
            record("a1", now - 1000, body % "user-42"),
            record("a2", now - 500, body % "user-7"),
        ]
    )
    s3_store.serving.log_feedback([Feedback("a1", 1, now)])

    bucket = s3_url.removeprefix("s3://").split("/", 1)[0]
    keys = [key for key in object_keys(moto_endpoint, bucket) if "/prediction-log/" in key]
    assert len(keys) == 2 and all("/prediction-log/model=churn/day=" in key for key in keys)
    assert all(key.rsplit("/", 1)[1].startswith("part-") for key in keys)  # no temporary file left behind
    logged = s3_store.serving.read_predictions("churn", since=now - DAY_MS)
    assert [r.request_id for r in logged] == ["a1", "a2"] and "someone@example.com" not in logged[0].inputs

    assert s3_store.serving.erase_predictions("user-42", actor="dpo") == {"predictions": 1, "feedback": 1}
    assert s3_store.serving.prune_predictions(30 * DAY_MS, actor="ops")["files"] == 1
    assert [r.request_id for r in s3_store.serving.read_predictions("churn")] == ["a2"]
