"""The artifact store on a real S3 API server (moto, on 127.0.0.1): every artifact path, parts, faults.

The same flows as on a local folder, through the SQL store and through the
REST server: logging files and folders, content-addressed dedup, verified
download, packaged models registered and loaded by ``models:/`` URI, and
pipeline step outputs. Large blobs go up in parts and come down in ranges
(memory bounded well under the blob's size). An endpoint that goes down
while a run logs is a clear error naming no endpoint or secret; nothing is
recorded, and the same call works once the endpoint is back.
"""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopml.errors import ArtifactIntegrityError, ArtifactStoreUnavailableError
from loopml.models import log_model
from loopml.registry.client import RegistryClient
from loopml.store import Store, open_store
from loopml.store.fs import artifacts as fs_artifacts
from loopml.store.fs.artifacts import FsArtifactStore
from loopml.tracking.client import TrackingClient
from tests.s3_fixtures import ACCESS_KEY, SECRET_KEY, TcpGate, object_keys, s3_client, set_aws_env


def _bucket(url: str) -> str:
    return urlsplit(url).netloc


@pytest.fixture(params=["sqlite", "rest"])
def s3_store(request: pytest.FixtureRequest, s3_url: str, tmp_path) -> Iterator[Store]:
    """A store whose artifacts live on S3: directly (SQLite metadata) or behind a live loopml server."""
    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=s3_url)
    if request.param == "sqlite":
        try:
            yield opened
        finally:
            opened.close()
        return
    from loopml.server.app import create_app
    from loopml.store.rest import open_rest_store

    url, switch = request.getfixturevalue("live_server")
    switch.app = create_app(opened)
    remote = open_rest_store(url, "")
    try:
        yield remote
    finally:
        remote.close()
        switch.app = None
        opened.close()


def test_runs_models_and_pipelines_keep_their_artifacts_on_s3(s3_store, s3_url, moto_endpoint, tmp_path) -> None:
    client = TrackingClient(s3_store)
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>drift report</h1>")
    (folder / "plots" / "a.csv").write_text("x\n1\n")
    (folder / "copy.html").write_text("<h1>drift report</h1>")  # same bytes: one object
    run = client.create_run("s3", capture=False)
    client.log_artifact(run.run_id, folder)
    frame_x = pd.DataFrame({"a": [0.0, 1.0, 0.2, 0.9], "b": [1.0, 0.0, 0.9, 0.1]})
    model = LogisticRegression().fit(frame_x, [0, 1, 0, 1])
    log_model(client, run.run_id, model)
    client.end_run(run.run_id)

    keys = object_keys(moto_endpoint, _bucket(s3_url))
    objects = [k for k in keys if "/objects/" in k]
    assert not [k for k in keys if "/tmp/" in k]  # every temp object was moved into place
    digest = hashlib.sha256(b"<h1>drift report</h1>").hexdigest()
    assert sum(k.endswith(digest[2:]) for k in objects) == 1  # dedup: two files, one object
    entries = {e.path: e.digest for e in client.list_artifacts(run.run_id)}
    assert entries["report/index.html"] == entries["report/copy.html"] == digest

    out = client.download_artifacts(run.run_id, "report", tmp_path / "dl")
    assert (out / "plots" / "a.csv").read_text() == "x\n1\n"
    registry = RegistryClient(client)
    version = registry.register_model(f"runs:/{run.run_id}/model", "s3-model")
    loaded = registry.load_model(f"models:/s3-model/{version.version}")
    np.testing.assert_array_equal(loaded.predict(frame_x), model.predict(frame_x))

    from tests.pipelines import library

    library.CALLS.clear()
    result = library.fan.run(n=3, client=client)
    assert result.output == {"total": 5, "count": 3}
    assert library.fan.run(n=3, client=client).steps["total"].cached  # outputs read back from S3
    assert len([k for k in object_keys(moto_endpoint, _bucket(s3_url)) if "/objects/" in k]) > len(objects)


def test_a_blob_changed_on_s3_is_refused_on_every_read_path(s3_store, s3_url, moto_endpoint, tmp_path) -> None:
    digest = s3_store.artifacts.put_bytes(b"model weights")
    key = f"artifacts/objects/{digest[:2]}/{digest[2:]}"
    s3_client(moto_endpoint).put_object(Bucket=_bucket(s3_url), Key=key, Body=b"other weights")
    with pytest.raises(ArtifactIntegrityError):
        s3_store.artifacts.get_bytes(digest)
    with pytest.raises(ArtifactIntegrityError):
        s3_store.artifacts.download(digest, str(tmp_path / "weights.bin"))
    assert not (tmp_path / "weights.bin").exists()


class _Generated:
    """A reader of ``size`` pseudo-random bytes made as they are read (never all in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.hasher = hashlib.sha256()
        self._rng = np.random.default_rng(7)

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        block = self._rng.bytes(n)
        self.left -= n
        self.hasher.update(block)
        return block


def test_large_blobs_go_up_in_parts_and_stream_down_in_bounded_memory(s3_url, monkeypatch) -> None:
    monkeypatch.setattr(fs_artifacts, "PART_BYTES", 5 << 20)  # S3's smallest part: the test stays small
    size = 48 << 20
    blobs = FsArtifactStore(s3_url)
    source = _Generated(size)
    tracemalloc.start()
    try:
        digest, stored = blobs.write_stream(source)  # type: ignore[arg-type]
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        hasher, total = hashlib.sha256(), 0
        for block in blobs.open_stream(digest):
            hasher.update(block)
            total += len(block)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (digest, stored) == (source.hasher.hexdigest(), size)
    assert (hasher.hexdigest(), total) == (digest, size)
    # a part (and a range) at a time, never the whole blob: S3 received it in parts (about 16 MiB seen here)
    assert upload_peak < size // 2, upload_peak
    assert download_peak < size // 2, download_peak


def test_an_endpoint_down_while_logging_is_a_clear_error_and_a_retry_works(
    moto_endpoint, s3_url, monkeypatch, tmp_path
) -> None:
    gate = TcpGate(int(urlsplit(moto_endpoint).port or 0))
    gate.open()
    set_aws_env(monkeypatch, f"http://127.0.0.1:{gate.port}")
    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=s3_url)
    client = TrackingClient(store)
    try:
        run = client.create_run("faults", capture=False)
        (tmp_path / "weights.bin").write_bytes(os.urandom(1 << 16))
        gate.close()
        with pytest.raises(ArtifactStoreUnavailableError) as caught:
            client.log_artifact(run.run_id, tmp_path / "weights.bin")
        message = str(caught.value)
        assert s3_url in message and "Retry" in message
        for secret in (str(gate.port), ACCESS_KEY, SECRET_KEY, "127.0.0.1"):
            assert secret not in message
        assert client.list_artifacts(run.run_id) == []  # nothing half-registered
        assert not [k for k in object_keys(moto_endpoint, _bucket(s3_url)) if "/objects/" in k]

        gate.open()
        [entry] = client.log_artifact(run.run_id, tmp_path / "weights.bin")
        assert client.read_artifact(run.run_id, "weights.bin") == (tmp_path / "weights.bin").read_bytes()
        assert [e.path for e in client.list_artifacts(run.run_id)] == [entry.path]
    finally:
        gate.close()
        client.close()


def test_over_rest_an_endpoint_down_answers_503_and_the_client_raises_the_same_error(
    moto_endpoint, s3_url, monkeypatch, tmp_path, live_server
) -> None:
    from loopml.server.app import create_app
    from loopml.store.rest import open_rest_store

    gate = TcpGate(int(urlsplit(moto_endpoint).port or 0))
    gate.open()
    set_aws_env(monkeypatch, f"http://127.0.0.1:{gate.port}")
    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=s3_url)
    url, switch = live_server
    switch.app = create_app(opened)
    remote = open_rest_store(url, "")
    try:
        gate.close()
        with pytest.raises(ArtifactStoreUnavailableError) as caught:
            remote.artifacts.put_bytes(b"payload")
        assert SECRET_KEY not in str(caught.value) and str(gate.port) not in str(caught.value)
        gate.open()
        digest = remote.artifacts.put_bytes(b"payload")
        assert remote.artifacts.get_bytes(digest) == b"payload"
    finally:
        gate.close()
        remote.close()
        switch.app = None
        opened.close()


def test_a_missing_bucket_is_the_same_clear_error_and_opening_the_store_sends_nothing(s3_url) -> None:
    absent = FsArtifactStore("s3://loopml-no-such-bucket-4242/artifacts")  # opening does not fail
    with pytest.raises(ArtifactStoreUnavailableError, match="Nothing was stored") as caught:
        absent.write_stream(io.BytesIO(b"payload"))
    assert "s3://loopml-no-such-bucket-4242/artifacts" in str(caught.value) and SECRET_KEY not in str(caught.value)
