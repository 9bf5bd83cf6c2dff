"""The UI's role check: a session instead of a bearer token, the API's roles, CSRF on every write.

``ui_authorize`` is a router dependency of every UI route but the login page
and the static files, so it runs before a route's parameters are parsed or any
object is looked up. Without auth (no ``Authenticator`` on the app) it lets
everything through, as the API does. With auth:

- no live session: a page (GET) answers 303 to ``/login?next=…``; anything
  else answers 401;
- a session whose token the authenticator no longer accepts is ended, then
  treated as no session;
- a state-changing request (not GET/HEAD/OPTIONS) without the session's CSRF
  token in ``X-CSRF-Token`` answers 403;
- then the route's role (``loopml.auth.guard.route_role``: viewer for reads,
  editor for writes, unless marked with ``@needs``) is checked, 403 if short.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from loopml.auth.guard import route_role
from loopml.auth.tokens import Authenticator, require_role
from loopml.errors import AuthenticationError, PermissionDeniedError
from loopml.ui.sessions import CSRF_HEADER, SESSION_COOKIE, Session, SessionStore, csrf_matches

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """Raised by ``ui_authorize`` for a page request without a session; answered with a redirect."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def login_redirect(_request: Request, exc: Exception) -> Response:
    """The exception handler for ``LoginRequired``: 303 to the login page, coming back afterwards."""
    next_url = exc.next_url if isinstance(exc, LoginRequired) else "/"
    return RedirectResponse(f"/login?next={quote(next_url, safe='/')}", status_code=303)


def sessions_of(request: Request) -> SessionStore:
    """The app's session store (created by ``loopml.ui.mount_ui``)."""
    sessions: SessionStore = request.app.state.ui_sessions
    return sessions


def current_session(request: Request) -> Session | None:
    """This request's session, once ``ui_authorize`` has run (None with auth off)."""
    return getattr(request.state, "ui_session", None)


async def ui_authorize(request: Request) -> None:
    """Check the session, the CSRF token and the route's role; see the module docstring."""
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    request.state.ui_session = None
    request.state.principal = None
    if authenticator is None:
        return
    sessions = sessions_of(request)
    session = sessions.get(request.cookies.get(SESSION_COOKIE))
    token = None
    if session is not None:
        try:
            token = await authenticator.aauthenticate(session.authorization)
        except AuthenticationError:  # revoked since login: the session dies with its token
            sessions.end(session.session_id)
            session = None
    if session is None or token is None:
        if request.method == "GET":
            query = request.url.query
            raise LoginRequired(request.url.path + (f"?{query}" if query else ""))
        raise AuthenticationError("Log in first: this page needs a session (open /login).")
    if request.method not in _READ_METHODS and not csrf_matches(session, request.headers.get(CSRF_HEADER)):
        raise PermissionDeniedError(f"{request.method} {request.url.path} needs the page's {CSRF_HEADER} header.")
    require_role(token, route_role(request), f"{request.method} {request.url.path}")
    request.state.ui_session = session
    request.state.principal = token
