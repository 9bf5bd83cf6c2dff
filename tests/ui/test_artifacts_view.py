"""The artifact browser of the run page: the folder tree, previews that read only what they show, raw images."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest

from loopml.store import Store, open_store
from loopml.tracking.client import TrackingClient
from tests.ui.conftest import Problems, screenshot, serve

SVG_WITH_SCRIPT = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
    '<script>alert("svg-xss"); console.log("svg-ran")</script>'
    '<rect width="120" height="40" fill="#0969da"/></svg>'
)


@dataclass
class ArtifactRun:
    store: Store
    run_id: str


@pytest.fixture
def artifact_run(tmp_path: Path) -> Iterator[ArtifactRun]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = open_store(f"sqlite:///{tmp_path / 'ui.db'}", artifacts_url=str(tmp_path / "artifacts"))
    client = TrackingClient(store)
    client.create_experiment("artifacts")
    run = client.create_run("artifacts", name="with-artifacts", capture=False)
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([0, 1, 2], [0, 1, 4])
    client.log_figure(run.run_id, figure, "plots/curve.png")
    plt.close(figure)
    line = "".join(f"line {i:06d} <b>not bold</b>\n" for i in range(40_000))  # 1 MiB
    client.log_text(run.run_id, line[: 1 << 20], "logs/train.log")
    client.log_dict(run.run_id, {"model": "rf", "depth": 4, "nested": {"a": [1, 2]}}, "config/params.json")
    client.log_text(run.run_id, "model: rf\ndepth: 4\n", "config/params.yaml")
    client.log_text(run.run_id, "# Report\n\n<script>alert(1)</script> is text here\n", "README.md")
    frame = pd.DataFrame({"id": range(10_000), "score": [i / 10_000 for i in range(10_000)]})
    client.log_text(run.run_id, frame.to_csv(index=False), "data/scores.csv")
    parquet = tmp_path / "scores.parquet"
    frame.to_parquet(parquet, row_group_size=1000)
    client.log_artifact(run.run_id, parquet, "data/scores.parquet")
    client.log_text(run.run_id, SVG_WITH_SCRIPT, "plots/hostile.svg")
    client.log_artifact_bytes(run.run_id, {"model/weights.bin": bytes(range(256)) * 8})
    client.end_run(run.run_id)
    try:
        yield ArtifactRun(store=store, run_id=run.run_id)
    finally:
        store.close()


def _preview(base: str, run_id: str, path: str) -> str:
    return f"{base}/runs/{run_id}/artifacts/preview?path={quote(path, safe='')}"


def test_tree_and_previews(live_server: Any, artifact_run: ArtifactRun, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, artifact_run.store)
    run_id = artifact_run.run_id
    tab.goto(f"{base}/runs/{run_id}")
    tree = tab.locator("#artifacts")
    for folder in ("config", "data", "logs", "model", "plots"):
        assert tree.locator(f"summary[data-folder='{folder}']").count() == 1
    # folders collapse and open again by clicking
    weights = tree.locator("li[data-path='model/weights.bin']")
    assert weights.is_visible()
    tree.locator("summary[data-folder='model']").click()
    assert not weights.is_visible()
    tree.locator("summary[data-folder='model']").click()
    assert weights.is_visible()
    screenshot(tab, "artifacts")

    # the PNG: an <img> of the image route, which really decodes
    tree.get_by_role("link", name="curve.png").click()
    tab.wait_for_url(lambda url: "/artifacts/preview?path=plots" in url and url.endswith("curve.png"))
    image = tab.locator("img.artifact-image")
    image.wait_for()
    tab.wait_for_function("document.querySelector('img.artifact-image').complete")
    assert image.evaluate("img => img.naturalWidth") > 100

    # 1 MiB of text: the first 64 KiB, said so, unverified, escaped
    tab.goto(_preview(base, run_id, "logs/train.log"))
    meta = tab.locator("p.integrity").inner_text()
    assert "first 64 KiB of 1,048,576 bytes" in meta and "not checked" in meta
    text = tab.locator("pre.artifact-text").inner_text()
    assert text.startswith("line 000000 <b>not bold</b>") and 60_000 < len(text.encode()) <= 64 * 1024
    assert tab.locator("pre.artifact-text b").count() == 0

    # JSON pretty-printed (it fits), verified; YAML and Markdown as text
    tab.goto(_preview(base, run_id, "config/params.json"))
    assert json.loads(tab.locator("pre.artifact-text").inner_text())["nested"] == {"a": [1, 2]}
    assert '\n  "model": "rf"' in tab.locator("pre.artifact-text").inner_text()
    assert "sha256 verified" in tab.locator("p.integrity").inner_text()
    tab.goto(_preview(base, run_id, "config/params.yaml"))
    assert tab.locator("pre.artifact-text").inner_text() == "model: rf\ndepth: 4\n"
    tab.goto(_preview(base, run_id, "README.md"))
    assert "<script>alert(1)</script>" in tab.locator("pre.artifact-text").inner_text()

    # CSV of 10,000 rows: the first 50, from the start of the stream
    tab.goto(_preview(base, run_id, "data/scores.csv"))
    assert tab.locator("table.artifact-table thead th").all_inner_texts() == ["id", "score"]
    assert tab.locator("table.artifact-table tbody tr").count() == 50
    assert tab.locator("table.artifact-table tbody tr").nth(49).inner_text().split() == ["49", "0.0049"]
    assert "The first 50 rows" in tab.locator("p.integrity").inner_text()

    # parquet: the first 50 rows of the first of 10 row groups, through the footer
    tab.goto(_preview(base, run_id, "data/scores.parquet"))
    assert tab.locator("table.artifact-table tbody tr").count() == 50
    meta = tab.locator("p.integrity").inner_text()
    assert "of 10,000 rows" in meta and "10 row groups" in meta and "not checked" in meta

    # anything else: size, digest and a download
    tab.goto(_preview(base, run_id, "model/weights.bin"))
    assert "No preview" in tab.locator("#preview").inner_text()
    with tab.expect_download() as download:
        tab.locator("#preview").get_by_role("link", name="download").click()
    assert Path(download.value.path()).read_bytes() == bytes(range(256)) * 8
    assert problems.none(), problems


def test_svg_is_an_image_and_runs_nothing(
    live_server: Any, artifact_run: ArtifactRun, page: tuple[Any, Problems]
) -> None:
    tab, problems = page
    base = serve(live_server, artifact_run.store)
    dialogs: list[str] = []
    logs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("console", lambda msg: logs.append(msg.text))
    tab.goto(_preview(base, artifact_run.run_id, "plots/hostile.svg"))
    tab.wait_for_function("document.querySelector('img.artifact-image').complete")
    assert tab.locator("img.artifact-image").evaluate("img => img.naturalWidth") == 120
    assert tab.locator("svg").count() == 0  # never inline in the page
    answer = tab.request.get(f"{base}/runs/{artifact_run.run_id}/artifacts/image?path=plots%2Fhostile.svg")
    assert answer.status == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert dialogs == [] and logs == [], (dialogs, logs)
    assert problems.none(), problems


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/etc/passwd", "plots/../../x", "a//b", "plots\\curve.png", "C:/x", "a\x00b", "", "nope.txt"],
)
def test_hostile_paths_are_refused(
    live_server: Any, artifact_run: ArtifactRun, page: tuple[Any, Problems], path: str
) -> None:
    tab, _ = page
    base = serve(live_server, artifact_run.store)
    for route in ("preview", "image", "download"):
        answer = tab.request.get(f"{base}/runs/{artifact_run.run_id}/artifacts/{route}?path={quote(path, safe='')}")
        assert 400 <= answer.status < 500, (route, path, answer.status)
    answer = tab.request.get(f"{base}/runs/{artifact_run.run_id}/artifacts/image?path=config%2Fparams.json")
    assert answer.status == 404  # the image route serves images only


def test_corrupted_blob_is_not_shown(live_server: Any, artifact_run: ArtifactRun, page: tuple[Any, Problems]) -> None:
    tab, _ = page
    base = serve(live_server, artifact_run.store)
    entry = artifact_run.store.tracking.get_artifact_entry(artifact_run.run_id, "config/params.yaml")
    root = Path(artifact_run.store.artifacts.url)  # type: ignore[attr-defined]
    (root / "objects" / entry.digest[:2] / entry.digest[2:]).write_bytes(b"model: evil\ndepth: 4\n")
    tab.goto(_preview(base, artifact_run.run_id, "config/params.yaml"))
    assert "corrupted" in tab.locator("#preview").inner_text()
    assert tab.locator("pre.artifact-text").count() == 0


def test_parquet_from_a_store_that_only_streams(
    live_server: Any, artifact_run: ArtifactRun, page: tuple[Any, Problems], monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.ui import artifacts

    tab, problems = page
    base = serve(live_server, artifact_run.store)
    monkeypatch.setattr(artifact_run.store.artifacts, "open_seekable", lambda digest: None)
    tab.goto(_preview(base, artifact_run.run_id, "data/scores.parquet"))  # buffered whole, so verified
    assert tab.locator("table.artifact-table tbody tr").count() == 50
    assert "sha256 verified" in tab.locator("p.integrity").inner_text()
    monkeypatch.setattr(artifacts, "PARQUET_BUFFER_BYTES", 1024)
    tab.goto(_preview(base, artifact_run.run_id, "data/scores.parquet"))
    assert "Too big to preview" in tab.locator("#too-big").inner_text()
    assert tab.locator("table.artifact-table").count() == 0
    assert problems.none(), problems
