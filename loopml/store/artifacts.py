"""The contract for artifact bytes, addressed by their sha256."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from loopml.errors import ArtifactIntegrityError

#: With ``hash_behind``, blocks at least this large are hashed on a helper thread while the reader decrypts
#: the next one; smaller blocks are hashed in place (a hand-over would cost more than it saves).
HASH_BEHIND_BYTES = 256 * 1024


class _HashLanes:
    """Helper threads that hash behind readers, one lane per core beyond the first.

    A stream takes a lane for its whole read, or hashes in place when none is
    free: the overlap uses a core that would otherwise idle, and a server
    busy with many reads at once hashes each in its own thread (hashing behind
    costs more CPU per byte, as each block moves to another core's cache).
    A forked child makes its own threads (the parent's are not there).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._pool: ThreadPoolExecutor | None = None
        self._free = 0

    def take(self) -> ThreadPoolExecutor | None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._free = os.getpid(), max(0, (os.cpu_count() or 1) - 1)
                self._pool = ThreadPoolExecutor(max_workers=max(1, self._free), thread_name_prefix="loopml-verify")
            if not self._free:
                return None
            self._free -= 1
            return self._pool

    def give_back(self) -> None:
        with self._lock:
            self._free += 1


_lanes = _HashLanes()


def verified_chunks(
    chunks: Iterable[bytes], digest: str, source: str, *, hash_behind: bool = False
) -> Iterator[bytes]:
    """Pass ``chunks`` through, holding the last one back until the whole blob hashes to ``digest``.

    A reader therefore never receives the end of a corrupted blob: the stream
    raises ArtifactIntegrityError instead of finishing.

    ``hash_behind`` hashes large blocks on a helper thread (one at a time, in
    order) while ``chunks`` produces the next one, when a core is free for it.
    It pays where producing a block is real work that releases the GIL, as
    AES-GCM decryption does: an encrypted read then takes about as long as the
    slower of decrypting and hashing, not their sum (measured: 1,020 -> 1,125
    MiB/s). Where producing a block is a mere read it does not: handing each
    block to another core costs more than the overlap saves (plain reads:
    1,260 -> 1,030 MiB/s).
    """
    hasher = hashlib.sha256()
    pending: bytes | None = None
    hashing: Future[None] | None = None
    lane: ThreadPoolExecutor | None = None
    try:
        for block in chunks:
            if not block:
                continue
            if hashing is not None:
                hashing.result()  # the hash takes blocks in order: the previous one first
                hashing = None
            if hash_behind and lane is None and len(block) >= HASH_BEHIND_BYTES:
                lane = _lanes.take()
                hash_behind = lane is not None  # none free: hash this stream in place, and stop asking
            if lane is not None and len(block) >= HASH_BEHIND_BYTES:
                hashing = lane.submit(hasher.update, block)
            else:
                hasher.update(block)
            if pending is not None:
                yield pending
            pending = block
        if hashing is not None:
            hashing.result()
    finally:
        if lane is not None:
            if hashing is not None:
                hashing.result()  # a reader that stops early: the lane is free once its last block is hashed
            _lanes.give_back()
    if hasher.hexdigest() != digest:
        raise ArtifactIntegrityError(
            f"Artifact blob {digest} from {source} is corrupted: its bytes hash to {hasher.hexdigest()}."
        )
    if pending is not None:
        yield pending


class ArtifactStore(ABC):
    """Immutable blobs named by the sha256 of their bytes.

    A blob is written once (temp file, then rename) and never changes; every
    read verifies the hash and raises ArtifactIntegrityError when the bytes are
    missing or do not match.
    """

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex digest. Idempotent."""

    @abstractmethod
    def put_file(self, path: str) -> tuple[str, int]:
        """Store a local file, streamed; return ``(digest, size)``."""

    @abstractmethod
    def get_bytes(self, digest: str) -> bytes:
        """The verified bytes of a blob."""

    @abstractmethod
    def open_stream(self, digest: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob in chunks; the hash is checked as the last chunk is read."""

    def download(self, digest: str, dest: str) -> None:
        """Write a verified copy of the blob to local path ``dest`` (atomically).

        The copy goes to a hidden ``.part`` file beside ``dest`` and is renamed
        only once every byte has been verified, so no half-trusted file is left.
        """
        directory = os.path.dirname(os.path.abspath(dest))
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(dest)}.{uuid.uuid4().hex}.part")
        try:
            with open(tmp, "wb") as out:
                for block in self.open_stream(digest):
                    out.write(block)
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def open_seekable(self, digest: str) -> BinaryIO | None:
        """The blob as a seekable file, not verified (for reading a few ranges); None if the backend cannot.

        A reader of ranges never sees the whole blob, so it cannot check its
        hash: whatever it shows must be marked unverified (docs/ui.md, previews).
        """
        return None

    def presigned_url(self, digest: str, expires_s: int = 300) -> str | None:
        """A short-lived URL that reads the blob without going through loopml; None where the backend has none.

        A server started with ``--artifacts-presign`` redirects downloads to it;
        the client still verifies the sha256 of what it reads.
        """
        return None

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a blob with that digest is stored (not verified)."""

    @abstractmethod
    def write_stream(self, chunks: BinaryIO) -> tuple[str, int]:
        """Store bytes read from a file-like object, streamed; return ``(digest, size)``."""
