"""Findings 2 and 7: artifact paths cannot leave the run, downloads cannot leave ``dest``, links are not followed.

Before the fix the path check ran only in the Python client: the server stored
``../../../../outside/x.txt`` as given, and a download joined ``dest / path``
unchecked, so a viewer's download wrote outside ``dest``.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from loopml.entities.artifacts import ArtifactEntry
from loopml.errors import ArtifactPathError, SymlinkSkippedWarning
from loopml.paths import check_artifact_path, join_inside
from loopml.tracking.client import TrackingClient

HOSTILE = [
    "../../../../outside/x.txt",
    "/abs/x.txt",
    "a/../../x.txt",
    "..",
    "a\\..\\..\\x.txt",
    "C:/x.txt",
    "a\x00b",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x7fb",
    "a\u2028b",
    "a//b",
    "./a",
    "a/./b",
    "a/",
    "",
    "x" * 1025,
]


@pytest.mark.parametrize("bad", HOSTILE, ids=repr)
def test_the_one_check_refuses_every_hostile_form(bad):
    with pytest.raises(ArtifactPathError):
        check_artifact_path(bad)


def test_the_one_check_keeps_ordinary_paths_as_they_are():
    for good in ["model/loopml-model.json", "plots/roc curve (v2).png", "données/été.csv", "a.b/c-d_e", "x" * 1024]:
        assert check_artifact_path(good) == good
    assert check_artifact_path("", folder=True) == ""
    assert check_artifact_path("plots/", folder=True) == "plots"


@pytest.mark.parametrize("bad", ["../../../../outside/x.txt", "/abs/x.txt", "a/../../x.txt", "a\\b", "a\x00b", "a//b"])
def test_every_backend_refuses_hostile_entry_paths(store, bad):
    client = TrackingClient(store)
    run_id = client.create_run("paths", capture=False).run_id
    digest = store.artifacts.put_bytes(b"x")
    with pytest.raises(ArtifactPathError):
        store.tracking.log_artifact_entries(run_id, [ArtifactEntry("ok.txt", digest, 1), ArtifactEntry(bad, digest, 1)])
    assert store.tracking.list_artifacts(run_id) == []  # the good entry of the batch was not written either
    with pytest.raises(ArtifactPathError):
        store.tracking.get_artifact_entry(run_id, bad)


def test_the_server_refuses_hostile_paths_sent_raw(auth_server):
    url, store, tokens = auth_server
    headers = {"Authorization": f"Bearer {tokens['editor']}"}
    run_id = TrackingClient(store).create_run("paths", capture=False).run_id
    digest = store.artifacts.put_bytes(b"x")
    for bad in ["../../../../outside/x.txt", "/abs/x.txt", "a\\b", "a\u0000b"]:
        answer = httpx.post(
            f"{url}/api/v1/runs/{run_id}/artifacts", json={"entries": [{"path": bad, "digest": digest, "size": 1}]},
            headers=headers,
        )  # fmt: skip
        assert answer.status_code == 422, bad
        assert answer.json()["error"]["type"] == "ArtifactPathError"
    assert store.tracking.list_artifacts(run_id) == []


def _plant(db_url: str, run_id: str, path: str, digest: str) -> None:
    """Write an index row past the store's check, as an old database or a hostile server could hold."""
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO artifacts (run_id, path, digest, size) VALUES (:r, :p, :d, 1)"),
            {"r": run_id, "p": path, "d": digest},
        )
    engine.dispose()


@pytest.mark.parametrize("planted", ["../../outside/x.txt", "a/../../../outside/x.txt", "/tmp/abs-x.txt"])
def test_a_download_never_writes_outside_dest(store, db_url, tmp_path, planted):
    client = TrackingClient(store)
    run_id = client.create_run("paths", capture=False).run_id
    client.log_artifact_bytes(run_id, {"fine/a.txt": b"a"})
    _plant(db_url, run_id, planted, store.artifacts.put_bytes(b"x"))
    dest = tmp_path / "deep" / "dest"
    dest.mkdir(parents=True)
    before = {p for p in tmp_path.rglob("*")}

    with pytest.raises(ArtifactPathError):
        client.download_artifacts(run_id, "", dest)

    written = {p for p in tmp_path.rglob("*")} - before
    assert all(p.resolve().is_relative_to(dest.resolve()) for p in written), written
    if planted.startswith("/"):
        assert not Path(planted).exists()


def test_a_link_inside_dest_cannot_redirect_a_download(store, tmp_path):
    client = TrackingClient(store)
    run_id = client.create_run("paths", capture=False).run_id
    client.log_artifact_bytes(run_id, {"report/x.txt": b"secret"})
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "report").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ArtifactPathError):
        client.download_artifacts(run_id, "report", dest)
    assert list(outside.iterdir()) == []


def test_join_inside_accepts_what_stays_inside(tmp_path):
    assert join_inside(tmp_path, "a/b.txt") == (tmp_path / "a" / "b.txt").resolve()
    assert join_inside(tmp_path, "") == tmp_path.resolve()


def test_log_artifact_skips_symlinks_and_says_so(store, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE")
    folder = tmp_path / "outputs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    os.symlink(secret / "id_rsa", folder / "key.txt")
    os.symlink(secret, folder / "sub" / "linked-dir", target_is_directory=True)
    client = TrackingClient(store)
    run_id = client.create_run("paths", capture=False).run_id

    with pytest.warns(SymlinkSkippedWarning, match=r"2 symbolic link\(s\).*key\.txt.*sub/linked-dir"):
        entries = client.log_artifact(run_id, folder)

    assert [e.path for e in entries] == ["outputs/a.txt", "outputs/sub/b.txt"]
    assert [e.path for e in client.list_artifacts(run_id)] == ["outputs/a.txt", "outputs/sub/b.txt"]
