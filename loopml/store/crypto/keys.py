"""Master keys for artifact encryption, read from the environment.

``LOOPML_ENCRYPTION_KEY`` holds a base64-encoded 32-byte key, or
``LOOPML_ENCRYPTION_KEY_FILE`` names a file holding one (base64 text or the
32 raw bytes). ``LOOPML_ENCRYPTION_PREVIOUS_KEY_FILE`` may name the key that
was current before a rotation: it only decrypts, so readers keep working
while ``loopml artifacts rotate-key`` rewraps the objects.

A key is known by its id, the first 8 bytes of an HMAC of a fixed label under
the key: an object's header names the key that wrapped its data key without
saying anything about the key itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from loopml.errors import InvalidValueError

KEY_ENV = "LOOPML_ENCRYPTION_KEY"
KEY_FILE_ENV = "LOOPML_ENCRYPTION_KEY_FILE"
PREVIOUS_KEY_FILE_ENV = "LOOPML_ENCRYPTION_PREVIOUS_KEY_FILE"
KEY_BYTES = 32
KEY_ID_BYTES = 8
_ID_LABEL = b"loopml artifact master key id v1"


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A 256-bit key that wraps (encrypts) the per-object data keys."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise InvalidValueError(f"An encryption key must be {KEY_BYTES} bytes, got {len(self.secret)}.")

    @property
    def key_id(self) -> bytes:
        """8 bytes that name this key in object headers (an HMAC, so they reveal nothing of it)."""
        return hmac.new(self.secret, _ID_LABEL, hashlib.sha256).digest()[:KEY_ID_BYTES]

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random key (``loopml artifacts new-key`` prints one)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def encoded(self) -> str:
        """The key as base64 text, the form ``LOOPML_ENCRYPTION_KEY`` and key files take."""
        return base64.b64encode(self.secret).decode("ascii")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The key new objects are encrypted with, plus older keys that may still decrypt."""

    current: MasterKey
    previous: tuple[MasterKey, ...] = ()

    def find(self, key_id: bytes) -> MasterKey | None:
        """The key with that id, or None when this ring does not hold it."""
        for key in (self.current, *self.previous):
            if hmac.compare_digest(key.key_id, key_id):
                return key
        return None


def parse_key(text: str | bytes, *, source: str) -> MasterKey:
    """A key from base64 text (or 32 raw bytes); InvalidValueError naming ``source``, never the value."""
    raw = text if isinstance(text, bytes) else text.encode("ascii", "replace")
    if len(raw) == KEY_BYTES and not _looks_base64(raw):
        return MasterKey(raw)
    try:
        secret = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValueError(f"{source} is not a base64-encoded {KEY_BYTES}-byte key.") from None
    if len(secret) != KEY_BYTES:
        raise InvalidValueError(f"{source} must decode to {KEY_BYTES} bytes, got {len(secret)}.")
    return MasterKey(secret)


def read_key_file(path: str, *, source: str) -> MasterKey:
    """The key held in the file at ``path``."""
    try:
        with open(path, "rb") as handle:
            content = handle.read(4096)
    except OSError as exc:
        raise InvalidValueError(f"Cannot read the key file named by {source} ({exc.strerror}).") from None
    return parse_key(content, source=source)


def keyring_from_env(environ: Mapping[str, str] | None = None) -> Keyring | None:
    """The keyring the environment configures, or None when encryption is off."""
    env = os.environ if environ is None else environ
    current: MasterKey | None = None
    if env.get(KEY_ENV):
        current = parse_key(env[KEY_ENV], source=KEY_ENV)
    elif env.get(KEY_FILE_ENV):
        current = read_key_file(env[KEY_FILE_ENV], source=KEY_FILE_ENV)
    if current is None:
        return None
    previous: tuple[MasterKey, ...] = ()
    if env.get(PREVIOUS_KEY_FILE_ENV):
        previous = (read_key_file(env[PREVIOUS_KEY_FILE_ENV], source=PREVIOUS_KEY_FILE_ENV),)
    return Keyring(current, previous)


def _looks_base64(raw: bytes) -> bool:
    try:
        return len(base64.b64decode(raw.strip(), validate=True)) == KEY_BYTES
    except (binascii.Error, ValueError):
        return False
