"""The content-addressed artifact store: addressing, atomic writes, integrity on read."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from loopml.errors import ArtifactIntegrityError, InvalidValueError
from loopml.store.crypto.keys import Keyring, MasterKey
from loopml.store.fs.artifacts import FsArtifactStore


@pytest.fixture(params=["local", "memory", "s3", "local-encrypted", "s3-encrypted"])
def blobs(request, tmp_path):
    """The same contract on a folder, fsspec memory, a real S3 API server, and encrypted at rest on both."""
    keyring = Keyring(MasterKey.generate()) if request.param.endswith("-encrypted") else None
    if request.param.startswith("local"):
        return FsArtifactStore(str(tmp_path / "artifacts"), keyring=keyring)
    if request.param.startswith("s3"):
        return FsArtifactStore(request.getfixturevalue("s3_url"), keyring=keyring)
    import uuid

    return FsArtifactStore(f"memory://loopml-test-{uuid.uuid4().hex}")


def test_bytes_are_addressed_by_their_sha256(blobs):
    data = b"hello loopml"
    digest = blobs.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert blobs.exists(digest)
    assert blobs.get_bytes(digest) == data
    assert blobs.put_bytes(data) == digest  # idempotent


def test_streams_and_files_are_hashed_while_written(blobs, tmp_path):
    payload = os.urandom(3 * (1 << 20) + 17)  # several chunks
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    digest, size = blobs.put_file(str(source))
    assert (digest, size) == (hashlib.sha256(payload).hexdigest(), len(payload))
    assert blobs.write_stream(io.BytesIO(payload)) == (digest, size)
    assert b"".join(blobs.open_stream(digest, chunk_size=1 << 16)) == payload
    dest = tmp_path / "out" / "copy.bin"
    blobs.download(digest, str(dest))
    assert dest.read_bytes() == payload


def test_local_writes_leave_no_temporary_files(tmp_path):
    blobs = FsArtifactStore(str(tmp_path / "artifacts"))
    blobs.put_bytes(b"x")
    blobs.write_stream(io.BytesIO(b"y" * 100))
    assert os.listdir(tmp_path / "artifacts" / "tmp") == []


def test_a_corrupted_blob_is_detected_on_read(tmp_path):
    blobs = FsArtifactStore(str(tmp_path / "artifacts"))
    digest = blobs.put_bytes(b"the real bytes")
    path = tmp_path / "artifacts" / "objects" / digest[:2] / digest[2:]
    path.write_bytes(b"the fake bytes")
    with pytest.raises(ArtifactIntegrityError, match="corrupted"):
        blobs.get_bytes(digest)
    with pytest.raises(ArtifactIntegrityError):
        blobs.download(digest, str(tmp_path / "dest.bin"))
    assert not (tmp_path / "dest.bin").exists()  # no half-trusted copy is left behind


def test_large_blocks_hashed_behind_the_reader_keep_their_order_and_hold_back_the_end():
    from loopml.store.artifacts import HASH_BEHIND_BYTES, verified_chunks

    big = HASH_BEHIND_BYTES
    blocks = [os.urandom(big), b"small", os.urandom(2 * big), os.urandom(big + 1), b"", b"tail"]
    whole = b"".join(blocks)
    assert b"".join(verified_chunks(iter(blocks), hashlib.sha256(whole).hexdigest(), "t", hash_behind=True)) == whole
    swapped = [blocks[2], blocks[1], blocks[0], *blocks[3:]]  # the same bytes in another order
    handed_out: list[bytes] = []
    with pytest.raises(ArtifactIntegrityError, match="corrupted"):
        handed_out.extend(verified_chunks(iter(swapped), hashlib.sha256(whole).hexdigest(), "t", hash_behind=True))
    assert handed_out == [block for block in swapped if block][:-1]  # all but the last block


def test_readers_give_their_hashing_lane_back_and_hash_in_place_when_none_is_free():
    from loopml.store import artifacts

    blocks = [os.urandom(artifacts.HASH_BEHIND_BYTES) for _ in range(3)]
    digest = hashlib.sha256(b"".join(blocks)).hexdigest()
    taken = []
    while (lane := artifacts._lanes.take()) is not None:  # every lane busy, as on a server reading many blobs
        taken.append(lane)
    try:
        assert b"".join(artifacts.verified_chunks(iter(blocks), digest, "t", hash_behind=True)) == b"".join(blocks)
    finally:
        for _ in taken:
            artifacts._lanes.give_back()
    free = len(taken)
    early = artifacts.verified_chunks(iter(blocks), digest, "t", hash_behind=True)
    next(early)  # a reader that stops after the first block
    early.close()
    assert b"".join(artifacts.verified_chunks(iter(blocks), digest, "t", hash_behind=True)) == b"".join(blocks)
    assert artifacts._lanes._free == free  # each stream gave its lane back


def test_a_large_corrupted_blob_is_refused_before_its_last_block(tmp_path):
    blobs = FsArtifactStore(str(tmp_path / "artifacts"))
    payload = os.urandom(4 * (1 << 20) + 5)  # five blocks
    digest = blobs.put_bytes(payload)
    assert b"".join(blobs.open_stream(digest)) == payload
    with open(tmp_path / "artifacts" / "objects" / digest[:2] / digest[2:], "r+b") as handle:
        handle.seek(3 * (1 << 20))
        handle.write(b"X")
    received = bytearray()
    with pytest.raises(ArtifactIntegrityError, match="corrupted"):
        for block in blobs.open_stream(digest):
            received += block
    assert len(received) == 4 * (1 << 20)  # all but the last block


def test_a_missing_blob_is_an_integrity_error(tmp_path):
    blobs = FsArtifactStore(str(tmp_path / "artifacts"))
    digest = blobs.put_bytes(b"soon gone")
    os.remove(tmp_path / "artifacts" / "objects" / digest[:2] / digest[2:])
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        blobs.get_bytes(digest)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "0" * 63, "g" * 64, "/" + "0" * 63])
def test_anything_but_a_digest_is_refused_as_an_address(blobs, bad):
    with pytest.raises(InvalidValueError, match="sha256"):
        blobs.get_bytes(bad)
