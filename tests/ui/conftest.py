"""A real server over a SQLite store filled through the public API, and Chromium driven by Playwright.

Playwright's own browser download does not work here, so the tests launch Debian's Chromium
(``/usr/bin/chromium``). They skip when it is missing, unless ``LOOPML_TEST_CHROMIUM`` is set (CI sets it),
in which case a missing browser is a failure: the same rule as tests/monitoring/test_report_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.entities.tracking import Metric, Run
from loopml.store import Store, open_store
from loopml.tracking.client import TrackingClient
from tests.conftest import require_chromium

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


@dataclass
class Filled:
    """What the store holds: the experiment, the parent run of the sweep and its trials (acc 0.80 … 0.84)."""

    store: Store
    experiment_id: int
    parent: Run
    trials: list[Run]


@pytest.fixture
def filled_store(tmp_path: Path) -> Iterator[Filled]:
    store = open_store(f"sqlite:///{tmp_path / 'ui.db'}", artifacts_url=str(tmp_path / "artifacts"))
    client = TrackingClient(store)
    experiment = client.create_experiment("iris-sweep")
    client.create_experiment("empty-experiment")
    parent = client.create_run("iris-sweep", name="sweep", params={"model": "rf"}, capture=False)
    trials = []
    for i in range(5):
        run = client.create_run(
            "iris-sweep",
            name=f"trial-{i}",
            params={"depth": i + 2, "lr": 0.1 * (i + 1)},
            tags={"team": "vision" if i % 2 else "tabular"},
            parent_run_id=parent.run_id,
            capture=False,
        )
        points = [Metric(key="acc", value=0.7 + step / 100 + i / 100, timestamp=step, step=step) for step in range(11)]
        client.log_metric_points(run.run_id, [*points, Metric(key="loss", value=1 - i / 10, timestamp=0, step=0)])
        client.end_run(run.run_id)
        trials.append(run)
    client.log_params(parent.run_id, {"trials": 5})
    client.set_tags(parent.run_id, {"loopml.git.commit": "0123456789abcdef" * 2 + "01234567",
                                    "loopml.git.branch": "main", "loopml.git.dirty": "false"})  # fmt: skip
    client.log_dataset(parent.run_id, pd.DataFrame({"sepal_length": [5.1, 4.9], "species": ["a", "b"]}), "iris")
    client.log_text(parent.run_id, "trial 3 wins\n", "notes/summary.txt")
    client.end_run(parent.run_id)
    try:
        yield Filled(store=store, experiment_id=experiment.experiment_id, parent=parent, trials=trials)
    finally:
        store.close()


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return require_chromium()


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install 'loopml[test]' for playwright")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium_path), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Problems:
    """What a page did wrong: console errors, uncaught exceptions, failed requests and error answers."""

    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def none(self) -> bool:
        return not self.console and not self.failed


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Problems]]:
    """A fresh browser context and page that records everything that went wrong on it."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    tab = context.new_page()
    problems = Problems()
    tab.on("console", lambda msg: problems.console.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: problems.console.append(str(exc)))
    # ERR_ABORTED is a fetch the next navigation cancelled (the favicon of a page left at once), not a failure
    tab.on(
        "requestfailed",
        lambda req: None if "ERR_ABORTED" in str(req.failure) else problems.failed.append(f"{req.url} {req.failure}"),
    )
    tab.on("response", lambda res: problems.failed.append(f"{res.url} {res.status}") if res.status >= 400 else None)
    try:
        yield tab, problems
    finally:
        context.close()


def serve(live_server: tuple[str, Any], store: Store, *, auth: bool = False) -> str:
    """Point the live server at a new app over ``store``; its base URL."""
    from loopml.server.app import create_app

    url, switch = live_server
    switch.app = create_app(store, auth=auth)
    return str(url)


def screenshot(tab: Any, view: str) -> None:
    """Keep a current picture of each view for docs/ui.md."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"ui-{view}.png"), full_page=True)
