"""``loopml server --artifacts-presign``: downloads redirect to presigned S3 URLs; the client still verifies.

The app is built by ``app_from_env`` (what every ``loopml server`` worker
runs) from the variables the CLI sets, and served by a real uvicorn server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from loopml.errors import ArtifactIntegrityError
from loopml.server.main import PRESIGN_ENV, app_from_env
from loopml.store.crypto.keys import MasterKey
from loopml.store.rest import open_rest_store
from tests.s3_fixtures import s3_client


@pytest.fixture
def presigning_server(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server
) -> Iterator[tuple[str, object]]:
    monkeypatch.setenv("LOOPML_DB_URL", f"sqlite:///{tmp_path / 'loopml.db'}")
    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", s3_url)
    monkeypatch.setenv(PRESIGN_ENV, "60")
    for name in ("LOOPML_ENCRYPTION_KEY", "LOOPML_ENCRYPTION_KEY_FILE", "LOOPML_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    url, switch = live_server

    def serve() -> object:
        app = app_from_env()
        switch.app = app
        return app

    apps: list[object] = []
    try:
        yield url, lambda: apps.append(serve()) or apps[-1]
    finally:
        switch.app = None
        for app in apps:
            app.state.store.close()  # type: ignore[attr-defined]


def test_downloads_redirect_to_a_short_lived_presigned_url_and_are_verified(
    presigning_server, s3_url: str, moto_endpoint: str
) -> None:
    url, start = presigning_server
    start()
    remote = open_rest_store(url, "")
    try:
        payload = b"weights " * 200_000
        digest = remote.artifacts.put_bytes(payload)  # uploads go through the server, hashed there
        answer = httpx.get(f"{url}/api/v1/artifacts/blobs/{digest}")
        assert answer.status_code == 307
        location = answer.headers["location"]
        assert location.startswith(moto_endpoint) and "X-Amz-Signature=" in location and "X-Amz-Expires=60" in location
        assert remote.artifacts.get_bytes(digest) == payload  # followed, streamed and checked by the client

        key = f"{urlsplit(s3_url).path.lstrip('/')}/objects/{digest[:2]}/{digest[2:]}"
        s3_client(moto_endpoint).put_object(Bucket=urlsplit(s3_url).netloc, Key=key, Body=b"swapped " * 200_000)
        with pytest.raises(ArtifactIntegrityError, match="corrupted"):
            remote.artifacts.get_bytes(digest)
        missing = "0" * 64
        assert httpx.get(f"{url}/api/v1/artifacts/blobs/{missing}").status_code != 307
    finally:
        remote.close()


def test_encrypted_artifacts_are_never_presigned_the_server_decrypts_them(
    presigning_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_ENCRYPTION_KEY", MasterKey.generate().encoded())
    url, start = presigning_server
    start()
    remote = open_rest_store(url, "")
    try:
        digest = remote.artifacts.put_bytes(b"private weights")
        answer = httpx.get(f"{url}/api/v1/artifacts/blobs/{digest}")
        assert answer.status_code == 200 and answer.content == b"private weights"
    finally:
        remote.close()


def test_the_cli_flag_sets_the_presign_lifetime_for_every_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from loopml.cli.main import app

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.delenv(PRESIGN_ENV, raising=False)
    result = CliRunner().invoke(app, ["server", "--artifacts-presign", "--presign-expires", "120"])
    assert result.exit_code == 0, result.output
    assert "presigned" in result.output
    import os

    assert os.environ[PRESIGN_ENV] == "120" and seen["ssl_certfile"] is None
    CliRunner().invoke(app, ["server"])
    assert os.environ[PRESIGN_ENV] == ""
