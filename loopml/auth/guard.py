"""Role checks for FastAPI apps (the control-plane server and the prediction service).

Each route needs a role: ``viewer`` for reads, ``editor`` for writes, unless
the endpoint says otherwise with ``@needs(Role.X)``. ``authorize`` runs before
the route's body is parsed or any object is looked up, so a 401 or a 403
never reveals whether the object exists. Without an ``Authenticator`` on the
app (auth off) every request passes and the principal is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, TypeVar, overload

from fastapi import Depends, Request

from loopml.auth.tokens import Authenticator, require_role
from loopml.entities.audit import AuditEvent
from loopml.entities.auth import ApiToken, Role

F = TypeVar("F", bound=Callable[..., Any])
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def needs(role: Role) -> Callable[[F], F]:
    """Mark an endpoint as needing ``role`` (e.g. a POST that only searches needs ``viewer``)."""

    def mark(endpoint: F) -> F:
        endpoint.__loopml_role__ = role  # type: ignore[attr-defined]
        return endpoint

    return mark


def route_role(request: Request) -> Role:
    """The role the matched endpoint needs."""
    endpoint = request.scope.get("endpoint")
    marked = getattr(endpoint, "__loopml_role__", None)
    if isinstance(marked, Role):
        return marked
    return Role.VIEWER if request.method in _READ_METHODS else Role.EDITOR


async def authorize(request: Request) -> ApiToken | None:
    """Authenticate the request and check the route's role; the token lands on ``request.state.principal``."""
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        request.state.principal = None
        return None
    # cached tokens answer inline; one the caches have not seen waits for a bounded check slot (or 429)
    token = await authenticator.aauthenticate(request.headers.get("authorization"))
    needed = route_role(request)
    require_role(token, needed, f"{request.method} {request.url.path}")
    request.state.principal = token
    return token


def principal(request: Request) -> ApiToken | None:
    """The authenticated token of this request (None when auth is off)."""
    return getattr(request.state, "principal", None)


@overload
def actor_for(request: Request, claimed: str) -> str: ...
@overload
def actor_for(request: Request, claimed: str | None) -> str | None: ...
def actor_for(request: Request, claimed: str | None) -> str | None:
    """The actor to record: the token's name when auth is on (a client cannot claim another), else ``claimed``."""
    token = principal(request)
    return token.name if token is not None else claimed


def ensure_role(request: Request, needed: Role, action: str) -> None:
    """A check inside a route whose role depends on its body (a transition to production needs admin)."""
    token = principal(request)
    if token is not None:
        require_role(token, needed, action)


def sees_token_events(token: ApiToken | None) -> bool:
    """Whether ``token`` may read audit events about tokens (admins, or anyone with auth off), as GET /tokens."""
    return token is None or token.role.allows(Role.ADMIN)


def reveals_token_id(event: AuditEvent) -> bool:
    """Whether ``event`` is about a token or carries a token id (the first half of every token) in its fields."""
    if event.target_type == "token" or event.action.startswith("token."):
        return True
    return any(isinstance(part, Mapping) and "token_id" in part for part in (event.before, event.after, event.evidence))


def visible_events(token: ApiToken | None, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """The audit events ``token`` may read: token events only for admins (the API and the UI both filter so)."""
    if sees_token_events(token):
        return list(events)
    return [e for e in events if not reveals_token_id(e)]


Authorized = Annotated[ApiToken | None, Depends(authorize)]
