"""The ``loopml`` command, driven through Typer's CliRunner against a store in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import loopml
from loopml.cli.main import ORDER, app

runner = CliRunner()


@pytest.fixture
def runs(home: Path) -> dict[str, str]:
    """Three finished runs in experiment "cli" and one in "other"; name -> run id."""
    ids = {}
    for name, model, acc, loss in (("alpha", "rf", 0.81, 0.5), ("beta", "lr", 0.93, 0.2), ("gamma", "rf", 0.88, 0.3)):
        with loopml.start_run(name, experiment="cli", params={"model": model, "depth": 3}, capture=False) as run:
            run.log_metric("acc", acc)
            run.log_metric("loss", loss + 0.1, step=0)
            run.log_metric("loss", loss, step=1)
            run.set_tag("team", "vision")
            run.set_tag("loopml.note", "system")
            run.log_dict({"acc": acc}, "report.json")
        ids[name] = run.run_id
    with loopml.start_run("delta", experiment="other", capture=False) as run:
        run.log_metric("acc", 0.5)
    ids["delta"] = run.run_id
    return ids


def invoke(*args: str) -> object:
    return runner.invoke(app, list(args))


def row(output: str, key: str) -> str:
    """The table line whose first cell is ``key``."""
    return next(line for line in output.splitlines() if line.strip("│┃ ").split(" ")[0] == key)


def order_of(output: str, names: list[str]) -> list[str]:
    return sorted(names, key=output.index)


# -- experiments / runs list ------------------------------------------------------------------


def test_experiments_list(runs: dict[str, str]) -> None:
    result = invoke("experiments", "list")
    assert result.exit_code == 0, result.output
    assert "cli" in result.output and "other" in result.output


def test_runs_list_shows_names_and_full_ids(runs: dict[str, str]) -> None:
    result = invoke("runs", "list", "-e", "cli")
    assert result.exit_code == 0, result.output
    for name in ("alpha", "beta", "gamma"):
        assert name in result.output
        assert runs[name] in result.output
    assert "delta" not in result.output
    assert "3 runs" in result.output


def test_runs_list_every_experiment_by_default(runs: dict[str, str]) -> None:
    result = invoke("runs", "list")
    assert result.exit_code == 0, result.output
    assert "delta" in result.output and "alpha" in result.output


def test_runs_list_filter_narrows(runs: dict[str, str]) -> None:
    result = invoke("runs", "list", "-e", "cli", "--filter", "params.model = 'rf' and metrics.acc > 0.85")
    assert result.exit_code == 0, result.output
    assert "gamma" in result.output
    assert "alpha" not in result.output and "beta" not in result.output


def test_runs_list_order_by(runs: dict[str, str]) -> None:
    result = invoke("runs", "list", "-e", "cli", "--order-by", "metrics.acc DESC")
    assert result.exit_code == 0, result.output
    assert order_of(result.output, ["alpha", "beta", "gamma"]) == ["beta", "gamma", "alpha"]
    result = invoke("runs", "list", "-e", "cli", "-o", "metrics.acc ASC")
    assert order_of(result.output, ["alpha", "beta", "gamma"]) == ["alpha", "gamma", "beta"]


def test_runs_list_limit_says_more_match(runs: dict[str, str]) -> None:
    result = invoke("runs", "list", "-e", "cli", "-n", "1", "-o", "metrics.acc DESC")
    assert result.exit_code == 0, result.output
    assert "beta" in result.output and "gamma" not in result.output
    assert "more match" in result.output


def test_runs_list_empty(home: Path) -> None:
    result = invoke("runs", "list")
    assert result.exit_code == 0, result.output
    assert "No runs" in result.output


# -- runs show / compare ------------------------------------------------------------------------


def test_runs_show(runs: dict[str, str]) -> None:
    result = invoke("runs", "show", runs["beta"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert runs["beta"] in out and "beta" in out and "FINISHED" in out
    assert "model" in out and "lr" in out  # params
    assert "acc" in out and "0.93" in out  # latest metrics
    assert "loss" in out and "0.2" in out and "0.3" not in out.split("Metrics")[1].split("Tags")[0]
    assert "team" in out and "vision" in out
    assert out.index("System tags") > out.index("Tags")
    assert "loopml.note" in out.split("System tags")[1]
    assert "report.json" in out and "B" in out


def test_runs_show_datasets_and_parent(home: Path) -> None:
    import pandas as pd

    with (
        loopml.start_run("parent", experiment="cli", capture=False) as parent,
        loopml.start_run("child", experiment="cli", capture=False) as child,
    ):
        dataset = child.log_dataset(pd.DataFrame({"x": [1, 2, 3]}), "tiny", context="eval")
    result = invoke("runs", "show", child.run_id)
    assert result.exit_code == 0, result.output
    assert f"tiny@{dataset.digest[:12]}" in result.output and "eval" in result.output
    assert parent.run_id in result.output
    result = invoke("runs", "show", parent.run_id)
    assert "child runs" in result.output


def test_runs_compare(runs: dict[str, str]) -> None:
    result = invoke("runs", "compare", runs["alpha"], runs["beta"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "alpha" in out and "beta" in out
    acc_line = row(out, "acc")
    assert "0.81" in acc_line and "★ 0.93" in acc_line  # higher is better
    loss_line = row(out, "loss")
    assert "★ 0.5" not in loss_line and "★ 0.2" in loss_line  # lower is better for losses
    model_line = row(out, "model")
    assert "rf" in model_line and "lr" in model_line


def test_runs_compare_highlights_only_differing_rows(runs: dict[str, str]) -> None:
    from rich.console import Console

    from loopml.cli.output import compare_table

    console = Console(record=True, width=120, force_terminal=True, color_system="standard")
    console.print(compare_table([loopml.get_run(runs["alpha"]), loopml.get_run(runs["gamma"])]))
    lines = console.export_text(styles=True).splitlines()
    bold_yellow = "\x1b[1;33m"

    def line(key: str) -> str:
        return next(text for text in lines if key in text)

    assert bold_yellow in line("acc")  # 0.81 vs 0.88
    assert bold_yellow not in line("model")  # rf vs rf
    assert bold_yellow not in line("depth")


def test_compare_needs_two_runs(runs: dict[str, str]) -> None:
    result = invoke("runs", "compare", runs["alpha"])
    assert result.exit_code == 2
    assert "at least two" in result.output


# -- errors --------------------------------------------------------------------------------------


def test_malformed_filter_is_one_error_line(runs: dict[str, str]) -> None:
    result = invoke("runs", "list", "-f", "metrics.acc >> 1")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if "Invalid filter" in line]
    assert len(error_lines) == 1 and error_lines[0].startswith("Error: Invalid filter")
    assert result.stdout == ""  # everything went to stderr


def test_unknown_run_id_exits_1(home: Path) -> None:
    result = invoke("runs", "show", "0" * 32)
    assert result.exit_code == 1
    assert result.output.startswith("Error: Run not found")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_unknown_experiment_exits_1(runs: dict[str, str]) -> None:
    result = invoke("runs", "list", "-e", "nope")
    assert result.exit_code == 1
    assert "Experiment not found" in result.output


def test_usage_errors_exit_2(home: Path) -> None:
    result = invoke("runs", "lst")
    assert result.exit_code == 2
    assert "Usage" in result.output
    result = invoke("runs", "list", "--limit", "zero")
    assert result.exit_code == 2


def test_main_prints_loopml_errors_without_traceback(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loopml.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "show", "nope"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("Error: Run not found")
    assert "Traceback" not in captured.err
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "nope"])
    assert exit_info.value.code == 2
    assert "Usage" in capsys.readouterr().err


# -- db ----------------------------------------------------------------------------------------------


def test_db_upgrade_and_current(home: Path) -> None:
    from loopml.store.sql.engine import head_revision

    head = head_revision()
    assert head >= "0002"
    result = invoke("db", "current")
    assert result.exit_code == 0, result.output
    assert "not created yet" in result.output
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "none (empty database)" in result.output
    assert f"{head} (head)" in result.output
    assert str(home / "loopml.db") in result.output
    result = invoke("db", "upgrade")
    assert "Already up to date" in result.output
    result = invoke("db", "current")
    assert f"Revision  {head} (head)" in result.output


def test_db_url_password_hidden(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_DB_URL", "postgresql+psycopg://user:s3cret@127.0.0.1:1/loopml?connect_timeout=2")
    result = invoke("db", "upgrade")
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    assert "***" in result.output and result.output.startswith("Error:")
    assert "Traceback" not in result.output


# -- help and import cost -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["experiments"],
        ["experiments", "list"],
        ["runs"],
        ["runs", "list"],
        ["runs", "show"],
        ["runs", "compare"],
        ["db"],
        ["db", "upgrade"],
        ["db", "current"],
        ["demo"],
    ],
)
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_root_help_has_examples() -> None:
    result = runner.invoke(app, ["--help"])
    assert "Examples" in result.output and "loopml demo" in result.output


def test_root_help_says_what_loopml_is_with_one_line_per_command() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    opening = result.output.split("Options")[0]
    assert "closed loop" in opening and "monitor" in opening and "retrain" in opening
    assert "see where they came from" not in result.output
    root = typer.main.get_command(app)
    listed = [line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│ ")]
    for name, command in root.commands.items():
        assert command.short_help, f"{name} has no one-line summary"
        rows = [row.split(None, 1) for row in listed if row.split(" ")[0] == name]
        assert rows == [[name, command.short_help]], rows  # one row: the summary never wraps
    # every command is listed, in the order of the loop
    assert [row.split(" ")[0] for row in listed if row.split(" ")[0] in root.commands] == list(ORDER)


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


def test_version_and_help_show_no_placeholders() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"loopml {loopml.__version__}\n"
    for path in _command_paths(typer.main.get_command(app)):
        shown = runner.invoke(app, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        assert "<bool>" not in shown.output, (path, shown.output)  # a flag takes no value


def test_import_is_cheap() -> None:
    code = (
        "import sys, loopml.cli.main; "
        "heavy = [m for m in ('sklearn', 'sqlalchemy', 'pandas', 'numpy', 'matplotlib') if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- demo ------------------------------------------------------------------------------------------------------


def test_demo_end_to_end(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``loopml demo`` through the CLI, keeping what run_demo returned (one sweep: it takes seconds)."""
    import loopml.demo
    import loopml.demo_loop

    results: list[loopml.demo.DemoResult] = []
    real_run_demo = loopml.demo.run_demo

    def spy(*args: object, **kwargs: object) -> loopml.demo.DemoResult:
        results.append(real_run_demo(*args, **kwargs))  # type: ignore[arg-type]
        return results[-1]

    monkeypatch.setattr(loopml.demo, "run_demo", spy)
    real_candidates = loopml.demo.candidates
    cli = invoke("demo")
    assert cli.exit_code == 0, cli.output
    [result] = results
    ids = result.child_run_ids
    out = cli.output
    assert "ranked by test ROC AUC" in out and "logreg-C1" in out and "roc_auc" in out
    assert result.best_run_id in out
    assert f"loopml runs compare {result.best_run_id} {result.child_run_ids[1]}" in out
    assert (os.environ.get("LOOPML_TRACKING_URI") or str(home / "loopml.db")) in out  # says where the data lives

    assert result.experiment == loopml.demo.EXPERIMENT
    assert len(result.child_run_ids) >= 8
    children = [loopml.get_run(run_id) for run_id in result.child_run_ids]
    assert all(run.info.parent_run_id == result.parent_run_id for run in children)
    assert all(run.info.status.value == "FINISHED" for run in children)
    aucs = [run.metrics["roc_auc"] for run in children]
    assert aucs == sorted(aucs, reverse=True)
    assert loopml.get_run(result.best_run_id).metrics["roc_auc"] == max(aucs)
    for run in children:
        assert {"accuracy", "f1", "roc_auc", "log_loss", "fit_time_s"} <= set(run.metrics)
        assert "model" in run.params
    digests = {(item.context, item.digest) for run in children for item in run.inputs}
    assert {context for context, _ in digests} == {"train", "test"}
    assert len(digests) == 2  # the same train and test data, hence digests, in every run
    boosted = [run for run in children if run.params["model"] == "gradient_boosting"]
    assert boosted and len(loopml.get_metric_history(boosted[0].run_id, "train_deviance")) == 100
    artifacts = {entry.path for entry in loopml.get_tracking_client().list_artifacts(result.best_run_id)}
    assert {"confusion_matrix.png", "classification_report.json"} <= artifacts

    listed = invoke("runs", "list", "-e", result.experiment)
    assert listed.exit_code == 0 and "sweep" in listed.output and "10 runs" in listed.output

    # the best model is registered, promoted, and traceable to its data and code
    assert all("model/loopml-model.json" in {e.path for e in loopml.get_tracking_client().list_artifacts(r)} for r in ids)
    assert result.model_name == loopml.demo.MODEL_NAME and result.version == 1
    swept = loopml.get_model_version(result.model_name, 1)
    assert swept.run_id == result.best_run_id
    assert swept.evidence["passed"] is True and len(swept.evidence["compared_runs"]) == len(ids)
    assert result.predictions_match and "test predictions equal the trained model's" in out
    train_digest = next(item.digest for item in children[0].inputs if item.context == "train")
    assert train_digest in {node.id for node in result.lineage.find("dataset")}
    assert f"Lineage of models:/{result.model_name}/1" in out and train_digest[:12] in out
    commit = loopml.get_run(result.best_run_id).tags.get("loopml.git.commit")
    if commit:  # the tests ran inside a git checkout
        assert [node.id for node in result.lineage.find("code")] == [commit]
    assert {"model_version.register", "model_version.evidence", "alias.set", "model_version.transition"} <= set(
        result.audit_actions
    )
    logged = [e.action for e in loopml.search_audit_events(result.model_name)]
    assert logged[: len(result.audit_actions)] == result.audit_actions  # every step logged, the loop's after
    assert "alias.set" in out and f"loopml lineage models:/{result.model_name}@champion" in out

    # the loop closed: the shift was caught on exactly the shifted columns, and a retrain replaced the champion
    loop = result.loop
    assert loop is not None and loop.baseline_status == "ok" and loop.shifted_status == "alert"
    assert loop.drifted_columns == ["mean radius", "worst area"] and "data_drift" in loop.alert_kinds
    assert loop.task.state == "succeeded", loop.task.details.get("traceback", loop.task.outcome)
    assert (loop.champion_before, loop.champion_after) == (1, 2)
    champion = loopml.get_model_version(result.model_name, "champion")
    assert champion.version == 2 and champion.stage.value == "production"
    gates = {g["gate"]: g["passed"] for g in champion.evidence["gates"]}
    # issue 16: the demo's gates use its sensitive attribute (size band) and business metric (screening cost)
    assert gates == {"thresholds": True, "challenger_vs_champion": True, "fairness": True,
                     "business:screening_cost": True}  # fmt: skip
    assert swept.version == 1 and loopml.get_model_version(result.model_name, 1).stage.value == "archived"
    for action in ("monitor.alert", "loop.task.start", "loop.canary.pass", "alias.move", "loop.task.succeeded"):
        assert action in logged[len(result.audit_actions) :], action
    # the challenger trained on the traffic labelled before the alert; the canary judged it on other rows
    retrain_params = loopml.get_run(loop.task.details["pipeline_run_id"]).params
    since_ms, until_ms = int(retrain_params["since_ms"]), int(retrain_params["until_ms"])
    features = list(loopml.demo_loop.breast_cancer_frame().columns.drop("target"))
    trained = loopml.search_predictions(result.model_name, since=since_ms, until=until_ms, flatten=True)
    canary = loopml.search_predictions(result.model_name, since=until_ms, flatten=True)
    assert len(trained) == loopml.demo_loop.SHIFTED_REQUESTS and loop.canary_requests > 0 and len(canary) > 0
    seen = set(trained[features].itertuples(index=False, name=None))
    assert not seen & set(canary[features].itertuples(index=False, name=None))
    # the monitor goes on watching the new champion, against the training data the retrain declared
    watching = loopml.run_monitor(loopml.demo_loop.MONITOR)
    assert watching.result.version == 2 and watching.status != "error", watching.summary
    assert watching.figures["performance"]["n"] > 0
    report = Path(loop.report_path)
    assert report.is_file() and report.read_text().lstrip().lower().startswith("<!doctype html")
    assert "Closed the loop" in out and "version 2 promoted to @champion" in out
    assert f"loopml monitor show {loopml.demo_loop.MONITOR}" in out and "loopml loop status" in out

    # a second demo in the same store registers version 3 and moves the champion there (two candidates, no loop)
    monkeypatch.setattr(loopml.demo, "candidates", lambda: real_candidates()[:2])
    again = invoke("demo", "--no-loop")
    assert again.exit_code == 0, again.output
    second = results[-1]
    assert second.version == 3 and loopml.get_model_version(result.model_name, "champion").version == 3
    assert second.loop is None
    assert loopml.get_model_version(result.model_name, 2).stage.value == "archived"
    assert "alias.move" in second.audit_actions and "model.create" not in second.audit_actions
    assert "(was v2)" in again.output and "v2 archived" in again.output
    # without the loop there is no new monitor or task to show, so none of its commands is suggested
    assert "loopml monitor" not in again.output.split("Try next")[1] and "loopml loop" not in again.output


def test_user_text_is_not_rich_markup(home: Path) -> None:
    with loopml.start_run("[bold]odd[/]", experiment="[x]", params={"p": "[/red]"}, capture=False) as run:
        pass
    result = invoke("runs", "show", run.run_id)
    assert result.exit_code == 0, result.output
    assert "[bold]odd[/]" in result.output and "[/red]" in result.output
    assert "[x]" in invoke("experiments", "list").output
