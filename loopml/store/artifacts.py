"""The contract for artifact bytes, addressed by their sha256."""

from __future__ import annotations

import hashlib
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from loopml.errors import ArtifactIntegrityError


def verified_chunks(chunks: Iterable[bytes], digest: str, source: str) -> Iterator[bytes]:
    """Pass ``chunks`` through, holding the last one back until the whole blob hashes to ``digest``.

    A reader therefore never receives the end of a corrupted blob: the stream
    raises ArtifactIntegrityError instead of finishing.
    """
    hasher = hashlib.sha256()
    pending: bytes | None = None
    for block in chunks:
        if not block:
            continue
        if pending is not None:
            yield pending
        hasher.update(block)
        pending = block
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
