"""API tokens from Python: issue, list and revoke them, and check the one a request presents.

Example:
    >>> from loopml.store import open_store
    >>> store = open_store("sqlite:////tmp/loopml.db", artifacts_url="/tmp/artifacts")  # doctest: +SKIP
    >>> issued = create_token(store, "ci", "editor")  # doctest: +SKIP
    >>> issued.secret  # doctest: +SKIP
    'lml_3f9c0a1b2c4d_...'
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING

from loopml.auth.audit import default_actor
from loopml.entities.auth import ApiToken, IssuedToken, Role
from loopml.errors import AuthenticationError, PermissionDeniedError
from loopml.store.tokens import check_role

if TYPE_CHECKING:
    from loopml.store import Store

#: How long a checked token is trusted without asking the store again (scrypt costs ~50 ms a check).
CACHE_SECONDS = 5.0
_MISSING = "Missing or invalid API token: send 'Authorization: Bearer <token>' (the CLI and client read LOOPML_TOKEN)."


def create_token(store: Store, name: str, role: Role | str, *, actor: str | None = None) -> IssuedToken:
    """Issue a token; ``.secret`` is the only copy of it, so show it to the user once."""
    return store.tokens.issue_token(name, check_role(role), actor=actor or default_actor())


def list_tokens(store: Store, *, include_revoked: bool = False) -> list[ApiToken]:
    """Tokens by name; secrets are never listed, they are not stored."""
    return store.tokens.list_tokens(include_revoked=include_revoked)


def revoke_token(store: Store, name: str, *, actor: str | None = None) -> ApiToken:
    """Revoke the active token ``name``; servers refuse it within ``CACHE_SECONDS``."""
    return store.tokens.revoke_token(name, actor=actor or default_actor())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


class Authenticator:
    """Checks presented tokens against the store, remembering good ones for ``cache_seconds``.

    The cache is keyed by a sha256 of the token, so the process never keeps
    a plaintext token longer than a request; a revoked token keeps working
    here for at most ``cache_seconds`` (other processes and workers included).
    """

    def __init__(self, store: Store, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, ApiToken]] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> ApiToken:
        """The token an ``Authorization`` header carries, or AuthenticationError (401)."""
        token = bearer_token(authorization)
        if token is None:
            raise AuthenticationError(_MISSING)
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._store.tokens.authenticate(token)
        if found is None:
            with self._lock:
                self._cache.pop(key, None)
            raise AuthenticationError(_MISSING)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._cache_seconds, found)
        return found

    def forget(self) -> None:
        """Drop every cached token (after a revocation through this process)."""
        with self._lock:
            self._cache.clear()


def require_role(token: ApiToken, needed: Role, action: str) -> None:
    """PermissionDeniedError (403) unless ``token``'s role includes ``needed``.

    The message names the action and the roles, never the object acted on,
    so a 403 says nothing about what exists.
    """
    if not token.role.allows(needed):
        raise PermissionDeniedError(
            f"Token {token.name!r} has role {token.role.value!r}; {action} needs {needed.value!r} or above."
        )
