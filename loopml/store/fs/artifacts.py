"""Content-addressed blobs on a local folder or any fsspec URL.

The backend only moves bytes (fsspec); sha256 addressing, atomic writes and
the integrity check on every read are written once, here. Blobs live at
``<root>/objects/<2 hex>/<62 hex>``; writes go to ``<root>/tmp/`` first and
are renamed into place, so a reader never sees a half-written blob. A writer
killed mid-way (``kill -9`` during an upload) leaves its temp file behind;
opening the store removes those once they are older than a grace period.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from loopml.errors import ArtifactIntegrityError, InvalidValueError
from loopml.store.artifacts import ArtifactStore, verified_chunks

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
#: A temp file untouched this long belongs to a writer that died: a live one writes a block at least
#: every few seconds (each write moves the mtime), and writers in other processes share the folder.
STALE_TMP_AFTER_S = 3600.0


def check_digest(digest: str) -> str:
    """Reject anything that is not a sha256 hex digest (it becomes part of a path)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidValueError(f"Not a sha256 hex digest: {digest!r}.")
    return digest


class FsArtifactStore(ArtifactStore):
    """An ArtifactStore over ``url``: a local path or any fsspec URL (``s3://``, ``memory://``).

    Opening it removes temp files older than ``stale_tmp_after_s`` seconds,
    the partial writes of a process that was killed.
    """

    def __init__(self, url: str, *, stale_tmp_after_s: float = STALE_TMP_AFTER_S) -> None:
        import fsspec

        self.url = url
        fs, root = fsspec.core.url_to_fs(url)
        self._fs: Any = fs
        self._root = root.rstrip("/")
        self._local = "file" in _protocols(fs)
        self._fs.makedirs(f"{self._root}/objects", exist_ok=True)
        self._fs.makedirs(f"{self._root}/tmp", exist_ok=True)
        self._remove_stale_tmp(stale_tmp_after_s)

    # -- paths -------------------------------------------------------------------
    def _path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/objects/{digest[:2]}/{digest[2:]}"

    def _tmp_path(self) -> str:
        return f"{self._root}/tmp/{uuid.uuid4().hex}"

    # -- writes --------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            tmp = self._tmp_path()
            with self._fs.open(tmp, "wb") as out:
                out.write(data)
            self._commit(tmp, digest)
        return digest

    def put_file(self, path: str) -> tuple[str, int]:
        with open(path, "rb") as source:
            return self.write_stream(source)

    def write_stream(self, chunks: BinaryIO) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        tmp = self._tmp_path()
        try:
            with self._fs.open(tmp, "wb") as out:
                while block := chunks.read(_CHUNK):
                    hasher.update(block)
                    out.write(block)
                    size += len(block)
                if self._local:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            self._discard(tmp)
            raise
        digest = hasher.hexdigest()
        if self.exists(digest):
            self._discard(tmp)
        else:
            self._commit(tmp, digest)
        return digest, size

    def _commit(self, tmp: str, digest: str) -> None:
        final = self._path(digest)
        if self._local:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)  # atomic on one filesystem
        else:
            self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self._fs.mv(tmp, final)

    def _discard(self, tmp: str) -> None:
        with contextlib.suppress(OSError):
            self._fs.rm(tmp)

    def _remove_stale_tmp(self, older_than_s: float) -> int:
        """Remove temp files last written over ``older_than_s`` seconds ago; return how many went."""
        removed = 0
        for path, age_s in self._tmp_ages():
            if age_s > older_than_s:
                self._discard(path)
                removed += 1
        return removed

    def _tmp_ages(self) -> Iterator[tuple[str, float]]:
        folder = f"{self._root}/tmp"
        if self._local:
            now = time.time()
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        if entry.is_file(follow_symlinks=False):
                            yield entry.path, now - entry.stat(follow_symlinks=False).st_mtime
            return
        try:
            names = self._fs.ls(folder, detail=False)
        except (OSError, NotImplementedError):
            return
        now_utc = datetime.now(UTC)
        for name in names:
            try:
                modified = self._fs.modified(name)
            except (OSError, NotImplementedError, ValueError):
                continue  # a backend that cannot tell the age: keep the file rather than guess
            if modified.tzinfo is None:  # fsspec backends give UTC, some without saying so
                modified = modified.replace(tzinfo=UTC)
            yield str(name), (now_utc - modified).total_seconds()

    # -- reads -----------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        path = self._path(digest)
        return os.path.exists(path) if self._local else bool(self._fs.exists(path))

    def get_bytes(self, digest: str) -> bytes:
        return b"".join(self.open_stream(digest))

    def open_stream(self, digest: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        path = self._path(digest)
        try:
            handle = self._fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise ArtifactIntegrityError(
                f"Artifact blob {digest} is missing from {self.url} (expected at {path})."
            ) from exc
        return verified_chunks(self._read(handle, chunk_size), digest, self.url)

    def open_seekable(self, digest: str) -> BinaryIO | None:
        path = self._path(digest)
        try:
            handle: BinaryIO = self._fs.open(path, "rb")  # fsspec files seek: local reads, or ranged requests
        except FileNotFoundError as exc:
            raise ArtifactIntegrityError(f"Artifact blob {digest} is missing from {self.url}.") from exc
        return handle

    @staticmethod
    def _read(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
        with handle:
            while block := handle.read(chunk_size):
                yield block


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
