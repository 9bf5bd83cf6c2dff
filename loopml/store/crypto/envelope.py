"""The envelope format of an encrypted artifact: AES-256-GCM in segments, data key wrapped by a master key.

An encrypted object is a 64-byte header followed by segments::

    magic (12) | key id (8) | wrapped data key (40, AES key wrap) | segment size (4, big-endian)
    segment 0 | segment 1 | ... | final segment          each: AES-GCM(plaintext slice) + 16-byte tag

Every object gets a random 256-bit data key. Segment ``i`` is encrypted under
that key with the 12-byte nonce ``i`` (11 bytes, big-endian) followed by a
final flag (1 on the last segment, 0 otherwise), the STREAM construction: a
segment moved, dropped, repeated or cut off fails authentication, and so does
a stream truncated at a segment boundary (its new last segment was not
encrypted as final). The fixed header fields (magic, segment size) are the
associated data of every segment; the key id and the wrapped key are not, so
a key rotation rewrites only those 48 bytes and copies the segments as they
are. A wrong master key is caught by its id before anything is decrypted.

Segments are 1 MiB of plaintext, so neither side holds more than one segment
(plus its neighbour) in memory, whatever the size of the artifact.
"""

from __future__ import annotations

import secrets
import struct
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from loopml.errors import ArtifactDecryptionError
from loopml.store.crypto.keys import KEY_ID_BYTES, Keyring, MasterKey

MAGIC = b"\x00\xffloopml-ae1"  # 12 bytes; a NUL and 0xFF first, so no text file starts with it
SEGMENT_BYTES = 1 << 20
TAG_BYTES = 16
_WRAPPED_BYTES = 40
_SIZE = struct.Struct(">I")
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + _WRAPPED_BYTES + _SIZE.size  # 64
_KEY_AT = len(MAGIC)
_WRAP_AT = _KEY_AT + KEY_ID_BYTES
_SIZE_AT = _WRAP_AT + _WRAPPED_BYTES


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _aad(segment_bytes: int) -> bytes:
    return MAGIC + _SIZE.pack(segment_bytes)


def is_encrypted(prefix: bytes) -> bool:
    """Whether stored bytes starting with ``prefix`` (at least 12 bytes) are an envelope."""
    return prefix[: len(MAGIC)] == MAGIC


class EncryptingWriter:
    """Writes one object's envelope to ``out`` as its plaintext streams in: ``write`` blocks, then ``close``.

    The header goes out at once. Each full segment is sealed into one
    reused buffer and written straight on (no per-segment allocation); the
    last segment is held back until ``close``, which seals it as final.
    """

    def __init__(self, out: BinaryIO, key: MasterKey, segment_bytes: int = SEGMENT_BYTES) -> None:
        data_key = secrets.token_bytes(32)
        self._out = out
        self._aead = AESGCM(data_key)
        self._segment = segment_bytes
        self._aad = _aad(segment_bytes)
        self._index = 0
        self._pieces: deque[bytes | memoryview] = deque()
        self._size = 0
        self._sealed = bytearray(segment_bytes + TAG_BYTES)
        out.write(MAGIC + key.key_id + aes_key_wrap(key.secret, data_key) + _SIZE.pack(segment_bytes))

    def write(self, block: bytes) -> None:
        """Take ``block``; write out every segment it completes, except the last (it may be the final one)."""
        if block:
            self._pieces.append(block)
            self._size += len(block)
        while self._size > self._segment:
            self._seal(self._take(self._segment), final=False)

    def close(self) -> None:
        """Seal what is left (possibly nothing) as the final segment: without it a reader refuses the object."""
        self._seal(self._take(self._size), final=True)

    def _take(self, size: int) -> bytes | memoryview:
        """The next ``size`` plaintext bytes, without copying when one piece holds them."""
        self._size -= size
        if not size:
            return b""
        first = self._pieces[0]
        if len(first) >= size:
            if len(first) == size:
                self._pieces.popleft()
                return first
            view = memoryview(first)
            self._pieces[0] = view[size:]
            return view[:size]
        parts: list[bytes | memoryview] = []
        while size:
            piece = self._pieces.popleft()
            if len(piece) > size:
                view = memoryview(piece)
                self._pieces.appendleft(view[size:])
                piece = view[:size]
            parts.append(piece)
            size -= len(piece)
        return b"".join(parts)

    def _seal(self, plaintext: bytes | memoryview, *, final: bool) -> None:
        sealed = memoryview(self._sealed)[: len(plaintext) + TAG_BYTES]
        self._aead.encrypt_into(_nonce(self._index, final), plaintext, self._aad, sealed)
        self._out.write(sealed)
        self._index += 1


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining:
        block = handle.read(remaining)
        if not block:
            break
        parts.append(block)
        remaining -= len(block)
    return b"".join(parts)


def _read_into(handle: BinaryIO, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``handle`` (short only at the end); return how many bytes came."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        count = handle.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    return filled


def _header_key(header: bytes, keyring: Keyring | None, digest: str) -> tuple[bytes, int]:
    """The data key and segment size of an object, from its header; ArtifactDecryptionError when it cannot."""
    if len(header) != HEADER_BYTES or not is_encrypted(header):
        raise ArtifactDecryptionError(f"Artifact blob {digest} has a damaged encryption header.")
    if keyring is None:
        raise ArtifactDecryptionError(
            f"Artifact blob {digest} is encrypted and no encryption key is configured "
            "(set LOOPML_ENCRYPTION_KEY or LOOPML_ENCRYPTION_KEY_FILE)."
        )
    key = keyring.find(header[_KEY_AT:_WRAP_AT])
    if key is None:
        raise ArtifactDecryptionError(
            f"Artifact blob {digest} was encrypted with another master key than the one configured "
            f"(key id {header[_KEY_AT:_WRAP_AT].hex()}); it was not decrypted."
        )
    try:
        data_key = aes_key_unwrap(key.secret, header[_WRAP_AT:_SIZE_AT])
    except InvalidUnwrap:
        raise ArtifactDecryptionError(
            f"Artifact blob {digest} was refused: its wrapped data key fails authentication (tampered)."
        ) from None
    (segment_bytes,) = _SIZE.unpack(header[_SIZE_AT:HEADER_BYTES])
    if not 1 <= segment_bytes <= 64 * SEGMENT_BYTES:
        raise ArtifactDecryptionError(f"Artifact blob {digest} has a damaged encryption header.")
    return data_key, segment_bytes


def decrypt_stream(handle: BinaryIO, keyring: Keyring | None, digest: str) -> Iterator[bytes]:
    """The plaintext of the envelope read from ``handle``, one segment at a time; closes ``handle``.

    A segment that fails authentication (tampered, reordered, cut off) raises
    ArtifactDecryptionError before any of its bytes are handed out.
    """
    with handle:
        data_key, segment_bytes = _header_key(_read_exact(handle, HEADER_BYTES), keyring, digest)
        aead = AESGCM(data_key)
        aad = _aad(segment_bytes)
        # two ciphertext buffers, reused: the segment being opened and the one after it (is it the last?)
        current, following = bytearray(segment_bytes + TAG_BYTES), bytearray(segment_bytes + TAG_BYTES)
        filled = _read_into(handle, current)
        index = 0
        while True:
            next_filled = _read_into(handle, following)
            final = next_filled == 0
            try:
                plaintext = aead.decrypt(_nonce(index, final), memoryview(current)[:filled], aad)
            except InvalidTag:
                raise ArtifactDecryptionError(
                    f"Artifact blob {digest} was refused: segment {index} fails authentication "
                    "(the stored bytes were tampered with or cut off)."
                ) from None
            yield plaintext
            if final:
                return
            current, following, filled, index = following, current, next_filled, index + 1


def rewrap_header(header: bytes, keyring: Keyring, new_key: MasterKey, digest: str) -> bytes | None:
    """The header with its data key wrapped by ``new_key`` instead; None when it already is."""
    if header[_KEY_AT:_WRAP_AT] == new_key.key_id:
        return None
    data_key, _segment_bytes = _header_key(header, keyring, digest)
    wrapped = aes_key_wrap(new_key.secret, data_key)
    return header[:_KEY_AT] + new_key.key_id + wrapped + header[_SIZE_AT:HEADER_BYTES]


def sealed_size(plaintext_size: int, segment_bytes: int = SEGMENT_BYTES) -> int:
    """How many bytes the envelope of ``plaintext_size`` bytes takes (for docs and tests)."""
    segments = max(1, -(-plaintext_size // segment_bytes))
    return HEADER_BYTES + plaintext_size + segments * TAG_BYTES
