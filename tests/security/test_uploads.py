"""Artifact uploads through the server: their own size limit, streamed, restartable, and nothing left behind.

The limit tests run a live uvicorn server (``live_server``) over an app with
small limits; a drop mid-upload goes through a TCP proxy that cuts the first
connection after a set number of bytes, as a broken network would.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.errors import InvalidValueError, PayloadTooLargeError, StoreError
from loopml.server.app import create_app
from loopml.store import Store, open_store
from loopml.store.artifacts import ArtifactStore
from loopml.store.fs.artifacts import FsArtifactStore
from loopml.store.rest import open_rest_store

API = "/api/v1"
MiB = 1024 * 1024


# -- helpers ---------------------------------------------------------------------------------------------------
def tmp_files(artifacts: Path) -> list[str]:
    return sorted(os.listdir(artifacts / "tmp"))


class WatchedArtifacts:
    """The server's artifact store, with an event per ``write_stream`` that ended in an error.

    The server notices a client's disconnect in its own time; tests wait for
    this event, not for a delay, before they look for leftover temp files.
    """

    def __init__(self, inner: ArtifactStore) -> None:
        self._inner = inner
        self.failed = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write_stream(self, chunks: Any) -> tuple[str, int]:
        try:
            return self._inner.write_stream(chunks)
        except BaseException:
            self.failed.set()
            raise


def watch(app: Any) -> WatchedArtifacts:
    """Put a WatchedArtifacts between ``app`` (from ``create_app``) and its store's artifacts."""
    watched = WatchedArtifacts(app.state.store.artifacts)
    app.state.store = replace(app.state.store, artifacts=watched)
    return watched


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'server.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        yield opened
    finally:
        opened.close()


class Served:
    """The live server, serving ``served``; ``watched`` sees its uploads."""

    def __init__(self, url: str, switch: Any, store: Store) -> None:
        self.url, self._switch, self._store = url, switch, store
        self.watched: WatchedArtifacts | None = None

    def __call__(self, **options: Any) -> str:
        """Serve with these ``create_app`` options; return the URL."""
        self._switch.app = create_app(self._store, **options)
        self.watched = watch(self._switch.app)
        return self.url


@pytest.fixture
def serve(live_server: tuple[str, Any], served: Store) -> Iterator[Served]:
    """``serve(**create_app_options)`` -> the live server's URL, now serving ``served`` with those options."""
    url, switch = live_server
    start = Served(url, switch, served)

    yield start
    switch.app = None


@pytest.fixture
def remote() -> Iterator[Callable[[str], Store]]:
    opened: list[Store] = []

    def connect(url: str) -> Store:
        opened.append(open_rest_store(url, ""))
        return opened[-1]

    yield connect
    for store in opened:
        store.close()


class DroppingProxy:
    """A TCP proxy to ``port`` that cuts each of its first ``drops`` connections after ``after_bytes`` sent upstream."""

    def __init__(self, port: int, *, after_bytes: int, drops: int = 1) -> None:
        self._target = port
        self._after = after_bytes
        self._drops = drops
        self.connections = 0
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [downstream, upstream]
            limit = self._after if self.connections <= self._drops else None
            threading.Thread(target=self._pipe, args=(downstream, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, downstream, None), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, limit: int | None) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    self.cut.set()
                    break
                target.sendall(data)
                sent += len(data)
        for sock in (source, target):  # shutdown wakes the other pipe's recv; close alone does not
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def proxy(serve: Served) -> Iterator[Callable[..., DroppingProxy]]:
    made: list[DroppingProxy] = []

    def start(**options: Any) -> DroppingProxy:
        port = int(serve().rsplit(":", 1)[1])
        made.append(DroppingProxy(port, **options))
        return made[-1]

    yield start
    for each in made:
        each.close()


# -- finding 6: the upload has its own limit, streamed ----------------------------------------------------------
def test_an_upload_larger_than_the_json_limit_streams_through(serve, remote, tmp_path):
    url = serve(max_body_bytes=1 * MiB)
    store = remote(url)
    data = os.urandom(3 * MiB)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    assert store.artifacts.put_file(str(source)) == (hashlib.sha256(data).hexdigest(), len(data))
    assert store.artifacts.write_stream(io.BytesIO(data[::-1]))[1] == len(data)
    store.artifacts.download(hashlib.sha256(data).hexdigest(), str(tmp_path / "copy.bin"))
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert tmp_files(tmp_path / "artifacts") == []


def test_json_bodies_keep_their_small_limit_and_answer_payload_too_large(serve):
    url = serve(max_body_bytes=1 * MiB)
    body = b'{"name": "' + b"x" * (1 * MiB) + b'"}'
    with httpx.Client(base_url=url + API) as http:
        declared = http.post("/experiments", content=body, headers={"content-type": "application/json"})
        chunked = http.post("/experiments", content=iter([body[:1000], body[1000:]]),
                            headers={"content-type": "application/json"})  # fmt: skip
    assert "content-length" not in chunked.request.headers
    for answer in (declared, chunked):
        assert answer.status_code == 413
        assert answer.json()["error"]["type"] == "PayloadTooLargeError"
        assert "1,048,576 bytes" in answer.json()["error"]["message"]


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(serve, remote, served, tmp_path):
    url = serve(max_upload_bytes=256 * 1024)
    store = remote(url)
    data = os.urandom(2 * MiB)
    source = tmp_path / "forest.bin"
    source.write_bytes(data)
    with pytest.raises(PayloadTooLargeError, match="--max-upload-bytes"):
        store.artifacts.put_file(str(source))  # chunked: refused as the body grows past the limit
    with pytest.raises(PayloadTooLargeError, match="262,144 bytes"):
        store.artifacts.put_bytes(data[: 256 * 1024 + 1])  # declared Content-Length: refused before reading
    assert store.artifacts.put_bytes(data[: 256 * 1024]) == hashlib.sha256(data[: 256 * 1024]).hexdigest()
    assert not served.artifacts.exists(hashlib.sha256(data).hexdigest())
    assert serve.watched.failed.is_set()  # the refusal reached write_stream mid-way, and it cleaned up
    assert tmp_files(tmp_path / "artifacts") == []
    with httpx.Client(base_url=url + API) as http:
        answer = http.put("/artifacts/blobs", content=data, headers={"content-type": "application/octet-stream"})
    assert answer.status_code == 413
    assert set(answer.json()) == {"error"} and answer.json()["error"]["type"] == "PayloadTooLargeError"


def test_a_client_maps_a_bare_413_to_payload_too_large():
    from loopml.store.rest.http import HttpSession

    transport = httpx.MockTransport(lambda request: httpx.Response(413, text="<html>nginx</html>"))
    session = HttpSession("http://proxy", client=httpx.Client(transport=transport))
    with pytest.raises(PayloadTooLargeError):
        session.send("PUT", "/artifacts/blobs", content=b"x")


# -- restartable: a dropped upload starts again from the first byte ---------------------------------------------
def test_a_file_upload_cut_off_mid_way_is_restarted(proxy, serve, remote, served, tmp_path):
    cutter = proxy(after_bytes=1 * MiB)
    data = os.urandom(3 * MiB)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    digest, size = remote(cutter.url).artifacts.put_file(str(source))
    assert cutter.cut.is_set() and cutter.connections == 2  # the first try was cut, the second went through
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert served.artifacts.get_bytes(digest) == data
    assert serve.watched.failed.wait(timeout=30)  # the server saw the first try break off
    assert tmp_files(tmp_path / "artifacts") == []  # and removed its partial file


def test_a_seekable_reader_is_rewound_for_the_retry(proxy, remote, served):
    cutter = proxy(after_bytes=512 * 1024)
    data = os.urandom(2 * MiB)
    reader = io.BytesIO(b"header" + data)
    reader.seek(6)  # the upload starts where the reader stands, on every try
    digest, size = remote(cutter.url).artifacts.write_stream(reader)
    assert cutter.connections == 2
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert served.artifacts.get_bytes(digest) == data


def test_a_spent_stream_is_not_retried(proxy, serve, remote, tmp_path):
    cutter = proxy(after_bytes=512 * 1024)

    class Pipe(io.RawIOBase):  # a reader that cannot rewind, like a socket or a pipe
        def __init__(self) -> None:
            self._left = 2 * MiB

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = min(len(buffer), self._left)
            buffer[:n] = b"p" * n
            self._left -= n
            return n

    with pytest.raises(StoreError, match="Cannot reach"):
        remote(cutter.url).artifacts.write_stream(Pipe())
    assert cutter.connections == 1
    assert serve.watched.failed.wait(timeout=30)
    assert tmp_files(tmp_path / "artifacts") == []


def test_a_stream_that_fails_mid_way_leaves_no_temp_file(store, backend, tmp_path, request):
    server_side = None
    if backend == "rest":  # the server's temp file goes when it sees the client disconnect
        server_side = watch(request.getfixturevalue("live_server")[1].app)

    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.reads = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            self.reads += 1
            if self.reads > 3:
                raise OSError("disk went away")
            buffer[: len(buffer)] = b"f" * len(buffer)
            return len(buffer)

    with pytest.raises(OSError, match="disk went away"):
        store.artifacts.write_stream(Failing())
    if server_side is not None:
        assert server_side.failed.wait(timeout=30)
    assert tmp_files(tmp_path / "artifacts") == []


# -- the upload limit reaches every worker ---------------------------------------------------------------------
def test_the_upload_limit_comes_from_the_environment(tmp_path, monkeypatch, live_server):
    from loopml.server.main import MAX_UPLOAD_ENV, app_from_env, max_upload_bytes_from_env

    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(MAX_UPLOAD_ENV, "1000")
    url, switch = live_server
    switch.app = app = app_from_env()  # what every uvicorn worker builds
    try:
        with httpx.Client(base_url=url + API) as http:
            assert http.put("/artifacts/blobs", content=b"x" * 1000).status_code == 200
            refused = http.put("/artifacts/blobs", content=b"x" * 1001)
    finally:
        switch.app = None
        app.state.store.close()
    assert refused.status_code == 413 and refused.json()["error"]["type"] == "PayloadTooLargeError"
    for bad in ("5G", "0", "-1"):
        monkeypatch.setenv(MAX_UPLOAD_ENV, bad)
        with pytest.raises(InvalidValueError, match=MAX_UPLOAD_ENV):
            max_upload_bytes_from_env()
    monkeypatch.delenv(MAX_UPLOAD_ENV)
    assert max_upload_bytes_from_env() == 5 * 1024**3


def test_the_server_command_rejects_a_bad_upload_limit(monkeypatch):
    from typer.testing import CliRunner

    from loopml.cli.main import app

    monkeypatch.setenv("LOOPML_SERVER_MAX_UPLOAD_BYTES", "5G")
    result = CliRunner().invoke(app, ["server"])
    assert result.exit_code != 0 and "LOOPML_SERVER_MAX_UPLOAD_BYTES" in result.output
    monkeypatch.delenv("LOOPML_SERVER_MAX_UPLOAD_BYTES")
    result = CliRunner().invoke(app, ["server", "--max-upload-bytes", "0"])
    assert result.exit_code == 2


# -- finding 8: partial files of a killed writer are removed on start-up ----------------------------------------
def test_stale_partial_files_are_removed_when_the_store_opens(tmp_path):
    root = tmp_path / "artifacts"
    FsArtifactStore(str(root))
    stale, fresh, recent = root / "tmp" / "killed", root / "tmp" / "writing", root / "tmp" / "ten-minutes"
    for path in (stale, fresh, recent):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))
    ten_minutes_ago = time.time() - 600
    os.utime(recent, (ten_minutes_ago, ten_minutes_ago))
    FsArtifactStore(str(root))  # the default grace period is an hour: a writer in another process is left alone
    assert tmp_files(root) == ["ten-minutes", "writing"]
    FsArtifactStore(str(root), stale_tmp_after_s=300)
    assert tmp_files(root) == ["writing"]


def test_stale_partial_files_are_removed_on_fsspec_stores_too():
    import uuid

    import fsspec

    url = f"memory://loopml-test-{uuid.uuid4().hex}"
    FsArtifactStore(url)
    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe({f"{root}/tmp/killed": b"partial", f"{root}/tmp/writing": b"partial"})
    fs.store[fs._strip_protocol(f"{root}/tmp/killed")].modified = datetime.now(UTC) - timedelta(hours=2)
    FsArtifactStore(url)
    assert [name.rsplit("/", 1)[1] for name in fs.ls(f"{root}/tmp", detail=False)] == ["writing"]
