"""API token secrets: their format and their scrypt hashes.

A token reads ``lml_<id>_<secret>``: the 12-hex-digit id finds the row, the
43-character random secret is checked against the row's scrypt hash in
constant time. Only the hash is stored, so a copy of the database does not
give anyone a working token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PREFIX = "lml_"
_TOKEN_RE = re.compile(r"^lml_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
#: scrypt cost: 2**14 x 8 x 1 is about 16 MiB and 30-60 ms a check (servers cache good tokens).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_DKLEN = 32


def new_token() -> tuple[str, str, str]:
    """A fresh ``(token_id, secret, full token)``."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"{PREFIX}{token_id}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, else None."""
    match = _TOKEN_RE.match(token)
    return (match.group(1), match.group(2)) if match else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


#: Checked in place of a row's hash when the token id is unknown or revoked, so every well-formed
#: token costs exactly one scrypt and the time of an answer does not tell whether an id exists.
#: No secret hashes to an all-zero digest, so it never matches.
UNKNOWN_ID_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(bytes(16))}${_b64(bytes(_DKLEN))}"


def scrypt(secret: bytes, *, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    """The one scrypt computation behind every token check (a seam: tests replace it to count or hold checks)."""
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=dklen)


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``secret``, with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=_DKLEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """True when ``secret`` hashes to ``stored`` (a ``hash_secret`` result)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
