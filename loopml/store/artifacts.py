"""The contract for artifact bytes, addressed by their sha256."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import BinaryIO


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

    @abstractmethod
    def download(self, digest: str, dest: str) -> None:
        """Write a verified copy of the blob to local path ``dest`` (atomically)."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a blob with that digest is stored (not verified)."""

    @abstractmethod
    def write_stream(self, chunks: BinaryIO) -> tuple[str, int]:
        """Store bytes read from a file-like object, streamed; return ``(digest, size)``."""
