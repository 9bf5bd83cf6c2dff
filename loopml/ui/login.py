"""``/login`` and ``/logout``: trade an API token for a session cookie, and end it.

The login form posts the token once; it is checked by the app's
``Authenticator`` exactly as a bearer token would be (so a flood of guesses
meets the same limits as on the API) and never stored in the browser. A login
posted from another origin is refused, so a third-party page cannot log a
browser into someone else's session.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from loopml.auth.guard import needs
from loopml.auth.tokens import Authenticator
from loopml.entities.auth import Role
from loopml.errors import AuthenticationError, PermissionDeniedError
from loopml.ui.errors import PageRoute
from loopml.ui.guard import current_session, sessions_of
from loopml.ui.render import page
from loopml.ui.sessions import SESSION_COOKIE

#: A login form holds a token and a path; anything longer is not one.
MAX_LOGIN_BYTES = 8192

public = APIRouter(route_class=PageRoute)
#: Routes that need a session (included with the UI guard).
router = APIRouter(route_class=PageRoute)


def safe_next(value: str | None) -> str:
    """Where to go after login: a path on this site only (``/x``, never ``//host`` or ``https://…``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _same_origin(request: Request) -> bool:
    """False for a post a browser says came from another site (``Sec-Fetch-Site``, else ``Origin``).

    Our pages send ``Referrer-Policy: no-referrer``, under which browsers post ``Origin: null`` even
    from this site's own form, so ``null`` is left to ``Sec-Fetch-Site`` to decide.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


@public.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "/") -> Response:
    if getattr(request.app.state, "authenticator", None) is None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", title="Log in · loopml", next_url=safe_next(next), error=None)


@public.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        return RedirectResponse("/", status_code=303)
    if not _same_origin(request):
        raise PermissionDeniedError("A login must be posted from this site's own login page.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BYTES:
            raise AuthenticationError("That is not an API token.")
    form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4)
    token = (form.get("token") or [""])[0].strip()
    next_url = safe_next((form.get("next") or ["/"])[0])
    authorization = f"Bearer {token}"
    try:
        await authenticator.aauthenticate(authorization)
    except AuthenticationError:
        error = "That token was not accepted: check it, or ask an admin for a new one."
        return page(request, "login.html", title="Log in · loopml", status_code=401, next_url=next_url, error=error)
    session = sessions_of(request).start(authorization)
    answer = RedirectResponse(next_url, status_code=303)
    answer.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        max_age=int(sessions_of(request).ttl_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.post("/logout", include_in_schema=False)
@needs(Role.VIEWER)
def logout(request: Request) -> Response:
    session = current_session(request)
    sessions_of(request).end(None if session is None else session.session_id)
    # htmx follows HX-Redirect; a plain form post follows the 303
    answer = Response(status_code=204, headers={"HX-Redirect": "/login"})
    answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return answer
