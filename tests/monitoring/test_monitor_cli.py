"""``loopml monitor``: list, check, show and report, driven through Typer's CliRunner; the report opens in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import loopml
from loopml.cli import monitor as monitor_cli
from tests.monitoring.logdata import SHIFTED, features, log_requests, predict, reference_frame
from tests.monitoring.test_report_browser import console_messages, open_page

CLEARED = ("LOOPML_DB_URL", "LOOPML_TRACKING_URI", "LOOPML_ARTIFACTS_URL", "LOOPML_ACTOR", "LOOPML_TOKEN", "COLUMNS")


def cli() -> typer.Typer:
    """The root command with the monitor sub-app mounted as ``loopml/cli/main.py`` mounts it."""
    from loopml.cli.main import LoopMLGroup

    root = typer.Typer(cls=LoopMLGroup)
    root.add_typer(monitor_cli.app, name="monitor")

    @root.callback()
    def _root() -> None:
        """loopml"""

    return root


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli(), list(args))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The embedded store under LOOPML_HOME, with a dataset to compare against; yields the store."""
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    loopml.set_tracking_uri(None)
    from loopml.tracking import fluent

    yield fluent.get_tracking_client().store
    if fluent._client is not None:
        fluent._client.close()
    fluent._client = None
    fluent._client_key = None


@pytest.fixture
def dataset(home: Any) -> str:
    with loopml.start_run("train", experiment="churn", capture=False) as run:
        logged = run.log_dataset(reference_frame(), "churn-train", context="train")
    return logged.ref


def test_list_check_show_report(home: Any, dataset: str, tmp_path: Path) -> None:
    assert "No monitors yet" in invoke("monitor", "list").output
    loopml.monitor("churn-drift", "churn", reference=dataset, thresholds={"drift_share": 0.2, "error_rate_max": 0.05})
    log_requests(home, "churn", features(1000, seed=1))
    ok = invoke("monitor", "check", "churn-drift")
    assert ok.exit_code == 0, ok.output
    assert "check 1 ok" in ok.output and "No alert raised." in ok.output and "Drift" in ok.output

    current = features(1000, seed=2, shift=SHIFTED)
    log_requests(home, "churn", current, prefix="s", rows_per_request=1, labels=predict(current), start_ms=None)
    alert = invoke("monitor", "check", "churn-drift", "--fail-on-alert")
    assert alert.exit_code == 1, alert.output
    assert "check 2 alert" in alert.output and "alert(s) raised" in alert.output
    assert "data_drift" in alert.output and "b, d" in alert.output

    listed = invoke("monitor", "list")
    assert listed.exit_code == 0 and "churn-drift" in listed.output and "alert" in listed.output
    shown = invoke("monitor", "show", "churn-drift")
    assert shown.exit_code == 0, shown.output
    assert dataset in shown.output and "drift_share=0.2" in shown.output and "data_drift" in shown.output

    out = tmp_path / "reports" / "churn.html"
    written = invoke("monitor", "report", "churn-drift", "--out", str(out))
    assert written.exit_code == 0, written.output
    assert str(out) in written.output.replace("\n", "")
    page = out.read_text(encoding="utf-8")
    assert "<title>Monitor churn-drift: churn v1, 2 check(s)</title>" in page
    assert "Drift over time" in page and "Distributions: reference against current" in page
    assert "<script" not in page  # the browser test checks that it fetches nothing


def test_report_opens_in_headless_chromium(home: Any, dataset: str, tmp_path: Path, chromium: Path) -> None:
    loopml.monitor("churn-drift", "churn", reference=dataset, thresholds={"drift_share": 0.2})
    for seed, shift in ((1, []), (2, SHIFTED)):
        current = features(1000, seed=seed, shift=shift)
        log_requests(home, "churn", current, prefix=f"s{seed}-", rows_per_request=1, labels=predict(current))
        loopml.run_monitor("churn-drift")
    out = tmp_path / "report.html"
    assert invoke("monitor", "report", "churn-drift", "-o", str(out)).exit_code == 0

    done, requests = open_page(chromium, out, tmp_path, "--dump-dom")

    assert done.returncode == 0, done.stderr[-2000:]
    assert console_messages(done.stderr) == [] and requests == []
    dom = done.stdout
    assert "<title>Monitor churn-drift" in dom and "<h2>Data quality</h2>" in dom and "<h2>Drift over time</h2>" in dom
    assert dom.count("<svg") >= 8  # six distributions, performance, traffic, drift over time


def test_errors_are_one_line_with_an_exit_code(home: Any) -> None:
    loopml.monitor("churn-drift", "churn")
    missing = invoke("monitor", "check", "churn-drfit")
    assert missing.exit_code == 1
    assert "Monitor not found" in missing.output and "Did you mean 'churn-drift'?" in missing.output
    assert "Traceback" not in missing.output
    empty = invoke("monitor", "report", "churn-drift", "--out", "x.html")
    assert empty.exit_code == 1 and "has no results yet" in empty.output
    quiet = invoke("monitor", "check", "churn-drift")
    assert quiet.exit_code == 0 and "check 1 error" in quiet.output and "no predictions of churn" in quiet.output
    later = invoke("monitor", "report", "churn-drift", "--since", "2099-01-01", "--out", "x.html")
    assert later.exit_code == 1 and "no results between 2099-01-01 and now" in later.output


def test_alias_version_and_report_paths(
    home: Any, dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopml.monitor("by-alias", "churn", version="champion", reference=dataset)
    listed = invoke("monitor", "list")
    assert listed.exit_code == 0 and "churn@champion" in listed.output and "vchampion" not in listed.output
    assert "churn@champion" in invoke("monitor", "show", "by-alias").output

    loopml.monitor("churn-drift", "churn", reference=dataset)
    log_requests(home, "churn", features(200, seed=1))
    loopml.run_monitor("churn-drift")
    monkeypatch.chdir(tmp_path)  # short relative paths: the usage error box wraps at 80 columns
    folder = invoke("monitor", "report", "churn-drift", "--out", ".")
    assert folder.exit_code == 2 and "is a directory" in folder.output and "Traceback" not in folder.output
    Path("a-file").write_text("x", encoding="utf-8")
    blocked = invoke("monitor", "report", "churn-drift", "--out", "a-file/report.html")
    assert blocked.exit_code == 2, blocked.output
    assert "cannot write" in blocked.output and "Traceback" not in blocked.output
    odd = tmp_path / "[bold]x" / "report.html"
    written = invoke("monitor", "report", "churn-drift", "--out", str(odd))
    assert written.exit_code == 0 and str(odd) in written.output.replace("\n", "")
