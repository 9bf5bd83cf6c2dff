"""API tokens: admins issue, list and revoke them; any token may ask who it is."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status

from loopml.auth.guard import actor_for, authorize, needs
from loopml.auth.tokens import Authenticator
from loopml.entities.auth import Role
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.schemas.tokens import ApiTokenOut, IssuedTokenOut, IssueTokenIn, RevokeTokenIn

router = APIRouter(tags=["tokens"])
admin = APIRouter(tags=["tokens"], dependencies=[Depends(authorize)], route_class=AuthorizedRoute)


@router.get("/tokens/me", summary="The token this request carries (401 when it is missing, unknown or revoked)")
async def whoami(request: Request, store: StoreDep) -> ApiTokenOut:
    state = request.app.state
    authenticator: Authenticator | None = getattr(state, "authenticator", None)
    if authenticator is None:
        # auth off: still bounded (slots, remembered rejections), but good tokens are not cached,
        # so a revocation through any process shows here at once (what RestTokenStore promises)
        authenticator = getattr(state, "token_checker", None)
        if authenticator is None:
            authenticator = state.token_checker = Authenticator(store, cache_seconds=0)
    return ApiTokenOut.model_validate(await authenticator.aauthenticate(request.headers.get("authorization")))


@admin.post("/tokens", status_code=status.HTTP_201_CREATED)
@needs(Role.ADMIN)
def issue_token(body: IssueTokenIn, store: StoreDep, request: Request) -> IssuedTokenOut:
    issued = store.tokens.issue_token(body.name, body.role, actor=actor_for(request, body.actor) or body.actor)
    return IssuedTokenOut.model_validate(issued)


@admin.get("/tokens")
@needs(Role.ADMIN)
def list_tokens(store: StoreDep, include_revoked: bool = False) -> list[ApiTokenOut]:
    return [ApiTokenOut.model_validate(t) for t in store.tokens.list_tokens(include_revoked=include_revoked)]


@admin.post("/tokens/{name}/revoke")
@needs(Role.ADMIN)
def revoke_token(name: str, body: RevokeTokenIn, store: StoreDep, request: Request) -> ApiTokenOut:
    revoked = store.tokens.revoke_token(name, actor=actor_for(request, body.actor) or body.actor)
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is not None:
        authenticator.forget()
    return ApiTokenOut.model_validate(revoked)
