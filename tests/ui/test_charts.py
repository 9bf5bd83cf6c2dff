"""Metric charts on the run page, in Chromium: a 200,000-point metric is downsampled by the server, says so,
and a drag zooms by asking the server for that range."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.entities.tracking import Metric, Run
from loopml.store import Store, open_store
from loopml.tracking.client import TrackingClient
from tests.ui.conftest import Problems, screenshot, serve

LONG = 200_000
CHUNK = 20_000

#: Draw-time check that a chart's canvas is not blank: some pixel carries the series' colour.
_INKED = """(figure) => {
  const canvas = figure.querySelector('canvas');
  const ctx = canvas.getContext('2d');
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < pixels.length; i += 4) { if (pixels[i + 3] > 0 && pixels[i + 2] > 150 && pixels[i] < 100) inked++; }
  return inked;
}"""


@pytest.fixture
def long_run(tmp_path: Path) -> Iterator[tuple[Store, Run]]:
    store = open_store(f"sqlite:///{tmp_path / 'charts.db'}", artifacts_url=str(tmp_path / "artifacts"))
    client = TrackingClient(store)
    client.create_experiment("long")
    run = client.create_run("long", name="long-run", params={"lr": 0.01}, capture=False)
    for start in range(0, LONG, CHUNK):  # the public API, in chunks, as a training loop would log them
        points = [
            Metric("loss", 2.0 * math.exp(-s / 40_000) + 0.05 * math.sin(s / 7), s, 1_700_000_000_000 + s * 10)
            for s in range(start, start + CHUNK)
        ]
        client.log_metric_points(run.run_id, points)
    gappy = [Metric("grad_norm", math.nan if s in (3, 4) else 1.0 + s, s, 1_700_000_000_000 + s) for s in range(10)]
    client.log_metric_points(run.run_id, [*gappy, Metric("final", 0.9, 0, 1_700_000_000_000)])
    client.end_run(run.run_id)
    try:
        yield store, run
    finally:
        store.close()


def _figure(tab: Any, key: str) -> Any:
    figure = tab.locator(f"figure.mchart[data-key='{key}']")
    figure.and_(tab.locator("[data-state='drawn']")).wait_for()
    return figure


def test_series_endpoint_downsamples_and_says_so(live_server: Any, long_run: tuple[Store, Run]) -> None:
    import httpx

    store, run = long_run
    base = serve(live_server, store)
    # the first chart of a long metric of an ended run builds its roll-ups (once): allow for a busy machine
    whole = httpx.get(f"{base}/runs/{run.run_id}/metrics/loss/series").json()
    assert whole["total"] == LONG and whole["downsampled"] and whole["method"] == "minmax"
    assert 0 < whole["shown"] <= 1000 and len(whole["data"][0]) == whole["shown"] == len(whole["data"][1])
    assert whole["data"][0] == sorted(whole["data"][0])
    assert max(whole["data"][1]) >= 2.0  # the first bucket's max: the extremes are kept
    part = httpx.get(f"{base}/runs/{run.run_id}/metrics/loss/series", params={"from": 1000, "to": 1400}).json()
    assert not part["downsampled"] and part["total"] == part["shown"] == 401
    gaps = httpx.get(f"{base}/runs/{run.run_id}/metrics/grad_norm/series", params={"x": "time"}).json()
    assert gaps["nan"] == 2 and gaps["data"][1][3] is None and gaps["x_min"] == 1_700_000_000_000
    assert httpx.get(f"{base}/runs/{run.run_id}/metrics/nope/series").status_code == 404
    assert httpx.get(f"{base}/runs/{run.run_id}/metrics/loss/series", params={"points": 1}).status_code == 422


def test_run_page_charts_zoom_and_toggles(live_server: Any, long_run: tuple[Store, Run], page: tuple[Any, Problems]) -> None:
    tab, problems = page
    store, run = long_run
    base = serve(live_server, store)
    tab.goto(f"{base}/runs/{run.run_id}")
    loss = _figure(tab, "loss")
    assert tab.evaluate(_INKED, loss.element_handle()) > 100
    assert loss.get_attribute("data-downsampled") == "true"
    assert int(loss.get_attribute("data-shown") or 0) <= 1000
    assert "of 200,000 points" in loss.locator(".mchart-note").inner_text()
    assert "2 gaps" in _figure(tab, "grad_norm").locator(".mchart-note").inner_text()
    # a single point draws no chart
    tab.locator("figure.mchart[data-key='final'][data-state='single']").wait_for(state="attached")
    screenshot(tab, "run-charts")
    # drag across the first tenth of the chart: the page asks the server for that range and shows more detail
    plot = loss.locator(".u-over")
    box = plot.bounding_box()
    assert box is not None
    with tab.expect_request(lambda r: "/metrics/loss/series" in r.url and "from=" in r.url) as zoom:
        tab.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
        tab.mouse.down()
        tab.mouse.move(box["x"] + box["width"] * 0.08, box["y"] + box["height"] / 2, steps=5)
        tab.mouse.up()
    assert "to=" in zoom.value.url
    tab.locator("figure.mchart[data-key='loss'][data-range]:not([data-range=''])[data-state='drawn']").wait_for()
    low, high = (int(v) for v in (loss.get_attribute("data-range") or "").split(","))
    assert 0 <= low < high < LONG // 10
    note = loss.locator(".mchart-note").inner_text()
    assert "of 200,000" not in note  # fewer points in range: denser than the whole view
    loss.get_by_role("button", name="reset zoom").click()
    tab.locator("figure.mchart[data-key='loss'][data-range=''][data-state='drawn']").wait_for()
    # toggles: wall time re-fetches with x=time, log scale and smoothing redraw
    with tab.expect_request(lambda r: "/metrics/loss/series" in r.url and "x=time" in r.url):
        tab.locator("#chart-x").select_option("time")
    _figure(tab, "loss")
    tab.locator("#chart-log").check()
    tab.locator("#chart-smooth").fill("0.9")
    assert tab.locator("#chart-smooth-value").inner_text() == "0.9"
    assert tab.evaluate(_INKED, _figure(tab, "loss").element_handle()) > 100
    assert problems.none(), problems
