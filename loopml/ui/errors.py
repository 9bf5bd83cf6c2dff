"""Errors on UI pages answer as pages: a person following a link sees the headline and the message, not JSON.

Every UI router uses :class:`PageRoute`. A ``LoopMLError`` raised while a page
is built (an unknown run, a role too low) becomes an HTML page with the
error's own status when the request asks for HTML (a browser navigating);
requests made by scripts (chart data, htmx fragments) keep the API's JSON
answer. Server faults (5xx) are left to the server's handler, which shows
only the headline and an error id, so no path or credential reaches a page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from loopml.errors import LoopMLError


def wants_html(request: Request) -> bool:
    """A browser's navigation (``Accept: text/html``), not a script's fetch or an htmx swap."""
    return "text/html" in request.headers.get("accept", "") and request.headers.get("hx-request") != "true"


class PageRoute(APIRoute):
    """An APIRoute whose 4xx ``LoopMLError``s render ``ui/error.html`` for a browser."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except LoopMLError as exc:
                if exc.http_status >= 500 or not wants_html(request):
                    raise
                from loopml.ui.render import page  # render imports the guard, which imports this package's peers

                return page(
                    request, "error.html", title=f"{exc.headline} · loopml", status_code=exc.http_status,
                    headline=exc.headline, message=exc.message, status=exc.http_status,
                )  # fmt: skip

        return page_errors
