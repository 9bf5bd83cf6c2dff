"""The REST store's artifacts and scheme through the real app (TestClient) and MockTransport."""

from __future__ import annotations

import hashlib
import io
import os

import httpx
import pytest

from loopml.errors import ArtifactIntegrityError, InvalidValueError
from loopml.server.app import create_app
from loopml.store import open_store
from loopml.store.rest import open_rest_store
from loopml.store.rest.artifacts import RestArtifactStore


@pytest.fixture
def remote(sql_store, asgi_client):
    with asgi_client(create_app(sql_store)) as client:
        opened = open_rest_store("http://testserver", "ignored", client=client)
        yield opened
        opened.close()


class OneWay(io.RawIOBase):
    """A reader that cannot seek, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        block = self._source.read(min(len(buffer), 70_000))
        buffer[: len(block)] = block
        return len(block)


def test_files_and_streams_upload_and_download_verified(remote, sql_store, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 7)
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    assert remote.artifacts.put_file(str(source)) == (digest, len(data))
    assert sql_store.artifacts.exists(digest)
    assert remote.artifacts.write_stream(OneWay(b"streamed")) == (hashlib.sha256(b"streamed").hexdigest(), 8)
    seekable = io.BytesIO(b"skip-me|payload")
    seekable.seek(8)
    assert remote.artifacts.write_stream(seekable)[0] == hashlib.sha256(b"payload").hexdigest()
    assert remote.artifacts.put_bytes(b"small") == hashlib.sha256(b"small").hexdigest()

    assert remote.artifacts.exists(digest)
    assert not remote.artifacts.exists("f" * 64)
    assert remote.artifacts.get_bytes(digest) == data
    assert b"".join(remote.artifacts.open_stream(digest, chunk_size=100_000)) == data
    target = tmp_path / "out" / "copy.bin"
    remote.artifacts.download(digest, str(target))
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["copy.bin"]


def test_digests_are_checked_before_any_request(remote):
    for bad in ("../etc/passwd", "ABC", ""):
        with pytest.raises(InvalidValueError):
            remote.artifacts.exists(bad)
        with pytest.raises(InvalidValueError):
            remote.artifacts.get_bytes(bad)


def test_a_missing_blob_raises_when_the_stream_is_opened(remote):
    # the server's message names its folder, so the client gets the headline and an error id
    with pytest.raises(ArtifactIntegrityError, match="integrity check failed; error id") as caught:
        remote.artifacts.open_stream("0" * 64)
    assert "/" not in str(caught.value)


def test_bytes_that_do_not_match_their_digest_are_refused_and_not_kept(tmp_path):
    digest = hashlib.sha256(b"the real bytes").hexdigest()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"tampered bytes"))
    store = open_rest_store("http://h", "", client=httpx.Client(transport=transport))
    with pytest.raises(ArtifactIntegrityError, match="corrupted"):
        store.artifacts.get_bytes(digest)
    with pytest.raises(ArtifactIntegrityError):
        store.artifacts.download(digest, str(tmp_path / "x.bin"))
    assert list(tmp_path.iterdir()) == []
    assert isinstance(store.artifacts, RestArtifactStore)


def test_http_urls_open_the_rest_store(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOPML_TOKEN", raising=False)
    store = open_store("http://127.0.0.1:1", artifacts_url=str(tmp_path))
    try:
        assert type(store.tracking).__name__ == "RestTrackingStore"
        assert store.url == "http://127.0.0.1:1"
    finally:
        store.close()
    assert type(open_store("https://example.invalid", artifacts_url="").artifacts).__name__ == "RestArtifactStore"
