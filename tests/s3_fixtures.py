"""A real S3 API server for tests: moto's standalone server on 127.0.0.1, in a venv of its own.

``moto_endpoint`` (session) creates and caches the venv under
``~/.cache/loopml-test-venvs/moto`` (``pip install "moto[server]"``, offline
from the local index), starts ``moto_server`` on a free port and yields its
URL. ``s3_url`` (per test) makes a fresh bucket, points the standard AWS
variables (``AWS_ENDPOINT_URL``, keys, region) at the server and yields
``s3://<bucket>/artifacts``. ``TcpGate`` is a TCP forwarder a test can close
and reopen, to take the endpoint down and bring it back with its data intact.

Import the fixtures into a conftest (``from tests.s3_fixtures import moto_endpoint, s3_url``).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

VENV = Path.home() / ".cache" / "loopml-test-venvs" / "moto"
ACCESS_KEY = "loopml-test-key-id"
SECRET_KEY = "loopml-test-secret-do-not-print"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_server_binary() -> Path:
    binary = VENV / "bin" / "moto_server"
    if binary.exists():
        return binary
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)  # a system python, not our .venv
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "moto[server]"], check=True)
    return binary


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("moto_server exited at start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    pytest.fail("moto_server did not start listening")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server running for this test session."""
    binary = _moto_server_binary()
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def set_aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point the standard AWS variables at ``endpoint``, with test credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def s3_client(endpoint: str) -> Any:
    """A botocore S3 client on ``endpoint``: the test's own view of the bucket."""
    from botocore.session import get_session

    return get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def make_bucket(endpoint: str) -> str:
    bucket = f"loopml-{uuid.uuid4().hex[:16]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<fresh bucket>/artifacts`` with the AWS environment pointed at the moto server."""
    set_aws_env(monkeypatch, moto_endpoint)
    return f"s3://{make_bucket(moto_endpoint)}/artifacts"


def object_keys(endpoint: str, bucket: str) -> list[str]:
    """Every key in ``bucket``."""
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


class TcpGate:
    """Forwards 127.0.0.1:``port`` to ``target``; ``close()`` refuses connections, ``open()`` accepts again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every open connection: the endpoint is down."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


__all__ = ["TcpGate", "make_bucket", "moto_endpoint", "object_keys", "s3_client", "s3_url", "set_aws_env"]
