"""The audit log page in Chromium: its filters are a URL, its pages go back in time, token events are for admins."""

from __future__ import annotations

from typing import Any

import pytest

from loopml.auth.tokens import create_token
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from tests.ui.conftest import Filled, Problems, screenshot, serve


def _fill(filled: Filled) -> tuple[str, str]:
    """Registry events by alice and bob on ``churn`` and ``churnless``, and two tokens; the tokens' secrets."""
    registry = filled.store.registry
    viewer = create_token(filled.store, "vera", "viewer", actor="root").secret
    admin = create_token(filled.store, "ada", "admin", actor="root").secret
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    client = TrackingClient(filled.store)
    run = ActiveRun(client, client.create_run("iris-sweep", name="tree", capture=False))
    run.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "model", input_example=X.head())
    run.end()
    run_id = run.id
    for name in ("churn", "churnless"):
        registry.create_model(name, description=None, tags={}, require_approval=False, actor="alice")
        for _ in range(2):
            registry.create_version(name, run_id=run_id, source=f"runs:/{run_id}/model", description=None, tags={},
                                    actor="alice")  # fmt: skip
    registry.set_alias("churn", "champion", 1, actor="bob", reason="best AUC")
    registry.set_alias("churn", "champion", 2, actor="bob", reason="retrained")
    registry.set_alias("churnless", "challenger", 2, actor="bob", reason=None)
    return viewer, admin


def _rows(tab: Any, column: int) -> list[str]:
    return [text.strip() for text in tab.locator(f"#events tbody tr td:nth-child({column})").all_inner_texts()]


def _login(tab: Any, base: str, secret: str, where: str) -> None:
    tab.context.clear_cookies()
    tab.goto(f"{base}{where}")
    tab.get_by_label("API token").fill(secret)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"**{where}")


def test_audit_filters_paging_and_token_events(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    pytest.importorskip("sklearn")
    viewer, admin = _fill(filled_store)
    base = serve(live_server, filled_store.store, auth=True)
    _login(tab, base, admin, "/")
    tab.get_by_role("navigation").get_by_role("link", name="Audit log").click()
    tab.wait_for_url("**/audit")
    ids = [int(i) for i in _rows(tab, 1)]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert "token.create" in _rows(tab, 4)
    # target: the model and what is under it, not a model whose name merely starts the same
    tab.get_by_label("target").fill("churn")
    tab.get_by_role("button", name="Filter").click()
    tab.wait_for_url("**target=churn**")
    targets = [t.split()[-1] for t in _rows(tab, 5)]
    assert targets and all(t == "churn" or t.startswith(("churn/", "churn@")) for t in targets), targets
    # actor and an action prefix, together with the target: bob's two moves of @champion
    tab.get_by_label("actor").fill("bob")
    tab.get_by_label("action").fill("alias.*")
    tab.get_by_role("button", name="Filter").click()
    tab.wait_for_url("**actor=bob**")
    assert _rows(tab, 4) == ["alias.move", "alias.set"]
    assert _rows(tab, 8) == ["retrained", "best AUC"]
    screenshot(tab, "audit")
    # the URL is the view: opened afresh it shows the same events
    shared = tab.url
    tab.goto(f"{base}/audit")
    tab.goto(shared)
    assert _rows(tab, 4) == ["alias.move", "alias.set"]
    # a time range after every event finds none; a bad time says why
    tab.goto(f"{base}/audit?since=2999-01-01T00:00")
    assert tab.locator("#events tbody").inner_text().strip() == "No events match."
    tab.goto(f"{base}/audit?until=yesterday")
    assert "not a date or time" in tab.locator("#filter-error").inner_text()
    # pages of 3, going back in time, and back to the newest
    tab.goto(f"{base}/audit?actor=alice&size=3")
    first = [int(i) for i in _rows(tab, 1)]
    tab.get_by_role("link", name="older events").click()
    tab.wait_for_url("**before=**")
    second = [int(i) for i in _rows(tab, 1)]
    assert len(first) == 3 and second and max(second) < min(first)
    tab.get_by_role("link", name="newest page").click()
    tab.wait_for_url(lambda url: "before=" not in url)
    assert [int(i) for i in _rows(tab, 1)] == first
    # a viewer never sees token events (the API's rule), and is told some were left out
    _login(tab, base, viewer, "/audit")
    assert not [a for a in _rows(tab, 4) if a.startswith("token.")]
    assert "hidden" in tab.locator(".pager").inner_text()
    assert problems.none(), problems
