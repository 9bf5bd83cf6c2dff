"""API tokens in SQL: one row per token holding its scrypt hash, never the secret."""

from __future__ import annotations

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from loopml.entities.auth import ApiToken, IssuedToken, Role
from loopml.errors import TokenAlreadyExistsError, TokenNotFoundError
from loopml.store import secrets
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import AnyRow, read_transaction, write_transaction
from loopml.store.tokens import TokenStore, check_role, check_token_name
from loopml.timestamps import now_ms


def _token(row: AnyRow) -> ApiToken:
    return ApiToken(row.token_id, row.name, Role(row.role), row.created_at, row.created_by, row.revoked_at)


class SqlTokenStore(TokenStore):
    """Tokens in the metadata database; each issue and revocation is an audit event in the same transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def issue_token(self, name: str, role: Role, *, actor: str) -> IssuedToken:
        check_token_name(name)
        role = check_role(role)
        token_id, secret, full = secrets.new_token()
        hashed = secrets.hash_secret(secret)
        now = now_ms()
        try:
            with write_transaction(self._engine) as conn:
                active = conn.execute(
                    select(t.api_tokens.c.token_id).where(t.api_tokens.c.name == name, t.api_tokens.c.revoked_at.is_(None))
                ).first()
                if active is not None:
                    raise TokenAlreadyExistsError(f"An active token named {name!r} exists; revoke it first.")
                conn.execute(
                    t.api_tokens.insert().values(
                        token_id=token_id, name=name, role=role.value, secret_hash=hashed, created_at=now, created_by=actor
                    )
                )
                append_event(
                    conn,
                    actor=actor,
                    action="token.create",
                    target_type="token",
                    target=name,
                    after={"token_id": token_id, "role": role.value},
                )
        except IntegrityError as exc:  # a concurrent issue of the same name won the race
            raise TokenAlreadyExistsError(f"An active token named {name!r} exists; revoke it first.") from exc
        return IssuedToken(ApiToken(token_id, name, role, now, actor), full)

    def list_tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        query = select(t.api_tokens).order_by(t.api_tokens.c.name, t.api_tokens.c.created_at)
        if not include_revoked:
            query = query.where(t.api_tokens.c.revoked_at.is_(None))
        with read_transaction(self._engine) as conn:
            return [_token(row) for row in conn.execute(query)]

    def revoke_token(self, name: str, *, actor: str) -> ApiToken:
        now = now_ms()
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(t.api_tokens).where(t.api_tokens.c.name == name, t.api_tokens.c.revoked_at.is_(None))
            ).first()
            if row is None:
                raise TokenNotFoundError(f"No active token named {name!r}.")
            conn.execute(update(t.api_tokens).where(t.api_tokens.c.token_id == row.token_id).values(revoked_at=now))
            append_event(
                conn,
                actor=actor,
                action="token.revoke",
                target_type="token",
                target=name,
                before={"token_id": row.token_id, "role": row.role},
            )
        return ApiToken(row.token_id, row.name, Role(row.role), row.created_at, row.created_by, now)

    def authenticate(self, token: str) -> ApiToken | None:
        parts = secrets.split_token(token) if isinstance(token, str) else None
        if parts is None:
            return None
        token_id, secret = parts
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(t.api_tokens).where(t.api_tokens.c.token_id == token_id)).first()
        # One scrypt whatever the row holds: an unknown or revoked id costs what a wrong secret costs.
        matches = secrets.verify_secret(secret, secrets.UNKNOWN_ID_HASH if row is None else row.secret_hash)
        if row is None or row.revoked_at is not None or not matches:
            return None
        return _token(row)
