"""The ArtifactStore over HTTP: blobs go through the server, streamed both ways.

Uploads stream from the file or reader (never read whole into memory), and
the server hashes them as they arrive. Downloads are verified here too: the
sha256 is checked as the last chunk is read, which is held back until then,
so a reader never takes in bytes that do not match their name.

A server started with ``--artifacts-presign`` answers a download with 307 and
a presigned object-store URL: the bytes are fetched from there (without the
loopml token) and verified the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import httpx

from loopml.errors import ArtifactIntegrityError, ArtifactStoreUnavailableError
from loopml.store.artifacts import ArtifactStore, verified_chunks
from loopml.store.fs.artifacts import check_digest
from loopml.store.rest.http import HttpSession, iter_file

_CHUNK = 1 << 20
_OCTETS = {"Content-Type": "application/octet-stream"}
_REDIRECTS = frozenset({307})


def _blob(digest: str) -> str:
    return f"/artifacts/blobs/{check_digest(digest)}"


def _iter_reader(reader: BinaryIO, chunk_size: int = _CHUNK) -> Iterator[bytes]:
    while block := reader.read(chunk_size):
        yield block


class RestArtifactStore(ArtifactStore):
    """Content-addressed blobs kept by a loopml server."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    # -- writes --------------------------------------------------------------------------------
    def _upload(self, content: bytes | Iterable[bytes] | Callable[[], Iterable[bytes]]) -> tuple[str, int]:
        response = self._http.send("PUT", "/artifacts/blobs", content=content, headers=_OCTETS)
        blob = response.json()
        return str(blob["digest"]), int(blob["size"])

    def put_bytes(self, data: bytes) -> str:
        return self._upload(bytes(data))[0]

    def put_file(self, path: str) -> tuple[str, int]:
        with open(path, "rb"):  # fail here, with the local error, when the file cannot be read
            pass
        return self._upload(lambda: iter_file(path, _CHUNK))

    def write_stream(self, chunks: BinaryIO) -> tuple[str, int]:
        if _seekable(chunks):
            start = chunks.tell()

            def rewound() -> Iterator[bytes]:
                chunks.seek(start)
                return _iter_reader(chunks)

            return self._upload(rewound)
        return self._upload(_iter_reader(chunks))  # sent once: a spent stream cannot be retried

    # -- reads ---------------------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        response = self._http.send("HEAD", _blob(digest), ok_statuses=frozenset({404}))
        return response.status_code != 404

    def get_bytes(self, digest: str) -> bytes:
        return b"".join(self.open_stream(digest))

    def open_stream(self, digest: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        # The request goes out now, so a missing blob raises here, as it does on the file store.
        response = self._http.send("GET", _blob(digest), stream=True, ok_statuses=_REDIRECTS)
        if response.status_code in _REDIRECTS:
            response.close()
            return self._fetch_presigned(response.headers.get("location", ""), digest, chunk_size)
        return self._verified(response, digest, chunk_size)

    def _fetch_presigned(self, url: str, digest: str, chunk_size: int) -> Iterator[bytes]:
        """The blob from the object store's presigned URL, with a client of its own (no loopml token in it)."""
        if not url.startswith(("http://", "https://")):
            raise ArtifactIntegrityError(f"The server redirected blob {digest} to something that is not a URL.")
        direct = httpx.Client(timeout=self._http.timeout, verify=self._http.verify)
        try:
            response = direct.send(direct.build_request("GET", url), stream=True)
        except httpx.HTTPError as exc:
            direct.close()
            raise ArtifactStoreUnavailableError(
                f"Artifact blob {digest}: the object store the server pointed to cannot be reached "
                f"({type(exc).__name__})."
            ) from exc
        if not response.is_success:
            response.read()
            response.close()
            direct.close()
            raise ArtifactStoreUnavailableError(
                f"Artifact blob {digest}: the object store refused its presigned URL ({response.status_code}); "
                "it may have expired."
            )
        return self._verified(response, digest, chunk_size, closing=direct)

    def _verified(
        self, response: httpx.Response, digest: str, chunk_size: int, closing: httpx.Client | None = None
    ) -> Iterator[bytes]:
        received = self._received(response, digest, chunk_size, closing)
        return verified_chunks(received, digest, str(self._http.base_url))

    def _received(
        self, response: httpx.Response, digest: str, chunk_size: int, closing: httpx.Client | None
    ) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(chunk_size)
        except httpx.TransportError as exc:
            raise ArtifactIntegrityError(
                f"Artifact blob {digest} from {self._http.base_url} broke off before its end ({exc}); "
                "the server found it corrupted or the connection failed."
            ) from exc
        finally:
            response.close()
            if closing is not None:
                closing.close()

def _seekable(reader: BinaryIO) -> bool:
    try:
        return bool(reader.seekable())
    except (AttributeError, OSError, ValueError):
        return False
