"""Browser sessions of the web UI: an API token presented once, then an opaque cookie.

With auth on, the login page takes an API token, checks it with the app's
``Authenticator`` (the same check, cache and flood limits as the API) and
starts a session: a random 256-bit id in an ``HttpOnly``, ``SameSite=Strict``
cookie (``Secure`` over https) that expires after ``SESSION_TTL_S``. The
cookie carries nothing but that id; the server keeps, in memory, the token
it stands for and a per-session CSRF token. Every request re-checks the token
through the authenticator (a cache hit, so it costs nothing), so a revoked
token ends its sessions as soon as the authenticator stops accepting it.

Every state-changing request must carry the CSRF token in ``X-CSRF-Token``
(the pages set it on ``<body hx-headers=…>``, so htmx sends it with each
request); the cookie alone is never enough, so another site cannot act on a
user's behalf even where ``SameSite`` is not honoured.

Sessions live in the process: a restart logs everybody out, and a server
with several workers needs sticky routing for the UI (the API is unaffected).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

SESSION_COOKIE = "loopml_session"
CSRF_HEADER = "X-CSRF-Token"
#: An absolute lifetime: a session ends this long after login, however active.
SESSION_TTL_S = 8 * 3600
#: Bounds the memory sessions take; past it the oldest session is dropped first.
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One logged-in browser: the ``Authorization`` value it stands for and its CSRF token."""

    session_id: str
    authorization: str
    csrf_token: str
    expires_at: float


class SessionStore:
    """Sessions by id, in memory, thread-safe; expired ones are dropped on lookup and on insert."""

    def __init__(self, *, ttl_s: float = SESSION_TTL_S, max_sessions: int = MAX_SESSIONS) -> None:
        self._ttl_s = ttl_s
        self._max = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, authorization: str) -> Session:
        """A new session for a token that has already been authenticated."""
        now = time.monotonic()
        session = Session(
            session_id=secrets.token_urlsafe(32),
            authorization=authorization,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._ttl_s,
        )
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
                del self._sessions[key]
            while len(self._sessions) >= self._max:  # dicts keep insertion order: the first is the oldest
                del self._sessions[next(iter(self._sessions))]
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, expired or no cookie)."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= time.monotonic():
                del self._sessions[session_id]
                return None
        return session

    def end(self, session_id: str | None) -> None:
        """Forget a session (logout); unknown ids are ignored."""
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)

    @property
    def ttl_s(self) -> float:
        return self._ttl_s


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Whether ``presented`` is this session's CSRF token (compared in constant time)."""
    return presented is not None and hmac.compare_digest(session.csrf_token.encode(), presented.encode())
