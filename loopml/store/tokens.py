"""The contract for API tokens: issue, list, revoke, and check one presented by a client."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from loopml.entities.auth import ApiToken, IssuedToken, Role
from loopml.errors import InvalidValueError


class TokenStore(ABC):
    """Issuing and revoking are audited (``token.create``, ``token.revoke``) with the acting user."""

    @abstractmethod
    def issue_token(self, name: str, role: Role, *, actor: str) -> IssuedToken:
        """Create a token; the secret is in the result and nowhere else."""

    @abstractmethod
    def list_tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        """Tokens by name (active ones only unless ``include_revoked``)."""

    @abstractmethod
    def revoke_token(self, name: str, *, actor: str) -> ApiToken:
        """Revoke the active token called ``name``; it stops working at once on this store."""

    @abstractmethod
    def authenticate(self, token: str) -> ApiToken | None:
        """The active token ``token`` is, or None (unknown, malformed, revoked or wrong secret).

        A well-formed token costs the same whether its id is known or not (one scrypt hash), so
        neither the answer nor its time tells a caller which ids exist.
        """


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_token_name(name: object) -> str:
    """Token names: 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidValueError(
            f"Invalid token name {name!r}: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit."
        )
    return name


def check_role(role: object) -> Role:
    """``role`` as a Role, or InvalidValueError naming the roles there are."""
    if isinstance(role, str):  # a role's value is a str, so nothing else can name one
        try:
            return Role(role)
        except ValueError:
            pass
    choices = ", ".join(r.value for r in Role)
    raise InvalidValueError(f"Unknown role {role!r}; choose one of {choices}.")
