"""``loopml predictions``: declare a policy, erase by key and prune from the command line (and the Python API)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.main import app
from loopml.entities.serving import Feedback
from loopml.timestamps import now_ms
from tests.serving.predlog_helpers import DAY_MS, make_models, record

runner = CliRunner()


@pytest.fixture
def env(loopml_env, monkeypatch):
    monkeypatch.setenv("LOOPML_REDACTION_KEY", "a-redaction-key-of-32-characters")
    store = loopml.get_tracking_client().store
    make_models(store, "churn")
    return store


def test_the_cli_declares_a_policy_erases_a_person_and_prunes(env):
    store = env
    declared = runner.invoke(
        app, ["predictions", "redact", "churn", "-r", "email=drop", "-r", "user_id=hash", "--entity-key", "user_id"]
    )
    assert declared.exit_code == 0, declared.output
    assert "email" in declared.output and "hash (entity key)" in declared.output
    assert dict(loopml.get_redaction("churn").redact) == {"email": "drop", "user_id": "hash"}

    now = now_ms()
    body = {"records": [{"user_id": "user-42", "email": "a@example.com", "x": 1}]}
    store.serving.log_predictions(
        [
            record("a1", now, json.dumps(body)),
            record("a2", now, json.dumps({"inputs": {"user_id": "user-7"}})),
            record("old", now - 40 * DAY_MS),
        ]
    )
    store.serving.log_feedback([Feedback("a1", 1, now)])
    assert "a@example.com" not in store.serving.read_predictions("churn")[1].inputs

    erased = runner.invoke(app, ["predictions", "delete", "--key", "user-42", "--reason", "ticket 12", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "Erased 1 logged prediction(s) and 1 feedback row(s) in every model." in erased.output
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["old", "a2"]

    pruned = runner.invoke(app, ["predictions", "prune", "--older-than", "30d"])
    assert pruned.exit_code == 0, pruned.output
    assert [r.request_id for r in store.serving.read_predictions("churn")] == ["a2"]
    actions = [e.action for e in store.audit.list_events(action="predictions.*")]
    assert actions == ["predictions.policy", "predictions.erase", "predictions.prune"]


def test_the_cli_refuses_bad_input_in_one_line(env):
    bad_rule = runner.invoke(app, ["predictions", "redact", "churn", "-r", "email"])
    assert bad_rule.exit_code != 0 and "COLUMN=RULE" in bad_rule.output
    bad_age = runner.invoke(app, ["predictions", "prune", "--older-than", "30 days"])
    assert bad_age.exit_code != 0 and "log retention" in bad_age.output
    no_key = runner.invoke(app, ["predictions", "delete", "--key", "user-42", "--model", "churn", "--yes"])
    assert no_key.exit_code != 0 and "declares no entity key" in no_key.output
    shown = runner.invoke(app, ["predictions", "policy", "churn"])
    assert shown.exit_code == 0 and "no redaction" in shown.output


def test_serve_and_server_refuse_a_bad_sink_or_retention_before_starting(env):
    for command in (["serve", "--log-sink", "kafka"], ["server", "--log-sink", "kafka"]):
        refused = runner.invoke(app, command)
        assert refused.exit_code != 0 and "must be one of sql, parquet" in refused.output, refused.output
    refused = runner.invoke(app, ["serve", "--log-retention", "3 weeks"])
    assert refused.exit_code != 0 and "log retention" in refused.output
