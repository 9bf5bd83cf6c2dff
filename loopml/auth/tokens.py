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
from typing import TYPE_CHECKING, TypeVar

from loopml.auth.audit import default_actor
from loopml.entities.auth import ApiToken, IssuedToken, Role
from loopml.errors import AuthenticationError, InvalidValueError, PermissionDeniedError, TooManyRequestsError
from loopml.store.secrets import split_token
from loopml.store.tokens import check_role

if TYPE_CHECKING:
    from loopml.store import Store

#: How long a checked token is trusted without asking the store again (scrypt costs ~50 ms a check).
CACHE_SECONDS = 5.0
#: How long a rejected token is refused without a new check (a flood of one wrong secret costs one hash).
REJECT_SECONDS = 5.0
#: Token checks (a scrypt hash each: ~50 ms of CPU, 16 MiB) running at once in one process, at most.
CHECK_SLOTS = 2
#: How long a request waits for a free check slot before it is answered 429.
SLOT_WAIT_SECONDS = 0.5
_CACHE_ENTRIES = 10_000
_V = TypeVar("_V")
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
    """Checks presented tokens against the store, remembering answers briefly and bounding the expensive checks.

    A check the caches cannot answer costs a database read and a scrypt hash (~50 ms, 16 MiB), the
    same for a known and an unknown token id. So that such checks cannot be used to stall a server:

    - a good token is remembered for ``cache_seconds`` and a rejected one for ``reject_seconds``, both
      keyed by a sha256 of the token (the process never keeps a plaintext token longer than a request),
      so repeating a token, right or wrong, costs no new hash;
    - at most ``slots`` checks run at once; a request waits up to ``wait_s`` for a slot (in
      ``aauthenticate`` without holding a thread or the event loop), then gets TooManyRequestsError (429);
      a good token whose cache entry expired renews in ``slots`` slots of its own, which only tokens
      that passed before can take;
    - a header that is not shaped like a token is refused before any of that.

    Cached tokens never need a slot, so valid clients keep their latency during a flood of wrong
    secrets. A revoked token keeps working here for at most ``cache_seconds`` (other processes and
    workers included); a rejected token cannot become valid, so remembering rejections is always safe.
    """

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = CACHE_SECONDS,
        reject_seconds: float = REJECT_SECONDS,
        slots: int = CHECK_SLOTS,
        wait_s: float = SLOT_WAIT_SECONDS,
    ) -> None:
        if slots < 1:
            raise InvalidValueError(f"slots must be at least 1, not {slots}.")
        self._store = store
        self._cache_seconds = cache_seconds
        self._reject_seconds = reject_seconds
        self._wait_s = wait_s
        self._slots = threading.BoundedSemaphore(slots)
        self._renewals = threading.BoundedSemaphore(slots)
        self._good: dict[bytes, tuple[float, ApiToken]] = {}
        self._rejected: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> ApiToken:
        """The token an ``Authorization`` header carries, or AuthenticationError (401) / TooManyRequestsError (429)."""
        token, key = _presented(authorization)
        known = self._remembered(key)
        if known is not None:
            return known
        slots = self._pool(key)
        if not slots.acquire(timeout=self._wait_s):
            raise _busy()
        try:
            found = self._store.tokens.authenticate(token)
        finally:
            slots.release()
        return self._remember(key, found)

    async def aauthenticate(self, authorization: str | None) -> ApiToken:
        """``authenticate`` for the event loop: cache hits answer inline, the store check runs in a thread."""
        token, key = _presented(authorization)
        known = self._remembered(key)
        if known is not None:
            return known
        from starlette.concurrency import run_in_threadpool  # servers only: the CLI imports this module too

        slots = self._pool(key)
        if not await self._take_slot(slots):
            raise _busy()
        try:
            found = await run_in_threadpool(self._store.tokens.authenticate, token)
        finally:
            slots.release()
        return self._remember(key, found)

    def forget(self) -> None:
        """Drop every cached good token (after a revocation through this process)."""
        with self._lock:
            self._good.clear()

    def _pool(self, key: bytes) -> threading.BoundedSemaphore:
        """The renewal slots for a token that passed before (its cache entry expired), else the shared ones.

        A flood of new tokens fills the shared slots; tokens known to be good renew on their own,
        so a valid client is not turned away (or kept waiting) every ``cache_seconds`` during a flood.
        """
        with self._lock:
            renewing = key in self._good
        return self._renewals if renewing else self._slots

    async def _take_slot(self, slots: threading.BoundedSemaphore) -> bool:
        """A check slot within ``wait_s``; polls with growing pauses so waiters hold no thread.

        A threading semaphore (not an asyncio one) because the sync ``authenticate`` shares the
        slots and the app may run on more than one event loop (TestClient starts one per client).
        """
        import anyio

        if slots.acquire(blocking=False):
            return True
        deadline = time.monotonic() + self._wait_s
        pause = 0.002
        while (remaining := deadline - time.monotonic()) > 0:
            await anyio.sleep(min(pause, remaining))
            if slots.acquire(blocking=False):
                return True
            pause = min(pause * 2, 0.05)
        return False

    def _remembered(self, key: bytes) -> ApiToken | None:
        """The cached good token for ``key``, AuthenticationError for a cached rejection, else None."""
        now = time.monotonic()
        with self._lock:
            good = self._good.get(key)
            rejected_until = self._rejected.get(key)
        if good is not None and good[0] > now:
            return good[1]
        if rejected_until is not None and rejected_until > now:
            raise AuthenticationError(_MISSING)
        return None

    def _remember(self, key: bytes, found: ApiToken | None) -> ApiToken:
        now = time.monotonic()
        with self._lock:
            if found is None:
                self._good.pop(key, None)
                _put(self._rejected, key, now + self._reject_seconds)
            elif self._cache_seconds > 0:
                _put(self._good, key, (now + self._cache_seconds, found))
        if found is None:
            raise AuthenticationError(_MISSING)
        return found


def _presented(authorization: str | None) -> tuple[str, bytes]:
    """The bearer token and its cache key; AuthenticationError when there is none or it is not shaped like one."""
    token = bearer_token(authorization)
    if token is None or split_token(token) is None:
        raise AuthenticationError(_MISSING)
    return token, hashlib.sha256(token.encode()).digest()


def _put(cache: dict[bytes, _V], key: bytes, value: _V) -> None:
    """Insert, dropping the oldest entries past ``_CACHE_ENTRIES`` (entries share one lifetime, so oldest first)."""
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > _CACHE_ENTRIES:
        del cache[next(iter(cache))]


def _busy() -> TooManyRequestsError:
    return TooManyRequestsError(
        "The server is busy checking other API tokens; retry in a second (a token it has checked is answered at once).",
        retry_after=1,
    )


def require_role(token: ApiToken, needed: Role, action: str) -> None:
    """PermissionDeniedError (403) unless ``token``'s role includes ``needed``.

    The message names the action and the roles, never the object acted on,
    so a 403 says nothing about what exists.
    """
    if not token.role.allows(needed):
        raise PermissionDeniedError(
            f"Token {token.name!r} has role {token.role.value!r}; {action} needs {needed.value!r} or above."
        )
