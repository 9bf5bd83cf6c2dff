"""Request and response bodies of the API-token routes (secrets appear only in ``IssuedTokenOut``)."""

from __future__ import annotations

from loopml.entities.auth import Role
from loopml.server.schemas.common import Int64, Schema


class ApiTokenOut(Schema):
    token_id: str
    name: str
    role: Role
    created_at: Int64
    created_by: str
    revoked_at: Int64 | None


class IssueTokenIn(Schema):
    name: str
    role: Role
    actor: str


class IssuedTokenOut(Schema):
    token: ApiTokenOut
    secret: str


class RevokeTokenIn(Schema):
    actor: str
