"""``loopml pipelines list/run/show`` through Typer's CliRunner, mounted the way cli/main.py mounts sub-apps."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from loopml.cli import pipelines
from loopml.cli.main import LoopMLGroup
from tests.pipelines import library

root = typer.Typer(cls=LoopMLGroup)
root.add_typer(pipelines.app, name="pipelines")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # piped output is 200 columns wide unless COLUMNS says otherwise


def invoke(*args: str) -> object:
    return runner.invoke(root, ["pipelines", *args])


def test_run_then_list_and_show(local_client) -> None:
    result = invoke("run", "tests.pipelines.library:fan", "--param", "n=3")
    assert result.exit_code == 0, result.output
    assert "Pipeline fan FINISHED" in result.output and "4 step(s) run, 0 cached" in result.output
    assert "output: {'total': 5, 'count': 3}" in result.output
    again = invoke("run", "tests.pipelines.library:fan", "-p", "n=3")
    assert "0 step(s) run, 4 cached" in again.output
    forced = invoke("run", "tests.pipelines.library:fan", "-p", "n=3", "--no-cache")
    assert "4 step(s) run, 0 cached" in forced.output
    assert library.CALLS == {"square": 6, "total": 2}

    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    line = next(row for row in listed.output.splitlines() if row.strip().startswith("fan"))
    assert line.split()[:2] == ["fan", "3"] and "FINISHED" in line

    run_id = local_client.search_runs("fan", filter="tags.loopml.pipeline = 'fan'", as_frame=False)[1].run_id
    shown = invoke("show", run_id)
    assert shown.exit_code == 0, shown.output
    rows = {row.split()[0]: row for row in shown.output.splitlines() if row.strip().startswith(("square", "total"))}
    assert set(rows) == {"square", "square_2", "square_3", "total"}
    assert all("cached" in row and "FINISHED" in row for row in rows.values())
    latest = invoke("show", "fan")  # by name: the latest run (--no-cache: nothing cached)
    assert latest.exit_code == 0 and "cached" not in latest.output.split("Steps")[1]


def test_show_a_failed_run_and_errors(local_client) -> None:
    failed = invoke("run", "tests.pipelines.library:fan_with_failure", "-p", "n=3", "-p", "bad=2")
    assert failed.exit_code == 1
    assert "Error: Step failed: Step 'fail_on_3' of pipeline 'fan_with_failure'" in failed.output
    shown = invoke("show", "fan_with_failure")
    assert "FAILED" in shown.output and "not run" in shown.output and "value 4 is bad" in shown.output

    assert invoke("run", "tests.pipelines.library:square").exit_code == 2  # a step, not a pipeline
    assert "not a pipeline" in invoke("run", "tests.pipelines.library:square").output
    assert invoke("run", "no_such_module:x").exit_code == 2
    assert invoke("run", "tests.pipelines.library:fan", "--runner", "spark").exit_code == 2
    assert invoke("show", "nothing-ran").exit_code == 1
    assert "No pipeline has run yet" not in invoke("list").output


def test_list_with_nothing_run(local_client) -> None:
    assert "No pipeline has run yet" in invoke("list").output


def test_a_module_that_does_not_import_is_one_line(local_client, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = invoke("run", "nowhere/train.py:training")
    assert missing.exit_code == 2 and "No file 'nowhere/train.py'" in missing.output
    (tmp_path / "broken_pipeline_module.py").write_text("import loopml\ndef training(:\n", encoding="utf-8")
    broken = invoke("run", "broken_pipeline_module.py:training")
    assert broken.exit_code == 2, broken.output
    assert "invalid syntax" in broken.output and "line 2" in broken.output and "Traceback" not in broken.output
