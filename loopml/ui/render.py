"""Render a UI page: a template under ``loopml/templates/ui/`` plus what every page's frame needs."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from loopml.templates import environment
from loopml.ui.guard import current_session
from loopml.ui.sessions import CSRF_HEADER


def page(request: Request, template: str, *, title: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``ui/<template>`` rendered with the page frame's context (title, who is logged in, the CSRF header)."""
    session = current_session(request)
    principal = getattr(request.state, "principal", None)
    frame = {
        "title": title,
        "auth": getattr(request.app.state, "authenticator", None) is not None,
        "user": None if principal is None else f"{principal.name} ({principal.role.value})",
        # htmx sends these with every request it makes (hx-headers on <body>): the CSRF token of the session
        "hx_headers": {} if session is None else {CSRF_HEADER: session.csrf_token},
    }
    html = environment().get_template(f"ui/{template}").render(**frame, **context)
    return HTMLResponse(html, status_code=status_code)
