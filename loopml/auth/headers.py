"""Security headers on every answer of both servers, ready for a web UI served from the same origin.

Every answer gets ``X-Content-Type-Options: nosniff``, ``Cache-Control:
no-store`` (answers to authenticated requests must not land in a shared or
browser cache; no answer of these APIs is worth caching), ``Referrer-Policy:
no-referrer`` and ``X-Frame-Options: DENY``. Answers that are not HTML get
``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` (a JSON
body opened in a browser runs nothing); HTML gets ``STRICT_CSP``: scripts,
styles, images and requests from this origin only, no inline script, no
plugins, no framing.

The one exception is the interactive API docs (``docs_paths``): FastAPI's
Swagger page loads its script and stylesheet from cdn.jsdelivr.net and starts
them with an inline script, so under ``STRICT_CSP`` a browser would show an
empty page. We keep that page working with ``DOCS_CSP``, which allows that one
CDN and inline script on those paths only. The page holds no data of ours but
the OpenAPI document, its requests still go to this origin only
(``connect-src 'self'``), and it cannot be framed. Everything else, the web UI
included, serves its assets itself and stays under ``STRICT_CSP``. (There is
no internet where the tests run, which changes nothing: the policy is sent,
not checked.)

A route that sets one of these headers itself keeps its own value. The
prediction fast lane (``loopml.serving.lane``) bypasses this middleware and
appends ``JSON_HEADERS`` to its answers, constant tuples built once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Header = tuple[bytes, bytes]

STRICT_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    b"default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
#: On every answer.
COMMON_HEADERS: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
#: What a JSON (or any non-HTML) answer carries, for code that writes its headers itself.
JSON_HEADERS: tuple[Header, ...] = (*COMMON_HEADERS, (b"content-security-policy", API_CSP))
_CSP = b"content-security-policy"


def secure_headers(headers: Iterable[Header], html_csp: bytes = STRICT_CSP) -> list[Header]:
    """``headers`` plus every security header it does not set itself (the CSP by content type)."""
    found = list(headers)
    present = {name.lower() for name, _ in found}
    found.extend(header for header in COMMON_HEADERS if header[0] not in present)
    if _CSP not in present:
        html = any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in found)
        found.append((_CSP, html_csp if html else API_CSP))
    return found


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the security headers to each response's start message; nothing else is touched."""

    def __init__(self, app: ASGIApp, *, docs_paths: Collection[str] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        html_csp = DOCS_CSP if scope["path"] in self.docs_paths else STRICT_CSP

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secure_headers(message.get("headers", ()), html_csp)}
            await send(message)

        await self.app(scope, receive, send_secured)
