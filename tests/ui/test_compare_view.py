"""Compare runs: picked by checkbox in the runs table, read in one search, drawn as a table, charts, a scatter
and parallel coordinates; in Chromium and as plain GETs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.entities.tracking import Metric, Run
from loopml.store import Store, open_store
from loopml.tracking.client import TrackingClient
from tests.ui.conftest import Problems, screenshot, serve
from tests.ui.test_charts import _INKED


@dataclass
class Sweep:
    store: Store
    experiment_id: int
    parent: Run
    trials: list[Run]


@pytest.fixture
def sweep(tmp_path: Path) -> Iterator[Sweep]:
    store = open_store(f"sqlite:///{tmp_path / 'compare.db'}", artifacts_url=str(tmp_path / "artifacts"))
    client = TrackingClient(store)
    experiment = client.create_experiment("sweep")
    parent = client.create_run("sweep", name="sweep", params={"search": "grid"}, capture=False)
    trials = []
    for i, (lr, model) in enumerate([(0.1, "rf"), (0.01, "gbm"), (0.001, "rf"), (0.05, "mlp")]):
        run = client.create_run(
            "sweep",
            name=f"trial-{i}",
            params={"lr": lr, "model": model, "epochs": 10, "optimizer": "adam"},
            parent_run_id=parent.run_id,
            capture=False,
        )
        curve = [Metric("acc", 0.5 + 0.04 * step * (i + 1) / 4, step, 1_700_000_000_000 + step) for step in range(10)]
        loss = [Metric("loss", 1.0 / (step + 1 + i), step, 1_700_000_000_000 + step) for step in range(10)]
        client.log_metric_points(run.run_id, [*curve, *loss, Metric("seed_check", 1.0, 0, 1_700_000_000_000)])
        client.end_run(run.run_id)
        trials.append(run)
    client.end_run(parent.run_id)
    try:
        yield Sweep(store, experiment.experiment_id, parent, trials)
    finally:
        store.close()


def _compare_url(base: str, runs: list[Run], **extra: str) -> str:
    return str(httpx.URL(f"{base}/compare", params=[("run", r.run_id) for r in runs] + list(extra.items())))


def test_compare_from_the_runs_table(live_server: Any, sweep: Sweep, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, sweep.store)
    tab.goto(f"{base}/experiments/{sweep.experiment_id}")
    tab.locator("button.toggle").click()  # the trials fold under the sweep
    picked = sweep.trials[:3]
    for run in picked:
        tab.get_by_label(f"compare {run.info.name}").check()
    tab.get_by_role("button", name="Compare selected runs").click()
    tab.wait_for_url("**/compare?**")
    assert [f"run={r.run_id}" in tab.url for r in picked] == [True, True, True]
    assert sweep.trials[3].run_id not in tab.url

    # one column per run
    names = [t.strip() for t in tab.locator("#compare-table thead th[data-run]").all_inner_texts()]
    assert sorted(names) == [r.info.name for r in picked]  # in the table's order (newest first)
    # differing rows are highlighted, equal ones are not
    for key in ("params.lr", "params.model", "metrics.acc", "metrics.loss"):
        assert tab.locator(f"#compare-table tr[data-key='{key}']").get_attribute("class") == "differs", key
    for key in ("params.epochs", "params.optimizer", "metrics.seed_check"):
        assert tab.locator(f"#compare-table tr[data-key='{key}']").get_attribute("class") is None, key
    differs_bg = tab.locator("#compare-table tr.differs td").first.evaluate(
        "td => getComputedStyle(td).backgroundColor"
    )
    equal_bg = tab.locator("#compare-table tr[data-key='params.epochs'] td").first.evaluate(
        "td => getComputedStyle(td).backgroundColor"
    )
    assert differs_bg != equal_bg

    # the overlaid charts draw one series per run
    for key in ("acc", "loss"):
        figure = tab.locator(f"figure.mchart[data-key='{key}']")
        figure.and_(tab.locator("[data-state='drawn']")).wait_for()
        assert tab.evaluate(_INKED, figure.element_handle()) > 50
        assert figure.locator(".u-series").count() == 1 + len(picked)  # uPlot's legend: x, then one per run
    tab.locator("figure.mchart[data-key='seed_check'][data-state='single']").wait_for(state="attached")

    # the scatter and the parallel coordinates: one mark and one polyline per run
    scatter = tab.locator("#scatter-svg")
    assert scatter.get_attribute("data-x") == "params.lr" and scatter.get_attribute("data-y") == "metrics.acc"
    assert sorted(m.get_attribute("data-run") or "" for m in scatter.locator("circle.mark").all()) == sorted(
        r.run_id for r in picked
    )
    lines = tab.locator("#parallel-svg polyline.run-line")
    assert lines.count() == len(picked)
    assert all(
        len((line.get_attribute("points") or "").split()) == tab.locator("#parallel-svg g.axis").count()
        for line in lines.all()
    )
    screenshot(tab, "compare")

    # changing a select redraws the scatter only (htmx), and keeps the choice in the address
    with tab.expect_response(lambda r: "/compare?" in r.url and "sx=params.model" in r.url):
        tab.locator("#scatter-x").select_option("params.model")
    tab.locator("#scatter-svg[data-x='params.model']").wait_for()
    assert tab.locator("#scatter-svg circle.mark").count() == len(picked)
    labels = tab.locator("#scatter-svg text").all_text_contents()
    assert "gbm" in labels and "rf" in labels  # a text param: its values as categories
    tab.locator("#scatter-y").select_option("metrics.loss")
    tab.locator("#scatter-svg[data-y='metrics.loss']").wait_for()
    assert "sy=metrics.loss" in tab.url
    tab.locator("figure.mchart[data-key='acc'][data-state='drawn']").wait_for()  # the charts were not reloaded
    assert problems.none(), problems


def test_compare_reads_the_runs_in_one_search(live_server: Any, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    search = sweep.store.tracking.search_runs

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return search(*args, **kwargs)

    monkeypatch.setattr(sweep.store.tracking, "search_runs", counting)
    base = serve(live_server, sweep.store)
    answer = httpx.get(_compare_url(base, sweep.trials, sx="params.model", sy="metrics.loss", axis="params.model"))
    assert answer.status_code == 200
    assert len(calls) == 1
    html = answer.text
    assert html.count('class="mark"') == len(sweep.trials) and html.count('class="run-line"') == len(sweep.trials)
    assert 'data-x="params.model"' in html and 'data-y="metrics.loss"' in html
    assert html.count('<g class="axis"') == 1  # the chosen axes only


def test_compare_caps_and_reports(live_server: Any, sweep: Sweep) -> None:
    base = serve(live_server, sweep.store)
    asked = [sweep.trials[0].run_id, sweep.trials[0].run_id, *(f"nope{i:02d}" for i in range(60))]
    html = httpx.get(str(httpx.URL(f"{base}/compare", params=[("run", r) for r in asked]))).text
    assert "You asked for 61 runs" in html and "at most 50" in html
    assert "nope00" in html and "nope48" in html and "nope49" not in html  # the first 50 distinct ids were read
    assert html.count('<th class="text" data-run=') == 1
    empty = httpx.get(f"{base}/compare")
    assert empty.status_code == 200 and "No runs to compare" in empty.text


def test_hostile_names_are_escaped(live_server: Any, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}", artifacts_url=str(tmp_path / "a"))
    try:
        client = TrackingClient(store)
        client.create_experiment("x")
        runs = [
            client.create_run("x", name=f"<script>r{i}</script>", params={"p": f"<b>{i}</b>"}, capture=False)
            for i in range(2)
        ]
        for run in runs:
            client.log_metric_points(run.run_id, [Metric("m", 1.0, 0, 0)])
        base = serve(live_server, store)
        html = httpx.get(_compare_url(base, runs)).text
        assert "<script>r0" not in html and "<b>0</b>" not in html and "&lt;b&gt;0&lt;/b&gt;" in html
    finally:
        store.close()
