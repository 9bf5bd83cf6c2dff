"""API tokens and the roles they carry."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a token may do; each role includes the ones before it.

    ``viewer`` reads (and may call a prediction service); ``editor`` also
    writes runs and registers models; ``admin`` also moves versions to
    production, decides approvals and manages tokens.
    """

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True when this role includes ``needed``."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token's public record; the secret itself is never stored, only its scrypt hash."""

    token_id: str
    name: str
    role: Role
    created_at: int
    created_by: str
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just created: ``secret`` is shown once and cannot be recovered afterwards."""

    token: ApiToken
    secret: str
