"""Content-addressed blobs on a local folder or any fsspec URL.

The backend only moves bytes (fsspec); sha256 addressing, atomic writes and
the integrity check on every read are written once, here. Blobs live at
``<root>/objects/<2 hex>/<62 hex>``; writes go to ``<root>/tmp/`` first and
are renamed into place, so a reader never sees a half-written blob. A writer
killed mid-way (``kill -9`` during an upload) leaves its temp file behind;
opening the store removes those once they are older than a grace period.

On an object store (``s3://bucket/prefix``; endpoint, region and credentials
read the standard way, ``AWS_ENDPOINT_URL`` and ``AWS_MAX_ATTEMPTS`` included)
writes go up in parts of ``PART_BYTES`` and reads come down in ranges of the
same size, so neither holds a whole artifact in memory; the temp object is
copied into place server-side. An endpoint that cannot be reached, or that
refuses, raises ArtifactStoreUnavailableError naming the store's URL only
(never the endpoint, its credentials or the backend's own message), and no
blob is left half-written under its name.

With a keyring (``LOOPML_ENCRYPTION_KEY``), blobs are written as encrypted
envelopes (``loopml.store.crypto.envelope``) and decrypted on read; the
address stays the sha256 of the plaintext, so equal artifacts still share one
object. Blobs written before encryption was turned on stay readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from loopml.errors import (
    ArtifactIntegrityError,
    ArtifactStoreUnavailableError,
    InvalidValueError,
    LoopMLError,
)
from loopml.store.artifacts import ArtifactStore, verified_chunks
from loopml.store.crypto.envelope import (
    HEADER_BYTES,
    MAGIC,
    EncryptingWriter,
    decrypt_stream,
    is_encrypted,
    rewrap_header,
)
from loopml.store.crypto.keys import Keyring, MasterKey, keyring_from_env

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
#: A temp file untouched this long belongs to a writer that died: a live one writes a block at least
#: every few seconds (each write moves the mtime), and writers in other processes share the folder.
STALE_TMP_AFTER_S = 3600.0
#: Object stores: the size of each uploaded part and of each ranged read (S3's smallest part is 5 MiB).
PART_BYTES = 8 << 20
#: Object stores: the size of each ranged GET when a blob is streamed down.
RANGE_BYTES = 4 << 20
#: Object stores have no folders to make; their protocols, as fsspec names them.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
#: Where the exceptions of object-store clients come from (they are not all OSErrors).
_BACKEND_MODULES = ("botocore", "aiobotocore", "s3fs", "aiohttp", "gcsfs", "adlfs", "azure")


def check_digest(digest: str) -> str:
    """Reject anything that is not a sha256 hex digest (it becomes part of a path)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidValueError(f"Not a sha256 hex digest: {digest!r}.")
    return digest


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What ``rotate_key`` did: objects rewrapped, already under the new key, and stored unencrypted."""

    rewrapped: int
    already_current: int
    unencrypted: int


def open_fs_artifact_store(url: str) -> FsArtifactStore:
    """The artifact store at ``url``, encrypting when the environment configures a key."""
    return FsArtifactStore(url, keyring=keyring_from_env())


class FsArtifactStore(ArtifactStore):
    """An ArtifactStore over ``url``: a local path or any fsspec URL (``s3://``, ``memory://``).

    Opening it removes temp files older than ``stale_tmp_after_s`` seconds,
    the partial writes of a process that was killed. With ``keyring`` new
    blobs are encrypted under its current key.
    """

    def __init__(
        self, url: str, *, stale_tmp_after_s: float = STALE_TMP_AFTER_S, keyring: Keyring | None = None
    ) -> None:
        import fsspec

        self.url = url
        self._shown = _public_url(url)
        self.keyring = keyring
        self._boto: Any = None
        protocol = urlsplit(url).scheme if "://" in url else "file"
        fs, root = fsspec.core.url_to_fs(url, **_storage_options(protocol))
        self._fs: Any = fs
        self._root = root.rstrip("/")
        self._local = "file" in _protocols(fs)
        self._object_store = bool(_OBJECT_STORES.intersection(_protocols(fs)))
        self._stale_tmp_after_s: float | None = stale_tmp_after_s
        if not self._object_store:
            self._fs.makedirs(f"{self._root}/objects", exist_ok=True)
            self._fs.makedirs(f"{self._root}/tmp", exist_ok=True)
            self._sweep_once()
        # on an object store the sweep waits for the first write: opening the store sends no request,
        # so commands that only read metadata keep working while the endpoint is down

    def _sweep_once(self) -> None:
        if self._stale_tmp_after_s is None:
            return
        older_than_s, self._stale_tmp_after_s = self._stale_tmp_after_s, None
        with contextlib.suppress(ArtifactStoreUnavailableError), self._reaching("list its temp files"):
            self._remove_stale_tmp(older_than_s)

    @contextlib.contextmanager
    def _reaching(self, doing: str, *, writing: bool = False) -> Iterator[None]:
        """Turn an object store's connection and access failures into ArtifactStoreUnavailableError.

        The message names the store's URL and the exception's type only: the
        backend's own text can hold the endpoint, and the endpoint can hold
        credentials. While ``writing``, a missing bucket counts too.
        """
        try:
            yield
        except LoopMLError:
            raise
        except FileNotFoundError as exc:
            if not writing or self._local:
                raise
            raise self._unavailable(doing, writing, exc) from exc
        except Exception as exc:
            if self._local or not (isinstance(exc, OSError) or type(exc).__module__.startswith(_BACKEND_MODULES)):
                raise
            raise self._unavailable(doing, writing, exc) from exc

    def _unavailable(self, doing: str, writing: bool, exc: BaseException) -> ArtifactStoreUnavailableError:
        stored = " Nothing was stored under that address." if writing else ""
        return ArtifactStoreUnavailableError(
            f"The artifact store {self._shown} could not {doing} ({type(exc).__name__}).{stored} "
            "Retry once the store is reachable."
        )

    def _open(self, path: str, mode: str) -> Any:
        if self._object_store:
            return self._fs.open(path, mode, block_size=PART_BYTES)
        return self._fs.open(path, mode)

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
            self.write_stream(io.BytesIO(data))
        return digest

    def put_file(self, path: str) -> tuple[str, int]:
        with open(path, "rb") as source:
            return self.write_stream(source)

    def write_stream(self, chunks: BinaryIO) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        tmp = self._tmp_path()
        self._sweep_once()
        try:
            with self._reaching("store a blob", writing=True), self._open(tmp, "wb") as out:
                sink = out if self.keyring is None else EncryptingWriter(out, self.keyring.current)
                while block := chunks.read(_CHUNK):
                    hasher.update(block)
                    sink.write(block)
                    size += len(block)
                if sink is not out:
                    sink.close()
                if self._local:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            self._discard(tmp)
            raise
        digest = hasher.hexdigest()
        try:
            with self._reaching("store a blob", writing=True):
                if self.exists(digest):
                    self._discard(tmp)
                else:
                    self._commit(tmp, digest)
        except BaseException:
            self._discard(tmp)
            raise
        return digest, size

    def _commit(self, tmp: str, digest: str) -> None:
        final = self._path(digest)
        if self._local:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)  # atomic on one filesystem
        else:
            if not self._object_store:
                self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self._fs.mv(tmp, final)  # S3: a server-side copy; the object appears whole or not at all

    def _discard(self, tmp: str) -> None:
        with contextlib.suppress(Exception):  # best effort: a temp file left behind is removed on a later open
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
        if self._local:
            return os.path.exists(path)
        with self._reaching("look up a blob"):
            return bool(self._fs.exists(path))

    def get_bytes(self, digest: str) -> bytes:
        return b"".join(self.open_stream(digest))

    def _open_blob(self, digest: str, *, streamed: bool = True) -> tuple[Any, bool]:
        """The stored object, opened, and whether it is an encrypted envelope (its first bytes are read back).

        ``streamed`` on an object store: read front to back in ranges of
        ``RANGE_BYTES``, each fetched when the reader needs it and dropped
        after (fsspec's read-ahead cache would hold several parts at once).
        """
        path = self._path(digest)
        try:
            with self._reaching("read a blob"):
                if self._object_store and streamed:
                    raw = self._fs.open(path, "rb", block_size=PART_BYTES, cache_type="none")
                    handle = io.BufferedReader(raw, buffer_size=RANGE_BYTES)
                else:
                    handle = self._open(path, "rb")
                prefix = handle.read(len(MAGIC))
                handle.seek(0)
        except FileNotFoundError as exc:
            raise ArtifactIntegrityError(f"Artifact blob {digest} is missing from {self._shown}.") from exc
        return handle, is_encrypted(prefix)

    def open_stream(self, digest: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        handle, encrypted = self._open_blob(digest)
        if encrypted:
            plain = decrypt_stream(handle, self.keyring, digest)
            return verified_chunks(self._guarded(plain), digest, self._shown, hash_behind=True)
        return verified_chunks(self._guarded(self._read(handle, chunk_size)), digest, self._shown)

    def open_seekable(self, digest: str) -> BinaryIO | None:
        handle, encrypted = self._open_blob(digest, streamed=False)  # fsspec files seek: ranged requests
        if encrypted:
            handle.close()
            return None  # ranges of ciphertext are no use to a reader: it streams (and verifies) instead
        return handle  # type: ignore[no-any-return]

    def _guarded(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        with self._reaching("read a blob"):
            yield from blocks

    @staticmethod
    def _read(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
        with handle:
            while block := handle.read(chunk_size):
                yield block

    # -- object stores ---------------------------------------------------------------------------------
    def presigned_url(self, digest: str, expires_s: int = 300) -> str | None:
        """A URL that reads the blob straight from S3 for ``expires_s`` seconds; None off S3 or when encrypted.

        An encrypted blob is never handed out this way: the client holds no
        key, so the server decrypts and proxies those. The caller checks that
        the blob exists first.
        """
        if self.keyring is not None or not {"s3", "s3a"}.intersection(_protocols(self._fs)):
            return None
        bucket, _, key = self._path(digest).partition("/")
        with self._reaching("sign a download URL"):
            url = self._signer().generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires_s)
            )
        return str(url)

    def _signer(self) -> Any:
        """A botocore S3 client signing with SigV4 (signing is local: no request goes out), made once.

        botocore, not boto3: s3fs brings botocore (through aiobotocore, which pins its version), and
        boto3 would pin another, which pip cannot always reconcile.
        """
        if self._boto is None:
            from botocore.config import Config  # type: ignore[import-untyped]
            from botocore.session import get_session  # type: ignore[import-untyped]

            self._boto = get_session().create_client(
                "s3",
                endpoint_url=_storage_options("s3").get("endpoint_url"),
                config=Config(signature_version="s3v4"),
            )
        return self._boto

    # -- encryption at rest ------------------------------------------------------------------------------
    def digests(self) -> Iterator[str]:
        """Every stored blob's digest (a listing; for maintenance such as key rotation)."""
        with self._reaching("list its blobs"):
            names = self._fs.find(f"{self._root}/objects")
        for name in names:
            head, _, tail = str(name).rpartition("/")
            digest = head.rpartition("/")[2] + tail
            if _DIGEST.match(digest):
                yield digest

    def rotate_key(self, new_key: MasterKey) -> RotationReport:
        """Rewrap every encrypted blob's data key under ``new_key``; the data segments are copied unchanged.

        Needs a keyring holding the key each blob is wrapped with now. Each
        blob is rewritten through a temp object and renamed, so a reader sees
        the old or the new header, never a mix; blobs already under the new
        key are skipped, so an interrupted rotation is simply run again.
        """
        if self.keyring is None:
            raise InvalidValueError("Key rotation needs the current key: set LOOPML_ENCRYPTION_KEY (or _FILE).")
        keyring = Keyring(self.keyring.current, (*self.keyring.previous, new_key))
        rewrapped = already = unencrypted = 0
        for digest in list(self.digests()):
            handle, encrypted = self._open_blob(digest)
            with handle:
                if not encrypted:
                    unencrypted += 1
                    continue
                header = rewrap_header(handle.read(HEADER_BYTES), keyring, new_key, digest)
                if header is None:
                    already += 1
                    continue
                tmp = self._tmp_path()
                try:
                    with self._reaching("rewrite a blob", writing=True), self._open(tmp, "wb") as out:
                        out.write(header)
                        while block := handle.read(_CHUNK):
                            out.write(block)
                    with self._reaching("rewrite a blob", writing=True):
                        self._commit(tmp, digest)
                except BaseException:
                    self._discard(tmp)
                    raise
            rewrapped += 1
        return RotationReport(rewrapped, already, unencrypted)


def _storage_options(protocol: str) -> dict[str, Any]:
    """fsspec options for ``protocol``: for S3, the endpoint named by the environment (part of the cache key)."""
    if protocol not in ("s3", "s3a"):
        return {}
    options: dict[str, Any] = {"use_listings_cache": False}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    return options


def _public_url(url: str) -> str:
    """``url`` without any user name or password in it, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
