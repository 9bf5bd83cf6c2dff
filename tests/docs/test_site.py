"""The documentation site builds with ``mkdocs build --strict`` and its pages render in headless Chromium.

The build runs the hooks in ``docs/_hooks/`` (the CLI, REST and API reference pages are generated from
the code), so a broken link, a missing reference or a docstring griffe cannot parse fails here as in CI.
Chromium is driven through its command line as in ``tests/monitoring/test_report_browser.py``: the test
skips when ``/usr/bin/chromium`` is missing unless ``LOOPML_TEST_CHROMIUM`` is set (CI sets it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.monitoring.test_report_browser import console_messages, open_page

ROOT = Path(__file__).resolve().parents[2]

# one worker builds the site once for every test in this file (pytest runs with --dist loadgroup)
pytestmark = pytest.mark.xdist_group("docs-site")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return out


def test_the_generated_reference_pages_cover_the_code(site: Path) -> None:
    import typer

    import loopml
    from loopml.cli.main import app

    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for name in typer.main.get_command(app).commands:
        assert f'id="loopml-{name}"' in cli, name  # every top-level command has its section
    assert "&lt;bool&gt;" not in cli
    rest = (site / "rest" / "index.html").read_text(encoding="utf-8")
    assert "POST /api/v1/runs/search" in rest and "POST /v1/models/{name}/predict" in rest
    assert 'id="server-schema-runout"' in rest and 'href="#server-schema-runout"' in rest
    api = "".join(path.read_text(encoding="utf-8") for path in (site / "reference").rglob("index.html"))
    for name in loopml.__all__:
        if name != "__version__":
            assert f'id="{loopml._EXPORTS[name]}.{name}"' in api, name
    # the generated pages exist only in the build, never as files in docs/
    assert not (ROOT / "docs" / "cli.md").exists() and not (ROOT / "docs" / "rest.md").exists()


def test_the_index_renders_offline(chromium: Path, site: Path, tmp_path: Path) -> None:
    done, requests = open_page(chromium, site / "index.html", tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert requests == []  # no web fonts, no CDN: the site works offline
    dom = done.stdout
    assert "<title>loopml</title>" in dom
    assert "Set-up: two commands" in dom and "runs the machine-learning lifecycle as a closed loop" in dom
    # Material's script ran and built the navigation (the tabs and the table of contents are drawn by it)
    assert 'class="md-nav__link' in dom and "Python API" in dom


def test_an_api_page_renders_its_docstrings(chromium: Path, site: Path, tmp_path: Path) -> None:
    page = site / "reference" / "tracking" / "index.html"
    done, requests = open_page(chromium, page, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert requests == []
    # the search index is fetched with XHR, which file:// pages may not do; served over HTTP it loads
    assert [line for line in console_messages(done.stderr) if "search" not in line] == []
    dom = done.stdout
    assert "<title>Tracking - loopml</title>" in dom
    assert 'id="loopml.tracking.fluent.start_run"' in dom and "start_run" in dom
    assert 'id="loopml.tracking.client.TrackingClient"' in dom
    assert '<span class="gp">&gt;&gt;&gt; </span>' in dom  # an Example: section rendered as code


def test_an_api_page_paints_a_picture(chromium: Path, site: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "api.png"
    page = site / "reference" / "tracking" / "index.html"
    done, _ = open_page(chromium, page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600")
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels[..., :3].std() > 0.05  # not a blank page: header, navigation and text were drawn
    header = pixels[:40, :, :3].reshape(-1, 3).mean(axis=0)
    assert header[2] > header[0] + 0.2  # the theme's stylesheet applied: an indigo header bar
