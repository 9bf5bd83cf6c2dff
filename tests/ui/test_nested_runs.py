"""Nested runs in the runs table: children under their parent, a toggle, and the children on other pages."""

from __future__ import annotations

from typing import Any

from loopml.tracking.client import TrackingClient
from tests.ui.conftest import Filled, Problems, screenshot, serve


def _visible_names(tab: Any) -> list[str]:
    rows = tab.locator("#runs tbody tr:visible td:first-child a[href^='/runs/']:not(.parent)")
    return [name.strip() for name in rows.all_inner_texts()]


def test_children_fold_under_their_parent(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    client = TrackingClient(filled_store.store)
    grandchild = client.create_run(
        "iris-sweep", name="trial-0-fold-1", parent_run_id=filled_store.trials[0].run_id, capture=False
    )
    client.end_run(grandchild.run_id)
    base = serve(live_server, filled_store.store)
    tab.goto(f"{base}/experiments/{filled_store.experiment_id}")  # newest first: the children started last
    # all the runs are in the table, in groups: the parent first, its children folded under it
    names = [
        n.strip()
        for n in tab.locator("#runs tbody tr td:first-child a:not(.parent):not(.more-children)").all_inner_texts()
    ]
    assert names == ["sweep", "trial-4", "trial-3", "trial-2", "trial-1", "trial-0", "trial-0-fold-1"]
    assert _visible_names(tab) == ["sweep"]
    toggle = tab.locator(f"tr[data-run='{filled_store.parent.run_id}'] button.toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert _visible_names(tab) == ["sweep", "trial-4", "trial-3", "trial-2", "trial-1", "trial-0"]
    # a child with children of its own has its own toggle
    tab.locator(f"tr[data-run='{filled_store.trials[0].run_id}'] button.toggle").click()
    assert _visible_names(tab)[-1] == "trial-0-fold-1"
    screenshot(tab, "nested-runs")
    # folding the parent hides every descendant; unfolding it keeps trial-0's children shown as they were
    toggle.click()
    assert _visible_names(tab) == ["sweep"]
    toggle.click()
    assert _visible_names(tab)[-2:] == ["trial-0", "trial-0-fold-1"]
    assert problems.none(), problems


def test_children_on_other_pages_are_linked(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, filled_store.store)
    tab.goto(f"{base}/experiments/{filled_store.experiment_id}?size=3&order=name+ASC")
    parent_row = tab.locator(f"tr[data-run='{filled_store.parent.run_id}']")
    assert "2 child runs" in parent_row.locator("button.toggle").inner_text()
    more = parent_row.locator("a.more-children")
    assert more.inner_text() == "3 more children"
    more.click()
    tab.wait_for_url("**filter=attributes.parent_run_id**")
    assert tab.get_by_label("filter").input_value() == f"attributes.parent_run_id = '{filled_store.parent.run_id}'"
    # the parent is not on this page, so its children are listed at the top level, each with its arrow
    names = _visible_names(tab)  # the page keeps its size (3): three of the five children
    assert len(names) == 3 and all(name.startswith("trial-") for name in names)
    assert tab.locator("#runs tbody tr a.parent").count() == 3
    assert problems.none(), problems
