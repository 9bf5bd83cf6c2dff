"""``loopml.deploy``/``rollback``/``predictions`` and the ``loopml deploy``/``rollback``/``deployments``/``serve`` commands."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.main import app
from loopml.config import get_settings
from loopml.entities.serving import PredictionRecord
from loopml.errors import DeploymentNotFoundError, InvalidValueError, PredictionNotFoundError

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, template: tuple[Path, dict[int, Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """LOOPML_HOME on a copy of the template store; the module-level API follows it."""
    folder = tmp_path / "home"
    shutil.copytree(template[0], folder)
    monkeypatch.setenv("LOOPML_HOME", str(folder))
    for name in ("LOOPML_DB_URL", "LOOPML_TRACKING_URI", "LOOPML_ARTIFACTS_URL", "COLUMNS", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_ACTOR", "tester")
    loopml.set_tracking_uri(None)
    yield folder
    loopml.set_tracking_uri(None)


def test_the_module_level_api_deploys_rolls_back_and_reads_deployments(home):
    first = loopml.deploy("iris", "champion", reason="launch")
    assert (first.version, first.alias, first.created_by) == (1, "champion", "tester")
    latest = loopml.deploy("iris", "latest", canary={"version": 1, "percent": 5.5}, shadow=2)
    assert (latest.target, latest.canary_percent, latest.shadow_version) == ("3", 5.5, 2)
    assert loopml.get_deployment("iris") == latest
    assert [d.deployment_id for d in loopml.list_deployments("iris")] == [latest.deployment_id, first.deployment_id]
    assert loopml.list_deployments(current=True) == [latest]
    back = loopml.rollback("iris", reason="too early")
    assert (back.action, back.target, back.canary_version) == ("rollback", "champion", None)
    actions = [e.action for e in loopml.search_audit_events("iris", action="deployment.*")]
    assert actions == ["deployment.create", "deployment.create", "deployment.rollback"]
    for bad in ({"version": 2}, {"version": 2, "percent": 150}, {"version": "2", "percent": 5}, [2, 5]):
        with pytest.raises(InvalidValueError):
            loopml.deploy("iris", 1, canary=bad)  # type: ignore[arg-type]
    for bad_shadow in ({"v": 2}, 0, "2"):
        with pytest.raises(InvalidValueError):
            loopml.deploy("iris", 1, shadow=bad_shadow)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        loopml.deploy("iris", 1.5)  # type: ignore[arg-type]
    assert loopml.search_predictions("iris").empty
    with pytest.raises(PredictionNotFoundError):  # nothing was answered: no label may stand for "abc"
        loopml.send_feedback("abc", 1)
    loopml.get_serving_client().store.serving.log_predictions(
        [PredictionRecord(rid, 1, "iris", 1, "main", "{}", "[0]", 1.0, 200) for rid in ("abc", "d")]
    )
    assert loopml.send_feedback("abc", 1) == 1
    assert loopml.send_feedback([{"request_id": "d", "label": None}]) == 1
    with pytest.raises(InvalidValueError):
        loopml.send_feedback([{"request_id": "d"}])


def test_deploy_rollback_and_list_from_the_command_line(home):
    deployed = runner.invoke(
        app, ["deploy", "iris", "champion", "--canary", "2:10", "--shadow", "3", "--reason", "try"]
    )
    assert deployed.exit_code == 0, deployed.output
    assert "iris → @champion (v1), canary v2 at 10%, shadow v3" in deployed.output
    assert runner.invoke(app, ["deploy", "iris", "2"]).exit_code == 0
    listed = runner.invoke(app, ["deployments", "list"])
    assert listed.exit_code == 0 and "iris" in listed.output and "v2" in listed.output
    history = runner.invoke(app, ["deployments", "list", "iris", "--history"])
    assert history.output.count("deploy") >= 2 and "try" in history.output
    rolled = runner.invoke(app, ["rollback", "iris"])
    assert rolled.exit_code == 0 and "Rolled back" in rolled.output and "canary v2 at 10%" in rolled.output
    assert loopml.get_deployment("iris").canary_version == 2
    bad = runner.invoke(app, ["deploy", "iris", "1", "--canary", "ten"])
    assert bad.exit_code == 2 and "VERSION:PERCENT" in bad.output
    missing = runner.invoke(app, ["deploy", "iris", "9"])
    assert missing.exit_code == 1 and "no version 9" in missing.output
    nothing = runner.invoke(app, ["rollback", "iris"])  # back at the first deployment: nothing earlier
    assert nothing.exit_code == 1 and "no earlier one" in nothing.output
    with pytest.raises(DeploymentNotFoundError):
        loopml.rollback("iris")


def test_serve_refuses_bad_options_before_starting(home):
    assert runner.invoke(app, ["serve", "--help"]).exit_code == 0
    both = runner.invoke(app, ["serve", "-m", "iris", "--all"])
    assert both.exit_code == 2 and "--all" in both.output
    assert runner.invoke(app, ["serve", "-m", "iris@bad alias"]).exit_code == 2
    assert runner.invoke(app, ["serve", "-m", "iris/\u00b2"]).exit_code == 2  # a digit to isdigit(), not to int()
    assert runner.invoke(app, ["serve", "--max-memory", "lots"]).exit_code == 2
    assert runner.invoke(app, ["serve", "--log-queue-bytes", "lots"]).exit_code == 2
    for command in ("serve", "server"):  # uvicorn would answer an unknown level with a KeyError traceback
        loud = runner.invoke(app, [command, "--log-level", "loud"])
        assert loud.exit_code == 2 and "'loud' is not one of" in loud.output
    assert runner.invoke(app, ["deployments", "list"]).output.startswith("No deployments yet")


def test_serve_db_url_wins_over_the_tracking_uri_in_the_environment(home, tmp_path, monkeypatch):
    import loopml.serving.main

    seen: list[str] = []
    monkeypatch.setattr(loopml.serving.main, "serve", lambda *a, **k: seen.append(get_settings().tracking_uri))
    monkeypatch.setenv("LOOPML_TRACKING_URI", "http://127.0.0.1:9/never-used")
    monkeypatch.delenv("LOOPML_DB_URL", raising=False)  # the command sets both: put them back afterwards
    url = f"sqlite:///{tmp_path / 'other.db'}"
    started = runner.invoke(app, ["serve", "--db-url", url])
    assert started.exit_code == 0, started.output
    assert seen == [url] and url in started.output


def test_serve_hands_the_log_queue_bounds_to_every_worker(home, monkeypatch):
    """--log-queue-bytes reaches the config each worker's app is built from, and the banner says the bounds."""
    import json
    import os

    import uvicorn

    from loopml.serving.main import CONFIG_ENV, app_from_env

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(json.loads(os.environ[CONFIG_ENV])))
    monkeypatch.setenv(CONFIG_ENV, "{}")  # serve() sets it for its workers: put it back afterwards
    started = runner.invoke(app, ["serve", "--log-queue", "500", "--log-queue-bytes", "512M"])
    assert started.exit_code == 0, started.output
    assert "queue: 500 records, 512.0 MiB of text" in started.output
    assert calls[0]["log_capacity"] == 500 and calls[0]["log_capacity_bytes"] == 512 * 1024**2
    service = app_from_env().state.service
    try:
        assert (service.log.capacity, service.log.capacity_bytes) == (500, 512 * 1024**2)
    finally:
        service.store.close()


def test_an_input_column_named_like_a_log_column_does_not_overwrite_it():
    """A feature called "time" or "status" stays out of the flattened log, whose own columns keep their values."""
    import json

    from loopml.entities.serving import PredictionRecord
    from loopml.serving.client import predictions_frame

    body = json.dumps({"records": [{"time": "morning", "status": "gold", "x": 1.5}]})
    record = PredictionRecord("r1", 1_700_000_000_000, "m", 1, "main", body, "[1]", 0.5, 200)
    [row] = predictions_frame([record], flatten=True).to_dict(orient="records")
    assert (str(row["time"]), row["status"], row["x"], row["prediction"]) == ("2023-11-14 22:13:20+00:00", 200, 1.5, 1)


def test_keep_failed_leaves_one_row_per_failed_request_beside_the_answers():
    import json

    from loopml.entities.serving import PredictionRecord
    from loopml.serving.client import predictions_frame

    body = json.dumps({"records": [{"x": 1.0}, {"x": 2.0}]})
    ok = PredictionRecord("ok", 1_700_000_000_000, "m", 1, "canary", body, "[0, 1]", 0.5, 200)
    failed = PredictionRecord("bad", 1_700_000_000_001, "m", 1, "canary", body, '{"error": "boom"}', 0.7, 500)
    assert predictions_frame([ok, failed], flatten=True)["request_id"].tolist() == ["ok", "ok"]
    frame = predictions_frame([ok, failed], flatten=True, keep_failed=True, labels={"bad": 1})
    assert frame["request_id"].tolist() == ["ok", "ok", "bad"] and frame["status"].tolist() == [200, 200, 500]
    assert frame["prediction"].isna().tolist() == [False, False, True] and frame["label"].isna().tolist() == [True, True, False]
