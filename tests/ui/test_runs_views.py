"""The experiments list, the runs table and the run page, in Chromium, used the way a person would."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Filled, Problems, screenshot, serve


def _run_names(tab: Any) -> list[str]:
    return [name.strip() for name in tab.locator("#runs tbody tr td:first-child a:not(.parent):not(.more-children)").all_inner_texts()]


def test_experiments_then_runs_table(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, filled_store.store)
    tab.goto(base + "/")
    screenshot(tab, "experiments")
    tab.get_by_role("link", name="iris-sweep").click()
    tab.wait_for_url(f"**/experiments/{filled_store.experiment_id}")
    assert sorted(_run_names(tab)) == ["sweep", *[f"trial-{i}" for i in range(5)]]
    # the default columns: the metrics and params seen on the page
    headers = tab.locator("#runs thead th").all_inner_texts()
    assert headers[:4] == ["run", "status", "started", "duration"]
    assert {"metrics.acc", "metrics.loss", "params.depth", "params.lr"} <= {h.strip(" ▲▼") for h in headers}
    # children point at their parent, and the parent says it has them
    assert tab.locator("#runs tbody tr.child").count() == 5
    assert "5 child runs" in tab.locator(f"tr[data-run='{filled_store.parent.run_id}']").inner_text()
    assert "FINISHED" in tab.locator("#runs tbody").inner_text()
    screenshot(tab, "runs")
    assert problems.none(), problems


def test_filter_sort_and_column_chooser(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, filled_store.store)
    tab.goto(f"{base}/experiments/{filled_store.experiment_id}")
    box = tab.get_by_label("filter")
    box.fill("metrics.acc > 0.82 and tags.team = 'tabular'")  # latest acc of trial i is 0.80 + i/100
    box.press("Enter")
    tab.wait_for_url("**filter=**")
    assert sorted(_run_names(tab)) == ["trial-4"]
    box = tab.get_by_label("filter")
    box.fill("metrics.acc > 0.75")
    box.press("Enter")
    tab.wait_for_url(lambda url: "0.75" in url)
    tab.locator("#runs thead a[data-key='metrics.acc']").click()
    tab.wait_for_url("**order=metrics.acc+DESC**")
    assert _run_names(tab) == [f"trial-{i}" for i in (4, 3, 2, 1, 0)]
    tab.locator("#runs thead a[data-key='metrics.acc']").click()
    tab.wait_for_url("**order=metrics.acc+ASC**")
    assert _run_names(tab) == [f"trial-{i}" for i in range(5)]
    # the column chooser: drop params.depth, add tags.team; the filter and the order stay
    tab.locator("#column-chooser summary").click()
    tab.get_by_label("params.depth").uncheck()
    tab.get_by_label("tags.team").check()
    tab.get_by_role("button", name="Apply").click()
    tab.wait_for_url("**col=tags.team**")
    headers = [h.strip(" ▲▼") for h in tab.locator("#runs thead th").all_inner_texts()]
    assert "tags.team" in headers and "params.depth" not in headers
    assert _run_names(tab) == [f"trial-{i}" for i in range(5)]
    assert "tabular" in tab.locator("#runs tbody").inner_text()
    screenshot(tab, "runs-filtered")
    assert problems.none(), problems


def test_bad_filter_shows_its_position(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, filled_store.store)
    tab.goto(f"{base}/experiments/{filled_store.experiment_id}")
    box = tab.get_by_label("filter")
    box.fill("metrics.acc >> 0.9")
    box.press("Enter")
    error = tab.locator("#filter-error")
    error.wait_for()
    assert error.get_attribute("data-position") == "12"
    assert "position 12" in error.inner_text() and "^" in error.inner_text()
    assert tab.get_by_label("filter").input_value() == "metrics.acc >> 0.9"  # kept, to be fixed
    screenshot(tab, "runs-bad-filter")
    assert problems.none(), problems


def test_pages_follow_the_page_token(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, filled_store.store)
    tab.goto(f"{base}/experiments/{filled_store.experiment_id}?size=4&order=name+ASC")
    first = _run_names(tab)
    assert first == ["sweep", "trial-0", "trial-1", "trial-2"]
    tab.get_by_role("link", name="next page").click()
    tab.wait_for_url("**page_token=**")
    assert _run_names(tab) == ["trial-3", "trial-4"]
    assert tab.get_by_role("link", name="next page").count() == 0
    tab.get_by_role("link", name="first page").click()
    tab.wait_for_url(lambda url: "page_token" not in url)
    assert _run_names(tab) == first
    assert problems.none(), problems


def test_run_page_and_artifact_download(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, filled_store.store)
    tab.goto(f"{base}/experiments/{filled_store.experiment_id}")
    tab.get_by_role("link", name="sweep", exact=True).click()
    tab.wait_for_url(f"**/runs/{filled_store.parent.run_id}")
    assert "model" in tab.locator("#params").inner_text() and "rf" in tab.locator("#params").inner_text()
    assert "main" in tab.locator("#code").inner_text() and "0123456789ab" in tab.locator("#code").inner_text()
    datasets = tab.locator("#datasets").inner_text()
    assert "iris" in datasets and "sepal_length" in datasets and "train" in datasets
    assert tab.locator("#children tbody tr").count() == 5
    assert tab.locator("#artifacts li[data-path='notes/summary.txt']").count() == 1  # in the folder tree
    screenshot(tab, "run")
    with tab.expect_download() as download:
        tab.get_by_role("link", name="download").click()
    assert download.value.suggested_filename == "summary.txt"
    with open(download.value.path(), encoding="utf-8") as saved:
        assert saved.read() == "trial 3 wins\n"
    # a child's page links back to its parent and shows its latest metrics
    tab.goto(f"{base}/runs/{filled_store.trials[3].run_id}")
    assert "0.83" in tab.locator("#metrics").inner_text()
    tab.get_by_role("link", name="sweep", exact=True).click()
    tab.wait_for_url(f"**/runs/{filled_store.parent.run_id}")
    assert problems.none(), problems
