"""Encryption at rest: no plaintext in the stored bytes, dedup kept, wrong keys and tampering refused, rotation.

Every check reads the bytes the store actually wrote (files on disk, objects
on a real S3 API server) rather than trusting the store's own reader.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loopml.errors import ArtifactDecryptionError, ArtifactIntegrityError, InvalidValueError
from loopml.models import load_model_from_run, log_model
from loopml.store import open_store
from loopml.store.crypto.envelope import HEADER_BYTES, SEGMENT_BYTES, TAG_BYTES, sealed_size
from loopml.store.crypto.keys import Keyring, MasterKey, keyring_from_env, parse_key
from loopml.store.fs.artifacts import FsArtifactStore
from loopml.tracking.client import TrackingClient
from tests.s3_fixtures import object_keys, s3_client

MARKER = b"PATIENT-RECORD-4242;diagnosis=confidential;"


def _key_env(monkeypatch: pytest.MonkeyPatch, key: MasterKey) -> None:
    monkeypatch.setenv("LOOPML_ENCRYPTION_KEY", key.encoded())
    monkeypatch.delenv("LOOPML_ENCRYPTION_KEY_FILE", raising=False)
    monkeypatch.delenv("LOOPML_ENCRYPTION_PREVIOUS_KEY_FILE", raising=False)


def _stored_local(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _stored_s3(url: str, endpoint: str) -> dict[str, bytes]:
    bucket = urlsplit(url).netloc
    client = s3_client(endpoint)
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in object_keys(endpoint, bucket)}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_no_plaintext_reaches_the_stored_bytes_and_readers_see_none_of_it(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    _key_env(monkeypatch, MasterKey.generate())
    url = request.getfixturevalue("s3_url") if where == "s3" else str(tmp_path / "artifacts")
    client = TrackingClient(open_store(f"sqlite:///{tmp_path / 'l.db'}", artifacts_url=url))
    try:
        payload = MARKER * 30_000 + os.urandom(100)  # about 1.3 MiB: two segments
        (tmp_path / "records.csv").write_bytes(payload)
        run = client.create_run("private", capture=False)
        client.log_artifact(run.run_id, tmp_path / "records.csv")
        client.log_artifact(run.run_id, tmp_path / "records.csv", name="copy/records.csv")
        features = pd.DataFrame({"diagnosis_code_4242": [0.0, 1.0, 0.3, 0.8], "age": [30.0, 60.0, 41.0, 70.0]})
        model = LogisticRegression().fit(features, [0, 1, 0, 1])
        log_model(client, run.run_id, model, input_example=features)

        stored = _stored_s3(url, request.getfixturevalue("moto_endpoint")) if where == "s3" else _stored_local(
            tmp_path / "artifacts"
        )
        blobs = {name: data for name, data in stored.items() if "objects/" in name}
        assert blobs and not [name for name in stored if "/tmp/" in name or name.startswith("tmp/")]
        for name, data in blobs.items():
            assert MARKER[:16] not in data, name
            assert b"diagnosis_code_4242" not in data, name  # the model's signature and column names too
        digest = hashlib.sha256(payload).hexdigest()
        assert sum(name.endswith(digest[2:]) for name in blobs) == 1  # the same plaintext: one object
        assert len(blobs[next(n for n in blobs if n.endswith(digest[2:]))]) == sealed_size(len(payload))

        assert client.read_artifact(run.run_id, "copy/records.csv") == payload
        loaded = load_model_from_run(client, run.run_id)
        assert list(loaded.predict(features)) == list(model.predict(features))
    finally:
        client.close()


def test_a_wrong_or_missing_key_is_a_clear_error_naming_the_artifact_not_the_key(tmp_path: Path) -> None:
    right, wrong = MasterKey.generate(), MasterKey.generate()
    digest = FsArtifactStore(str(tmp_path), keyring=Keyring(right)).put_bytes(MARKER)
    with pytest.raises(ArtifactDecryptionError) as caught:
        FsArtifactStore(str(tmp_path), keyring=Keyring(wrong)).get_bytes(digest)
    message = str(caught.value)
    assert digest in message and "another master key" in message
    for secret in (right.encoded(), wrong.encoded(), right.secret.hex(), wrong.secret.hex()):
        assert secret not in message
    with pytest.raises(ArtifactDecryptionError, match="LOOPML_ENCRYPTION_KEY"):
        FsArtifactStore(str(tmp_path)).get_bytes(digest)
    with pytest.raises(ArtifactDecryptionError):
        FsArtifactStore(str(tmp_path), keyring=Keyring(wrong)).download(digest, str(tmp_path / "out.bin"))
    assert not (tmp_path / "out.bin").exists()
    assert FsArtifactStore(str(tmp_path), keyring=Keyring(right)).get_bytes(digest) == MARKER


def _tampered(data: bytes, how: str) -> bytes:
    sealed = SEGMENT_BYTES + TAG_BYTES
    if how == "flipped byte":
        at = HEADER_BYTES + sealed + 100
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    if how == "last segment cut off":
        return data[: HEADER_BYTES + 2 * sealed]
    if how == "segments swapped":
        first, second = data[HEADER_BYTES : HEADER_BYTES + sealed], data[HEADER_BYTES + sealed : HEADER_BYTES + 2 * sealed]
        return data[:HEADER_BYTES] + second + first + data[HEADER_BYTES + 2 * sealed :]
    if how == "wrapped key changed":
        at = 12 + 8 + 5
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    assert how == "tag truncated"
    return data[:-3]


@pytest.mark.parametrize(
    "how", ["flipped byte", "last segment cut off", "segments swapped", "wrapped key changed", "tag truncated"]
)
def test_a_tampered_object_is_refused_before_its_bytes_are_handed_out(tmp_path: Path, how: str) -> None:
    blobs = FsArtifactStore(str(tmp_path), keyring=Keyring(MasterKey.generate()))
    payload = os.urandom(2 * SEGMENT_BYTES + 1000)  # three segments
    digest = blobs.put_bytes(payload)
    path = tmp_path / "objects" / digest[:2] / digest[2:]
    path.write_bytes(_tampered(path.read_bytes(), how))
    with pytest.raises(ArtifactIntegrityError) as caught:
        blobs.get_bytes(digest)
    assert isinstance(caught.value, ArtifactDecryptionError) and digest in str(caught.value)
    with pytest.raises(ArtifactIntegrityError):
        blobs.download(digest, str(tmp_path / "out.bin"))
    assert not (tmp_path / "out.bin").exists()


def test_rotation_rewraps_data_keys_without_touching_the_data(tmp_path: Path, monkeypatch) -> None:
    from loopml.cli.main import app

    old, new = MasterKey.generate(), MasterKey.generate()
    root = tmp_path / "artifacts"
    plain_digest = FsArtifactStore(str(root)).put_bytes(b"written before encryption was turned on")
    blobs = FsArtifactStore(str(root), keyring=Keyring(old))
    payloads = [MARKER, os.urandom(SEGMENT_BYTES * 2 + 7)]
    digests = [blobs.put_bytes(p) for p in payloads]
    before = {d: (root / "objects" / d[:2] / d[2:]).read_bytes() for d in digests}
    new_file = tmp_path / "new.key"
    new_file.write_text(new.encoded())
    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", str(root))
    _key_env(monkeypatch, old)

    result = CliRunner().invoke(app, ["artifacts", "rotate-key", "--new-key-file", str(new_file)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # as read, whatever the terminal's width wrapped
    assert "Rewrapped 2" in said and "1 are stored unencrypted" in said
    for digest in digests:
        after = (root / "objects" / digest[:2] / digest[2:]).read_bytes()
        assert after[HEADER_BYTES:] == before[digest][HEADER_BYTES:]  # the segments, byte for byte
        assert after[:HEADER_BYTES] != before[digest][:HEADER_BYTES]
    assert [FsArtifactStore(str(root), keyring=Keyring(new)).get_bytes(d) for d in digests] == payloads
    with pytest.raises(ArtifactDecryptionError):
        FsArtifactStore(str(root), keyring=Keyring(old)).get_bytes(digests[0])
    assert FsArtifactStore(str(root), keyring=Keyring(new)).get_bytes(plain_digest).startswith(b"written")

    again = CliRunner().invoke(app, ["artifacts", "rotate-key", "--new-key-file", str(new_file)])
    assert again.exit_code == 0 and "Rewrapped 0" in again.output and "2 were already" in again.output

    # a reader that has moved to the new key, holding the old one as previous, reads objects of both
    old_file = tmp_path / "old.key"
    old_file.write_bytes(old.secret)  # 32 raw bytes are accepted too
    late = FsArtifactStore(str(root), keyring=Keyring(old)).put_bytes(b"written by a process still on the old key")
    ring = keyring_from_env({"LOOPML_ENCRYPTION_KEY_FILE": str(new_file), "LOOPML_ENCRYPTION_PREVIOUS_KEY_FILE": str(old_file)})
    both = FsArtifactStore(str(root), keyring=ring)
    assert both.get_bytes(late).startswith(b"written by") and both.get_bytes(digests[0]) == MARKER


def test_encrypted_streams_hold_one_segment_at_a_time(tmp_path: Path) -> None:
    blobs = FsArtifactStore(str(tmp_path), keyring=Keyring(MasterKey.generate()))
    size = 24 << 20
    rng_state = hashlib.sha256()

    class Source(io.RawIOBase):
        left = size

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            block = os.urandom(n)
            rng_state.update(block)
            return block

    tracemalloc.start()
    try:
        digest, _ = blobs.write_stream(Source())  # type: ignore[arg-type]
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        check = hashlib.sha256()
        for block in blobs.open_stream(digest):
            check.update(block)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == rng_state.hexdigest() == check.hexdigest()
    assert write_peak < 8 << 20 and read_peak < 8 << 20, (write_peak, read_peak)


def test_keys_are_checked_and_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="LOOPML_ENCRYPTION_KEY") as caught:
        keyring_from_env({"LOOPML_ENCRYPTION_KEY": "not-a-key-but-a-secret!"})
    assert "not-a-key" not in str(caught.value)
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(InvalidValueError, match="32 bytes"):
        parse_key(short, source="LOOPML_ENCRYPTION_KEY")
    with pytest.raises(InvalidValueError, match="LOOPML_ENCRYPTION_KEY_FILE"):
        keyring_from_env({"LOOPML_ENCRYPTION_KEY_FILE": str(tmp_path / "absent.key")})
    assert keyring_from_env({}) is None


def test_new_key_writes_a_private_file_and_never_overwrites_one(tmp_path: Path) -> None:
    from loopml.cli.main import app

    target = tmp_path / "master.key"
    result = CliRunner().invoke(app, ["artifacts", "new-key", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    key = parse_key(target.read_text(), source="test")
    assert key.encoded() not in result.output and key.key_id.hex() in result.output
    again = CliRunner().invoke(app, ["artifacts", "new-key", "--out", str(target)])
    assert again.exit_code != 0 and "exists" in again.output
    assert parse_key(target.read_text(), source="test") == key
