"""``AuthorizedRoute``: a route class that checks the API token and role before FastAPI reads the body.

FastAPI reads and JSON-decodes a route's body before it solves the route's
dependencies, so ``Depends(authorize)`` alone answers a malformed body
with 422 (and reads a large one in full) before a missing token's 401 or a
viewer's 403. With this route class the check runs first: a caller
without the role gets its 401/403 whatever it sent, and its body is never
read. The dependency still runs (and finds the token in the caches); it is
what puts the principal on the request for routes of other classes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from loopml.auth.guard import authorize


class AuthorizedRoute(APIRoute):
    """An ``APIRoute`` whose handler runs ``authorize`` before the body is read or parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authorized(request: Request) -> Response:
            await authorize(request)  # raises the 401/403 (a LoopMLError), answered by the app's handlers
            return await handler(request)

        return authorized
