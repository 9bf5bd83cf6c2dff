"""The models list, a model's page with its evidence and lineage, and the approval flow, in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from loopml.auth.tokens import create_token
from loopml.entities.registry import Stage
from loopml.registry.client import RegistryClient
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from loopml.validation.gates import compare_models, validate_model
from tests.ui.conftest import Filled, Problems, screenshot, serve


@dataclass
class Registry:
    filled: Filled
    registry: RegistryClient


@pytest.fixture
def models(filled_store: Filled) -> Iterator[Registry]:
    """``iris-gated`` (approval required: v1 is @champion, v2 a candidate with gate evidence) and ``iris-free``."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    client = TrackingClient(filled_store.store)
    registry = RegistryClient(client)
    X, y = load_iris(return_X_y=True, as_frame=True)
    y = (y == 2).astype(int)  # virginica or not: a binary task, so roc_auc applies
    fitted = []
    for model in (DecisionTreeClassifier(max_depth=1, random_state=0), LogisticRegression(max_iter=500)):
        run = ActiveRun(client, client.create_run("iris-sweep", name=type(model).__name__, capture=False))
        run.log_dataset(X.assign(target=y), "iris")
        info = run.log_model(model.fit(X, y), "model", input_example=X.head())
        run.end()
        fitted.append((info, model))
    registry.create_registered_model("iris-gated", require_approval=True, tags={"team": "flowers"})
    for info, _ in fitted:
        registry.register_model(info.uri, "iris-gated", actor="mia")
    registry.register_model(fitted[0][0].uri, "iris-free", actor="mia")
    # v1 went to production before approval was required of it: an approved request, as the store wants
    request = registry.request_transition("iris-gated", 1, "production", actor="mia")
    registry.approve(request.request_id, actor="olga")
    registry.transition("iris-gated", 1, "production", actor="olga")
    champion, challenger = fitted[0][1], fitted[1][1]
    validate_model(challenger, X, y, {"roc_auc": 0.9, "accuracy": ">= 0.8"}).record("iris-gated", 2, client=registry)
    compare_models(challenger, champion, X, y, "roc_auc", n_boot=200).record("iris-gated", 2, client=registry)
    # responsible ML (issue 16): a global explanation, a fairness gate and a business-metric gate on v2
    from loopml.explain.importance import explain_model
    from loopml.explain.metrics import metric, unregister_metric
    from loopml.validation.responsible import business_metric_gate, fairness_gate

    explain_model("models:/iris-gated/2", X.assign(target=y), target="target", client=registry, n_repeats=2)
    petals = (X["petal length (cm)"] > 4).map({True: "long", False: "short"}).rename("petals")
    fairness_gate(challenger, champion, X, y, petals, min_rows=20).record("iris-gated", 2, client=registry)
    metric(name="ui_hits")(lambda predictions, labels, features: float((predictions == labels).sum()))
    business_metric_gate("ui_hits", challenger, champion, X, y).record("iris-gated", 2, client=registry)
    unregister_metric("ui_hits")
    yield Registry(filled=filled_store, registry=registry)


def test_models_list_and_search(live_server: Any, models: Registry, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, models.filled.store)
    tab.goto(base + "/")
    tab.get_by_role("navigation").get_by_role("link", name="Models").click()
    tab.wait_for_url("**/models")
    names = tab.locator("#models tbody tr td:first-child").all_inner_texts()
    assert names == ["iris-free", "iris-gated"]
    assert "@champion → v1" in tab.locator("tr[data-model='iris-gated']").inner_text()
    screenshot(tab, "models")
    box = tab.get_by_label("filter")
    box.fill("tags.team = 'flowers'")
    box.press("Enter")
    tab.wait_for_url("**filter=**")
    assert tab.locator("#models tbody tr td:first-child").all_inner_texts() == ["iris-gated"]
    box = tab.get_by_label("filter")
    box.fill("name = = 'x'")
    box.press("Enter")
    error = tab.locator("#filter-error")
    error.wait_for()
    assert "position" in error.inner_text() and "^" in error.inner_text()
    assert tab.get_by_label("filter").input_value() == "name = = 'x'"
    assert problems.none(), problems


def test_model_page_evidence_and_lineage(live_server: Any, models: Registry, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, models.filled.store)
    tab.goto(base + "/models")
    tab.get_by_role("link", name="iris-gated").click()
    tab.wait_for_url("**/models/iris-gated")
    rows = tab.locator("#versions tbody tr")
    assert rows.count() == 2
    assert "production" in tab.locator("tr[data-version='1']").inner_text()
    assert "@champion" in tab.locator("tr[data-version='1']").inner_text()
    assert "applied" in tab.locator("#requests").inner_text()
    tab.get_by_role("link", name="v2").click()
    tab.wait_for_url("**version=2")
    evidence = tab.locator("#evidence")
    text = evidence.inner_text()
    # the gates' figures as tables: thresholds and champion-vs-challenger statistics, no JSON braces
    assert "thresholds" in text and "challenger_vs_champion" in text and "roc_auc" in text
    assert "{" not in text
    assert evidence.locator("table").count() > 2
    responsible = tab.locator("#responsible")  # issue 16: explanations, fairness and business metrics
    summary = responsible.inner_text()
    assert "Feature importance" in summary and "petal" in summary and "linear explainer" in summary
    assert "Fairness by petals" in summary and "group petals=long" in summary
    assert "Business metric ui_hits" in summary
    assert responsible.locator("meter").count() == 4
    lineage = tab.locator("#lineage")
    assert lineage.locator("li[data-kind='model_version']").count() == 1
    assert "LogisticRegression" in lineage.locator("li[data-kind='run'] a").first.inner_text()
    assert "iris" in lineage.locator("li[data-kind='dataset']").first.inner_text()
    screenshot(tab, "model")
    lineage.locator("li[data-kind='run'] a").first.click()
    tab.wait_for_url("**/runs/**")
    assert problems.none(), problems


def _version_stage(models: Registry, version: int) -> Stage:
    return models.filled.store.registry.get_version("iris-gated", version).stage


def _login(tab: Any, base: str, secret: str, where: str) -> None:
    tab.context.clear_cookies()
    tab.goto(f"{base}{where}")
    tab.get_by_label("API token").fill(secret)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"**{where}")


def test_request_approve_and_promote(live_server: Any, models: Registry, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    store = models.filled.store
    viewer = create_token(store, "vera", "viewer").secret
    editor = create_token(store, "eddie", "editor").secret
    admin = create_token(store, "ada", "admin").secret
    base = serve(live_server, store, auth=True)
    tab.on("dialog", lambda dialog: dialog.accept())
    # a viewer sees no buttons
    _login(tab, base, viewer, "/models/iris-gated")
    assert tab.locator("#lifecycle button").count() == 0
    # an editor may request, not decide or promote
    _login(tab, base, editor, "/models/iris-gated")
    assert tab.get_by_role("button", name="Move to production").count() == 0
    tab.locator("tr[data-version='2']").get_by_role("button", name="Request production").click()
    tab.get_by_role("status").filter(has_text="Requested production").wait_for()
    (pending,) = store.registry.list_requests("iris-gated", version=2, status="pending")  # type: ignore[arg-type]
    assert pending.requested_by == "eddie" and _version_stage(models, 2) is Stage.CANDIDATE
    assert tab.get_by_role("button", name="Approve").count() == 0
    # an admin approves it, then moves the version to production: @champion follows
    _login(tab, base, admin, "/models/iris-gated")
    tab.locator(f"tr[data-request='{pending.request_id}']").get_by_role("button", name="Approve").click()
    tab.get_by_role("status").filter(has_text="approved").wait_for()
    assert store.registry.list_requests("iris-gated", version=2)[0].decided_by == "ada"
    assert _version_stage(models, 2) is Stage.CANDIDATE
    tab.locator("tr[data-version='2']").get_by_role("button", name="Move to production").click()
    tab.get_by_role("status").filter(has_text="now production").wait_for()
    assert _version_stage(models, 2) is Stage.PRODUCTION and _version_stage(models, 1) is Stage.ARCHIVED
    assert store.registry.get_version_by_alias("iris-gated", "champion").version == 2
    assert "@champion" in tab.locator("tr[data-version='2']").inner_text()
    assert problems.none(), problems


def test_the_requester_cannot_approve(live_server: Any, models: Registry, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    store = models.filled.store
    admin = create_token(store, "ada", "admin").secret
    base = serve(live_server, store, auth=True)
    _login(tab, base, admin, "/models/iris-gated")
    tab.locator("tr[data-version='2']").get_by_role("button", name="Request production").click()
    tab.get_by_role("status").filter(has_text="Requested production").wait_for()
    tab.get_by_role("button", name="Approve").click()
    alert = tab.locator("#action-error")
    alert.wait_for()
    assert "cannot approve it too" in alert.inner_text()
    assert store.registry.list_requests("iris-gated", version=2)[0].status.value == "pending"
    assert _version_stage(models, 2) is Stage.CANDIDATE
    # and the server refuses a viewer's approval even without a button
    assert problems.none(), problems
