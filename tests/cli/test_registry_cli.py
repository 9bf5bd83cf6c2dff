"""``loopml models``, ``loopml lineage`` and ``loopml audit`` through CliRunner, against a store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def iris() -> tuple[object, object]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def train(iris: tuple[object, object], c: float = 1.0) -> tuple[str, str]:
    """One run that logs the iris data and a fitted logistic regression; (model URI, dataset digest)."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    with loopml.start_run(f"iris-C{c:g}", experiment="iris", params={"C": c}) as run:
        dataset = run.log_dataset(X, "iris", context="train")
        model = LogisticRegression(C=c, max_iter=500).fit(X, y)
        run.log_metric("accuracy", float(model.score(X, y)))
        info = run.log_model(model, "model", input_example=X.head())
    return info.uri, dataset.digest


@pytest.fixture
def two_runs(home: Path, iris: tuple[object, object]) -> list[tuple[str, str]]:
    return [train(iris, 1.0), train(iris, 0.5)]


def invoke(*args: str) -> object:
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def one_error_line(result: object, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    return lines[0]


# -- register, list, show ----------------------------------------------------------------------------


def test_register_creates_version_1_then_2(two_runs: list[tuple[str, str]]) -> None:
    (first, _), (second, _) = two_runs
    out = ok("models", "register", first, "iris", "--tag", "team=ml", "-d", "first try", "--actor", "alice")
    assert "iris v1" in out and "models:/iris/1" in out and "candidate" in out
    out = ok("models", "register", second, "iris")
    assert "iris v2" in out
    versions = loopml.search_model_versions("iris")
    assert [v.version for v in versions] == [2, 1]
    assert versions[1].tags == {"team": "ml"} and versions[1].description == "first try"
    assert versions[1].created_by == "alice"
    assert versions[1].source == first

    listed = ok("models", "list")
    assert "iris" in listed and "v2" in listed and "1 model" in listed
    assert "No registered models match" in ok("models", "list", "-f", "name = 'other'")


def test_register_bad_tag_and_missing_model(two_runs: list[tuple[str, str]]) -> None:
    (uri, _), _ = two_runs
    result = invoke("models", "register", uri, "iris", "--tag", "novalue")
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    run_id = uri.split("/")[1]
    line = one_error_line(invoke("models", "register", f"runs:/{run_id}/nothing", "iris"), 1)
    assert "Artifact not found" in line and "model" in line


def test_register_require_approval(two_runs: list[tuple[str, str]]) -> None:
    (uri, _), _ = two_runs
    ok("models", "register", uri, "credit", "--require-approval")
    assert loopml.get_registered_model("credit").require_approval
    assert "required" in ok("models", "list")


def test_alias_moves_and_show_follows_it(two_runs: list[tuple[str, str]]) -> None:
    (first, _), (second, _) = two_runs
    ok("models", "register", first, "iris")
    ok("models", "register", second, "iris")
    out = ok("models", "alias", "iris", "champion", "1", "--reason", "first model")
    assert "iris@champion → v1" in out
    out = ok("models", "alias", "iris", "champion", "2", "--reason", "better")
    assert "iris@champion → v2" in out and "was v1" in out
    assert loopml.get_model_version("iris", "champion").version == 2

    shown = ok("models", "show", "iris@champion")
    assert "models:/iris/2" in shown and second in shown and "@champion" in shown
    assert ok("models", "show", "models:/iris@champion") == shown
    assert "models:/iris/1" in ok("models", "show", "iris/1")
    assert "models:/iris/2" in ok("models", "show", "iris/latest")

    model_view = ok("models", "show", "iris")
    assert "@champion→v2" in model_view
    assert model_view.index("v2") < model_view.index("v1")  # versions newest first

    out = ok("models", "alias", "iris", "champion", "--delete", "--reason", "retired")
    assert "Deleted alias iris@champion" in out
    line = one_error_line(invoke("models", "show", "iris@champion"), 1)
    assert line.startswith("Error: Alias not found") and "'champion'" in line


def test_alias_needs_version_or_delete(two_runs: list[tuple[str, str]]) -> None:
    result = invoke("models", "alias", "iris", "champion")
    assert result.exit_code == 2 and "--delete" in result.output


def test_transition_to_production_archives_previous(two_runs: list[tuple[str, str]]) -> None:
    (first, _), (second, _) = two_runs
    ok("models", "register", first, "iris")
    ok("models", "register", second, "iris")
    out = ok("models", "transition", "iris", "1", "production", "--reason", "launch")
    assert "candidate → production" in out
    out = ok("models", "transition", "iris", "2", "Production", "-r", "better")
    assert "v1 archived" in out
    assert loopml.get_model_version("iris", 1).stage.value == "archived"
    assert loopml.get_model_version("iris", 2).stage.value == "production"

    ok("models", "transition", "iris", "1", "staging")
    ok("models", "transition", "iris", "1", "production", "--keep-existing")
    stages = {v.version: v.stage.value for v in loopml.search_model_versions("iris")}
    assert stages == {1: "production", 2: "production"}

    shown = ok("models", "show", "iris")
    assert shown.count("production") >= 2


def test_bad_stage_exits_2_naming_the_stages(two_runs: list[tuple[str, str]]) -> None:
    (uri, _), _ = two_runs
    ok("models", "register", uri, "iris")
    line = one_error_line(invoke("models", "transition", "iris", "1", "prod"), 2)
    assert "'prod'" in line
    for stage in ("candidate", "staging", "production", "archived"):
        assert stage in line
    assert one_error_line(invoke("models", "request", "iris", "1", "live"), 2)


def test_forbidden_transition_is_one_line(two_runs: list[tuple[str, str]]) -> None:
    (uri, _), _ = two_runs
    ok("models", "register", uri, "iris")
    line = one_error_line(invoke("models", "transition", "iris", "1", "candidate"), 1)
    assert line.startswith("Error: Invalid transition")


def test_unknown_model_version_alias(home: Path, two_runs: list[tuple[str, str]]) -> None:
    for args in (("models", "show", "nope"), ("models", "show", "nope@champion"), ("models", "requests", "nope")):
        line = one_error_line(invoke(*args), 1)
        assert line.startswith("Error: Registered model not found") and "'nope'" in line
    (uri, _), _ = two_runs
    ok("models", "register", uri, "iris")
    line = one_error_line(invoke("models", "show", "iris/9"), 1)
    assert line.startswith("Error: Model version not found") and "9" in line
    line = one_error_line(invoke("models", "transition", "iris", "9", "staging"), 1)
    assert "version 9" in line
    line = one_error_line(invoke("models", "show", "iri"), 1)
    assert "Did you mean 'iris'" in line
    assert one_error_line(invoke("models", "show", "iris/x"), 2).startswith("Error: Invalid URI")


def test_models_list_empty(home: Path) -> None:
    assert "No registered models yet" in ok("models", "list")


# -- approvals -------------------------------------------------------------------------------------------


def test_approval_flow_and_four_eyes(two_runs: list[tuple[str, str]]) -> None:
    (uri, _), _ = two_runs
    ok("models", "register", uri, "credit", "--require-approval", "--actor", "alice")
    line = one_error_line(invoke("models", "transition", "credit", "1", "production", "--actor", "alice"), 1)
    assert line.startswith("Error: Approval required")

    out = ok("models", "request", "credit", "1", "production", "--comment", "AUC +2%", "--actor", "alice")
    request_id = loopml.get_registry_client().list_transition_requests("credit")[0].request_id
    assert f"Request #{request_id}" in out and "pending" in out and f"loopml models approve {request_id}" in out
    assert "pending" in ok("models", "show", "credit/1")  # the version view lists its pending request

    line = one_error_line(invoke("models", "approve", str(request_id), "--actor", "alice"), 1)
    assert "'alice'" in line and "approve" in line
    assert loopml.get_registry_client().list_transition_requests("credit")[0].status.value == "pending"

    out = ok("models", "approve", str(request_id), "--comment", "checked", "--actor", "bob")
    assert "approved by bob" in out and "loopml models transition credit 1 production" in out
    requests = ok("models", "requests", "credit", "--status", "approved")
    assert "alice" in requests and "bob" in requests and "AUC +2%" in requests and "checked" in requests
    assert "No pending transition requests" in ok("models", "requests", "credit", "--status", "pending")

    ok("models", "transition", "credit", "1", "production", "--actor", "alice")
    assert loopml.get_model_version("credit", 1).stage.value == "production"
    assert "applied" in ok("models", "requests", "credit")


def test_reject_and_unknown_request(two_runs: list[tuple[str, str]]) -> None:
    (uri, _), _ = two_runs
    ok("models", "register", uri, "iris")
    ok("models", "request", "iris", "1", "staging", "--actor", "alice")
    request_id = loopml.get_registry_client().list_transition_requests("iris")[0].request_id
    out = ok("models", "reject", str(request_id), "-c", "not yet", "--actor", "bob")
    assert "rejected by bob" in out
    line = one_error_line(invoke("models", "approve", str(request_id), "--actor", "carol"), 1)
    assert "already decided" in line
    line = one_error_line(invoke("models", "approve", "999", "--actor", "bob"), 1)
    assert "999" in line
    result = invoke("models", "requests", "iris", "--status", "bogus")
    assert result.exit_code == 2 and "bogus" in result.output


# -- lineage -----------------------------------------------------------------------------------------------


def test_lineage_tree_and_json(two_runs: list[tuple[str, str]]) -> None:
    (uri, digest), _ = two_runs
    run_id = uri.split("/")[1]
    ok("models", "register", uri, "iris")
    ok("models", "alias", "iris", "champion", "1")
    loopml.set_evidence("iris", 1, {"accuracy": 0.97, "gate": "accuracy >= 0.9"})

    out = ok("lineage", "models:/iris@champion")
    assert "iris v1 @champion" in out
    assert digest[:12] in out and "150 rows" in out and "(train)" in out
    assert run_id[:8] in out and "iris-C1" in out and "C=1.0" in out and "accuracy=" in out
    assert "evidence" in out and "gate=accuracy >= 0.9" in out
    if loopml.get_run(run_id).tags.get("loopml.git.commit"):  # inside a git checkout
        assert loopml.get_run(run_id).tags["loopml.git.commit"][:12] in out
    assert ok("lineage", "iris@champion") == out  # the models:/ prefix is optional

    data = json.loads(ok("lineage", "models:/iris@champion", "--json"))
    assert data["kind"] == "model_version" and data["id"] == "models:/iris/1"
    [run] = data["children"]
    assert run["kind"] == "run" and run["id"] == run_id
    datasets = [child for child in run["children"] if child["kind"] == "dataset"]
    assert [d["attributes"]["sha256"] for d in datasets] == [digest]
    assert data["attributes"]["evidence"]["accuracy"] == 0.97

    by_run = ok("lineage", f"runs:/{run_id}")
    assert digest[:12] in by_run and "iris v1" not in by_run

    uses = ok("lineage", "--dataset", f"iris@{digest[:8]}")
    assert run_id[:8] in uses and "iris v1 @champion" in uses
    uses_json = json.loads(ok("lineage", "--dataset", f"iris@{digest[:8]}", "--json"))
    assert {child["id"] for child in uses_json["children"]} == {run_id, two_runs[1][0].split("/")[1]}


def test_lineage_errors(two_runs: list[tuple[str, str]]) -> None:
    line = one_error_line(invoke("lineage", "models:/nope@champion"), 1)
    assert line.startswith("Error: Registered model not found")
    assert one_error_line(invoke("lineage"), 2).startswith("Error: Invalid value")
    assert one_error_line(invoke("lineage", "--dataset", "iris@ffffffff"), 1).startswith("Error: Dataset not found")


# -- audit ---------------------------------------------------------------------------------------------------


def test_audit_lists_actions_in_order(two_runs: list[tuple[str, str]]) -> None:
    (first, _), (second, _) = two_runs
    ok("models", "register", first, "iris", "--actor", "alice")
    ok("models", "register", second, "iris", "--actor", "alice")
    ok("models", "alias", "iris", "champion", "1", "--actor", "alice", "--reason", "first model")
    # a promotion spelled as a stage moves @champion too (and archives version 1): one idea, one record
    ok("models", "transition", "iris", "2", "production", "--actor", "bob", "--reason", "better recall")

    out = ok("audit")
    actions = ["model.create", "model_version.register", "alias.set", "model_version.transition", "alias.move"]
    assert sorted(actions, key=out.index) == actions
    assert out.count("model_version.register") == 2
    lines = out.splitlines()
    at = next(index for index, line in enumerate(lines) if "alias.move" in line)
    move = lines[at]
    assert "bob" in move and '{"version": 1} → {"version": 2}' in move and "moved to production" in move
    assert "iris@champion" in lines[at + 1]  # the target sits under the action
    assert "8 events" in out

    only_bob = ok("audit", "--actor", "bob")
    assert "alias.move" in only_bob and "alice" not in only_bob
    only_alias = ok("audit", "--action", "alias.*")
    assert "alias.set" in only_alias and "alias.move" in only_alias and "register" not in only_alias
    assert "iris/2" in ok("audit", "--target", "iris/2") and "iris/1 " not in ok("audit", "--target", "iris/2")
    assert "No audit events match" in ok("audit", "--since", "2999-01-01")

    last = ok("audit", "--limit", "2")
    assert "alias.move" in last and "model_version.transition" in last and "alias.set" not in last
    assert "6 earlier not shown" in last


def test_audit_empty_and_bad_since(home: Path) -> None:
    assert "No audit events yet" in ok("audit")
    line = one_error_line(invoke("audit", "--since", "yesterday"), 2)
    assert "'yesterday'" in line


# -- help and placeholders ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["models"],
        ["models", "list"],
        ["models", "show"],
        ["models", "register"],
        ["models", "alias"],
        ["models", "transition"],
        ["models", "request"],
        ["models", "approve"],
        ["models", "reject"],
        ["models", "requests"],
        ["lineage"],
        ["audit"],
    ],
)
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
