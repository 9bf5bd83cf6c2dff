"""The contract for the append-only audit log."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from loopml.entities.audit import AuditEvent


class AuditLog(ABC):
    """Events are appended, never edited or deleted (the SQL backend enforces it with triggers)."""

    @abstractmethod
    def log_event(
        self,
        *,
        actor: str,
        action: str,
        target_type: str,
        target: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        reason: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event and return it with its id and time."""

    @abstractmethod
    def list_events(
        self,
        *,
        action: str | None = None,
        target_type: str | None = None,
        target: str | None = None,
        actor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        max_results: int = 1000,
    ) -> list[AuditEvent]:
        """Events matching every given condition, oldest first.

        ``target`` matches exactly or as a prefix followed by ``/`` or ``@``
        (so ``churn`` also finds ``churn/3`` and ``churn@champion``);
        ``action`` may end in ``*``.
        """
