"""The loop's pages in Chromium: policies and tasks, and a task's timeline of decisions with their evidence."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from loopml.entities.monitoring import AlertSpec, LoopTask
from loopml.entities.serving import Feedback, PredictionRecord
from loopml.registry.client import RegistryClient
from loopml.serving.client import ServingClient
from loopml.store import Store
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from tests.ui.conftest import Filled, Problems, screenshot, serve

MODEL = "bc"
MONITOR = "bc-drift"


class Traffic:
    """Stands in for live traffic while a canary is watched: each sleep of the agent logs labelled predictions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, seconds: float) -> None:
        now = int(time.time() * 1000)
        records, feedback = [], []
        for role, version, n in (("main", 1, 30), ("canary", 2, 10)):
            for _ in range(n):
                rid = uuid.uuid4().hex
                records.append(PredictionRecord(rid, now, MODEL, version, role, json.dumps({"inputs": {"x": 1}}),
                                                "[1]", 1.0, 200))  # fmt: skip
                feedback.append(Feedback(rid, 1, now))
        self.store.serving.log_predictions(records)
        self.store.serving.log_feedback(feedback)
        time.sleep(min(seconds, 0.05))


@dataclass
class Loop:
    filled: Filled
    promoted: LoopTask
    rejected: LoopTask


@pytest.fixture
def loop(filled_store: Filled) -> Iterator[Loop]:
    """Two tasks of the agent on ``bc``: an alert that ends in a canary and a promotion, then a gate's rejection."""
    pytest.importorskip("sklearn")
    from loopml.loop import Agent, CanaryRules, beats_champion, policy, thresholds
    from tests.loop import library

    store = filled_store.store
    client = TrackingClient(store)
    registry = RegistryClient(client)
    run = ActiveRun(client, client.create_run("loop-tests", capture=False))
    run.log_model(library.weak_champion(), "model", input_example=library.data()[library.FEATURES].head(3))
    run.end()
    registry.register_model(f"runs:/{run.info.run_id}/model", MODEL)
    registry.set_alias(MODEL, "champion", 1)
    ServingClient(client).deploy(MODEL, "champion")
    store.monitoring.put_monitor(MONITOR, MODEL, {"checks": ["data_drift"]}, actor="test")
    store.monitoring.record_result(
        MONITOR, model=MODEL, version=1, status="alert", summary={}, figures={},
        alerts=[AlertSpec("data_drift", "3 of 5 columns drifted", {"drifted": ["mean radius"]})], actor="monitor",
    )  # fmt: skip
    fast = CanaryRules(window_s=0.3, min_requests=20, min_labelled=10, timeout_s=5)
    retrain = policy(MODEL, pipeline=library.retrain, monitor=MONITOR, name="bc-retrain", rollout="canary:10%->100%",
                     gates=[thresholds({"roc_auc": 0.9}), beats_champion("roc_auc")], canary=fast)  # fmt: skip
    [started] = Agent([retrain], client=client, sleep=Traffic(store)).tick()
    assert started.task is not None and started.task.state == "succeeded", started
    strict = policy(
        MODEL, pipeline=library.retrain, name="bc-strict", schedule="0 3 * * 1", gates=[thresholds({"roc_auc": 0.9999})]
    )
    rejected = Agent([strict], client=client, sleep=Traffic(store)).trigger(strict, reason="weekly check")
    assert rejected.task is not None and rejected.task.state == "rejected", rejected
    yield Loop(filled=filled_store, promoted=started.task, rejected=rejected.task)


def test_loop_lists_policies_and_tasks(live_server: Any, loop: Loop, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, loop.filled.store)
    tab.goto(base + "/")
    tab.get_by_role("navigation").get_by_role("link", name="Loop").click()
    tab.wait_for_url("**/loop")
    assert tab.locator("#policies tbody tr").count() == 2
    assert "succeeded" in tab.locator("tr[data-policy='bc-retrain']").inner_text()
    assert "rejected" in tab.locator("tr[data-policy='bc-strict']").inner_text()
    ids = [int(x) for x in tab.locator("#tasks tbody tr td:first-child").all_inner_texts()]
    assert ids == [loop.rejected.task_id, loop.promoted.task_id]  # newest first
    promoted_row = tab.locator(f"tr[data-task='{loop.promoted.task_id}']").inner_text()
    assert "alert" in promoted_row and "promoted" in promoted_row
    assert "manual" in tab.locator(f"tr[data-task='{loop.rejected.task_id}']").inner_text()
    screenshot(tab, "loop")
    # a filter and a page of one: the next page holds the older task
    tab.get_by_label("state").select_option("rejected")
    tab.get_by_role("button", name="Filter").click()
    tab.wait_for_url("**state=rejected**")
    assert tab.locator("#tasks tbody tr").count() == 1
    tab.goto(base + "/loop?size=1")
    assert tab.locator("#tasks tbody tr").count() == 1
    tab.get_by_role("link", name="older tasks").click()
    tab.wait_for_url("**page=2**")
    assert tab.locator(f"tr[data-task='{loop.promoted.task_id}']").count() == 1
    assert "of 2, newest first" in tab.locator(".pager").inner_text()
    assert problems.none(), problems


def test_a_tasks_timeline(live_server: Any, loop: Loop, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, loop.filled.store)
    tab.goto(base + "/loop")
    tab.get_by_role("link", name=str(loop.promoted.task_id), exact=True).click()
    tab.wait_for_url(f"**/loop/tasks/{loop.promoted.task_id}")
    assert "promoted" in tab.locator("#outcome").inner_text()
    timeline = tab.locator("#timeline")
    phases = timeline.locator("li").evaluate_all("items => items.map(i => i.dataset.phase)")
    # alert -> retrain -> gates -> canary verdict -> promote, in that order
    expected = ("alert", "retrain", "canary", "promote", "promoted")
    assert set(expected) <= set(phases), phases
    order = [phases.index(p) for p in expected]
    assert order == sorted(order), phases
    stages = timeline.locator("li[data-kind='stage']").all_inner_texts()
    assert any("gates" in s for s in stages) and any("canary 10%" in s for s in stages)
    alert = timeline.locator("li[data-phase='alert']")
    assert "3 of 5 columns drifted" in alert.inner_text()
    verdict = timeline.locator("li[data-phase='canary']").first
    assert "loop.canary.pass" in verdict.inner_text() and verdict.locator("table").count() >= 1
    details = tab.locator("#details")
    assert "canary_verdicts" in details.inner_text() and details.locator("table").count() >= 2
    screenshot(tab, "loop-task")
    tab.goto(f"{base}/loop/tasks/{loop.rejected.task_id}")
    assert "failed the gates" in tab.locator("#outcome").inner_text()
    assert tab.locator("#timeline li[data-phase='rejected']").count() == 1
    assert problems.none(), problems
