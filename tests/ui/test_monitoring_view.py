"""The monitoring pages in Chromium: monitors with their last status, a monitor's heatmap, charts, alerts and report."""

from __future__ import annotations

from typing import Any

from loopml.monitoring.monitors import monitor, run_monitor
from loopml.tracking.client import TrackingClient
from tests.monitoring.logdata import SHIFTED, features, predict, reference_frame
from tests.ui.conftest import Filled, Problems, screenshot, serve


def _check(client: TrackingClient, seed: int, shift: list[str]) -> str:
    current = features(400, seed=seed, shift=shift)
    prediction = predict(current)
    labels = prediction.where(current.index % 10 != 0, 1 - prediction)  # 90% right
    frame = current.assign(prediction=prediction, label=labels.values, status=200, latency_ms=12.0 + seed)
    return run_monitor("churn-watch", reference=reference_frame(), current=frame, client=client).status


def _fill(filled: Filled) -> list[str]:
    """Two monitors: ``churn-watch`` checked four times (drift on b and d in the last two), ``idle`` never."""
    client = TrackingClient(filled.store)
    monitor("churn-watch", "churn", checks=["data_drift", "performance", "operations"],
            thresholds={"drift_share": 0.2}, client=client)  # fmt: skip
    monitor("idle", "fraud", client=client)
    return [_check(client, seed, shift) for seed, shift in ((1, []), (5, []), (3, SHIFTED), (4, SHIFTED))]


def test_monitors_heatmap_charts_alerts_and_report(
    live_server: Any, filled_store: Filled, page: tuple[Any, Problems]
) -> None:
    tab, problems = page
    statuses = _fill(filled_store)
    assert statuses == ["ok", "ok", "alert", "alert"]
    base = serve(live_server, filled_store.store)
    tab.goto(base)
    tab.get_by_role("navigation").get_by_role("link", name="Monitors").click()
    tab.wait_for_url("**/monitors")
    watch = tab.locator('#monitors tr[data-monitor="churn-watch"]')
    assert watch.locator(".check").inner_text() == "alert"
    assert watch.locator("td").nth(4).inner_text() == "1"  # the data_drift alert of the latest check is open
    assert "not checked yet" in tab.locator('#monitors tr[data-monitor="idle"]').inner_text()
    screenshot(tab, "monitors")

    watch.get_by_role("link", name="churn-watch").click()
    tab.wait_for_url("**/monitors/churn-watch")
    # the heatmap: one row per column, one cell per check; b and d drifted in the last two checks only
    heat = tab.locator("#heatmap")
    assert heat.locator("thead th").count() == 1 + 4
    for column in ("a", "b", "c", "d", "plan"):
        classes = heat.locator(f'tr[data-column="{column}"] td').evaluate_all("cells => cells.map(c => c.className)")
        expected = ["drift-no", "drift-no", "drift-yes", "drift-yes"] if column in SHIFTED else ["drift-no"] * 4
        assert classes == expected, (column, classes)
    title = heat.locator('tr[data-column="b"] td').nth(3).get_attribute("title")
    assert title and "p-value" in title and "drifted" in title
    # performance over time: the canvas is drawn with the four checks' points
    performance = tab.locator('[data-chart="performance"]')
    performance.locator("canvas").wait_for()
    assert performance.get_attribute("data-drawn") == "4"
    assert "accuracy" in performance.inner_text()
    assert tab.locator('[data-chart="latency"] canvas').count() == 1
    # the alerts, newest first; the latest check's distributions beside its drift table
    alerts = tab.locator("#alerts tbody tr")
    assert alerts.count() == 2 and "data_drift" in alerts.first.inner_text()
    pictures = tab.locator("#distributions img").evaluate_all("imgs => imgs.map(i => [i.alt, i.naturalWidth])")
    assert {alt.split(":")[0] for alt, _ in pictures} >= {"a", "b", "c", "d", "plan"}
    assert all(width > 0 for _, width in pictures), pictures  # each picture decoded and drawn
    flagged = tab.locator("#drift-table tr.flagged td:first-child").all_inner_texts()
    assert set(SHIFTED) <= set(flagged) and not {"a", "c", "plan"} & set(flagged), flagged
    screenshot(tab, "monitor")

    # the self-contained report opens, under its own policy (inline style only, no script)
    with tab.expect_response("**/monitors/churn-watch/report") as answer:
        tab.get_by_role("link", name="HTML report").click()
    csp = answer.value.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in csp and "script-src" not in csp and "default-src 'none'" in csp
    assert tab.locator("svg").count() > 0 and "Monitor churn-watch" in tab.title()
    assert tab.locator("h1").evaluate("h => getComputedStyle(h).fontFamily") != ""
    assert problems.none(), problems


def test_a_monitor_without_checks_says_how_to_run_one(
    live_server: Any, filled_store: Filled, page: tuple[Any, Problems]
) -> None:
    tab, problems = page
    monitor("idle", "fraud", client=TrackingClient(filled_store.store))
    base = serve(live_server, filled_store.store)
    tab.goto(f"{base}/monitors/idle")
    assert "loopml monitor check idle" in tab.locator("main").inner_text()
    assert tab.locator("#report-link").count() == 0
    assert problems.none(), problems
