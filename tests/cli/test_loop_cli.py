"""``loopml loop run/status`` and ``loopml reproduce``: user mistakes are one line, user text is never markup."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app

runner = CliRunner()

FAILING_POLICY = """
import loopml

@loopml.step
def boom(x: int) -> int:
    raise ValueError("cannot read [/data/train.csv]")

@loopml.pipeline
def fails(x: int = 1):
    return boom(x)

loopml.policy("m", pipeline=fails, schedule="0 * * * *", name="[red]retrain")
"""


@pytest.fixture
def module_file(tmp_path: Path) -> Iterator[Path]:
    """A fresh module name for each test (the loop imports policies by name, so sys.modules must not hold it)."""
    path = tmp_path / f"policies_{uuid.uuid4().hex}.py"
    yield path
    sys.modules.pop(path.stem, None)


def test_policies_mistakes_are_one_line_with_exit_2(home: Path, module_file: Path) -> None:
    missing = runner.invoke(app, ["loop", "run", "--policies", str(module_file), "--once"])
    assert missing.exit_code == 2 and "No policies file" in missing.output and str(module_file) in missing.output

    module_file.write_text("import loopml\ndef f(:\n", encoding="utf-8")
    broken = runner.invoke(app, ["loop", "run", "--policies", str(module_file), "--once"])
    assert broken.exit_code == 2, broken.output
    assert "syntax error" in broken.output and "line 2" in broken.output and "Traceback" not in broken.output

    module_file.write_text(FAILING_POLICY, encoding="utf-8")
    runner_typo = runner.invoke(app, ["loop", "run", "--policies", str(module_file), "--once", "--runner", "sparks"])
    assert runner_typo.exit_code == 2 and "not a runner" in runner_typo.output


def test_a_failed_retrain_prints_user_text_as_is(home: Path, module_file: Path) -> None:
    module_file.write_text(FAILING_POLICY, encoding="utf-8")
    result = runner.invoke(app, ["loop", "run", "--policies", str(module_file), "--now"])
    assert result.exit_code == 0, result.output
    assert "[red]retrain: task 1 failed" in result.output and "[/data/train.csv]" in result.output

    status = runner.invoke(app, ["loop", "status"])
    assert status.exit_code == 0, status.output
    row = next(line for line in status.output.splitlines() if "retrain" in line)
    assert "manual" in row and "manual manual" not in row


def test_reproduce_refuses_a_missing_repo(home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["reproduce", "models:/m/1", "--repo", str(tmp_path / "nowhere")])
    # the error box wraps the message where the (tmp_path-long) repo path ends: read it as one line of words
    words = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "does not exist" in words and "Traceback" not in result.output
