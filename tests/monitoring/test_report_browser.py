"""The HTML report opens in headless Chromium: it renders, logs nothing to the console and fetches nothing.

Chromium is driven through its command line (``--dump-dom``, ``--screenshot``), so no browser-automation
package is needed. The test skips when ``/usr/bin/chromium`` is missing, unless ``LOOPML_TEST_CHROMIUM``
is set (CI sets it after ``apt-get install -y chromium``), in which case a missing browser is a failure.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.monitoring.drift import drift
from loopml.monitoring.performance import performance
from loopml.monitoring.quality import quality
from loopml.monitoring.report import render_report

FLAGS = [
    "--headless",
    "--disable-gpu",
    "--no-sandbox",
    "--enable-logging=stderr",
    "--v=0",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # a page that tries the network gets an error, never an answer
]


def open_page(
    chromium: Path, page: Path, work: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run Chromium on ``page``; its result and the http(s) URLs the page itself asked for (from the net log)."""
    net_log = work / "net-log.json"
    done = subprocess.run(
        [
            str(chromium),
            *FLAGS,
            f"--user-data-dir={work / 'profile'}",
            f"--log-net-log={net_log}",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, page_requests(net_log)


def page_requests(net_log: Path) -> list[str]:
    """URLs requested on behalf of a file:// page (Chromium's own background requests have no such origin)."""
    text = net_log.read_text(encoding="utf-8").rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short at exit lacks its closing brackets
        log = json.loads(text.rstrip(",") + "]}")
    return sorted(
        {
            event["params"]["url"]
            for event in log.get("events", [])
            if "url" in event.get("params", {})
            and str(event["params"].get("network_isolation_key", "")).startswith("file://")
        }
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    n = 2000
    reference = pd.DataFrame({"age": rng.normal(40, 10, n), "plan": rng.choice(["basic", "pro"], n)})
    current = reference.assign(age=reference["age"] + 5)
    predictions = pd.DataFrame(
        {
            "time": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 4 * 3600, n), unit="s"),
            "label": rng.integers(0, 2, n),
            "prediction": rng.integers(0, 2, n),
        }
    )
    return render_report(
        tmp_path_factory.mktemp("browser") / "report.html",
        drift=drift(reference, current),
        quality=quality(reference, current),
        performance=performance(predictions, bucket="1h"),
        title="Browser check",
    )


def test_report_renders_in_chromium_without_console_errors_or_requests(chromium: Path, report: Path, tmp_path: Path):
    done, requests = open_page(chromium, report, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_messages(done.stderr) == []
    assert requests == []
    dom = done.stdout
    assert "<title>Browser check</title>" in dom
    assert dom.count("<svg") == 3 and "<h2>Data quality</h2>" in dom and "wasserstein" in dom


def test_report_paints_a_picture(chromium: Path, report: Path, tmp_path: Path):
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    done, _ = open_page(chromium, report, tmp_path, f"--screenshot={shot}", "--window-size=1280,2400")
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = imread(shot)
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels[..., :3].std() > 0.05  # not a blank page: text, tables and plots were drawn


def test_the_checks_catch_a_broken_page(chromium: Path, tmp_path: Path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.com/x.css"></head>'
        "<body><script>throw new Error('boom')</script></body></html>",
        encoding="utf-8",
    )
    done, requests = open_page(chromium, page, tmp_path, "--dump-dom")
    assert any("Uncaught Error: boom" in line for line in console_messages(done.stderr))
    assert requests == ["https://example.com/x.css"]
