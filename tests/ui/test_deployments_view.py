"""The deployments list, a deployment's routing, history and traffic charts, and rollback, in Chromium."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from loopml.auth.tokens import create_token
from loopml.entities.serving import PredictionRecord
from loopml.registry.client import RegistryClient
from loopml.serving.client import ServingClient
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from tests.ui.conftest import Filled, Problems, screenshot, serve

MODEL = "iris-served"


def _records(now: int) -> list[PredictionRecord]:
    """Forty minutes of traffic: main on v1, a 10% canary on v2 (slower, some 500s), a shadow on v2."""
    records = []
    for minute in range(40):
        at = now - (40 - minute) * 60_000
        for i in range(18):
            rid = uuid.uuid4().hex
            body = json.dumps({"records": [{"sepal length (cm)": 5.1}]})
            records.append(PredictionRecord(rid, at + i * 1000, MODEL, 1, "main", body, "[0]", 5.0 + i % 7, 200))
            records.append(PredictionRecord(rid, at + i * 1000, MODEL, 2, "shadow", body, "[0]", 9.0 + i % 5, 200))
        for i in range(2):
            status = 500 if minute % 10 == 0 and i == 0 else 200
            records.append(PredictionRecord(uuid.uuid4().hex, at + i * 1000, MODEL, 2, "canary", "{}", "[1]",
                                            12.0 + i, status))  # fmt: skip
    return records


@pytest.fixture
def served(filled_store: Filled) -> Iterator[Filled]:
    """``iris-served``: v1 @champion deployed, then v2 as a 10% canary with a shadow; a logged hour of traffic."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    client = TrackingClient(filled_store.store)
    registry = RegistryClient(client)
    X, y = load_iris(return_X_y=True, as_frame=True)
    for model in (DecisionTreeClassifier(max_depth=2, random_state=0), LogisticRegression(max_iter=500)):
        run = ActiveRun(client, client.create_run("iris-sweep", name=type(model).__name__, capture=False))
        info = run.log_model(model.fit(X, y), "model", input_example=X.head())
        run.end()
        registry.register_model(info.uri, MODEL, actor="mia")
    registry.set_alias(MODEL, "champion", 1)
    serving = ServingClient(client)
    serving.deploy(MODEL, "champion", actor="mia", reason="first release")
    serving.deploy(MODEL, "champion", canary={"version": 2, "percent": 10}, shadow=2, actor="mia",
                   reason="try the logistic regression")  # fmt: skip
    now = int(time.time() * 1000)
    # each minute's requests start on its second 0, so none of them falls in the next minute's bucket
    filled_store.store.serving.log_predictions(_records(now - now % 60_000))
    yield filled_store


def test_deployments_list_routing_and_charts(live_server: Any, served: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, served.store)
    tab.goto(base + "/")
    tab.get_by_role("navigation").get_by_role("link", name="Deployments").click()
    tab.wait_for_url("**/deployments")
    row = tab.locator(f"tr[data-model='{MODEL}']")
    text = row.inner_text()
    assert "@champion" in text and "v1" in text and "v2 at 10%" in text
    screenshot(tab, "deployments")
    row.get_by_role("link", name=MODEL).click()
    tab.wait_for_url(f"**/deployments/{MODEL}")
    assert "v1 on 90% of requests" in tab.locator("#serves").inner_text()
    assert "v2 on 10% of requests" in tab.locator("#canary").inner_text()
    assert "v2" in tab.locator("#shadow").inner_text()
    assert tab.locator("#history tbody tr").count() == 2
    # the charts draw from the server's buckets: a canvas each, a series per role (three per role for latency)
    tab.locator("#traffic[data-drawn='true']").wait_for()
    assert tab.locator("#traffic canvas").count() >= 3
    assert tab.locator("#chart-rate").get_attribute("data-series") == "3"
    assert tab.locator("#chart-latency").get_attribute("data-series") == "9"
    summary = tab.locator("#traffic-summary").inner_text()
    assert "1520 requests" in summary and "main, canary, shadow" in summary
    data = tab.request.get(f"{base}/deployments/{MODEL}/traffic.json?window=1h").json()
    assert len(data["x"]) <= 500 and set(data["series"]) == {"main", "canary", "shadow"}
    rates = [v for v in data["series"]["main"]["rate"] if v is not None]
    assert rates and max(rates) == 18.0  # 18 requests in each minute's bucket
    errors = [v for v in data["series"]["canary"]["error_rate"] if v]
    assert errors and max(errors) == 0.5
    tab.get_by_role("link", name="last hour").click()
    tab.wait_for_url("**window=1h")
    tab.locator("#traffic[data-drawn='true']").wait_for()
    assert "in the last hour, in buckets of 1 min" in tab.locator("#traffic-summary").inner_text()
    screenshot(tab, "deployment")
    assert problems.none(), problems


def _login(tab: Any, base: str, secret: str, where: str) -> None:
    tab.context.clear_cookies()
    tab.goto(f"{base}{where}")
    tab.get_by_label("API token").fill(secret)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"**{where}")


def test_rollback_by_clicking_and_its_refusal(live_server: Any, served: Filled, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    store = served.store
    viewer = create_token(store, "vera", "viewer").secret
    editor = create_token(store, "eddie", "editor").secret
    base = serve(live_server, store, auth=True)
    where = f"/deployments/{MODEL}"
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    tab.on("dialog", accept)
    _login(tab, base, viewer, where)
    assert tab.get_by_role("button", name="Roll back").count() == 0
    _login(tab, base, editor, where)
    tab.get_by_role("button", name="Roll back").click()
    tab.get_by_role("status").filter(has_text="Rolled back").wait_for()
    assert dialogs and "Roll iris-served back" in dialogs[0]
    current = store.serving.current_deployment(MODEL)
    assert current.action == "rollback" and current.created_by == "eddie"
    assert current.canary_version is None and current.shadow_version is None and current.version == 1
    assert "none" in tab.locator("#canary").inner_text()
    assert tab.locator("#history tbody tr").count() == 3
    rollback = store.audit.list_events(action="deployment.*", target=MODEL, newest_first=True, max_results=1)[0]
    assert rollback.actor == "eddie"
    # the deployment restored was the first: nothing earlier to roll back to, said in place
    tab.get_by_role("button", name="Roll back").click()
    alert = tab.locator("#action-error")
    alert.wait_for()
    assert "no earlier one to roll back to" in alert.inner_text()
    assert store.serving.current_deployment(MODEL).deployment_id == current.deployment_id
    assert problems.none(), problems
