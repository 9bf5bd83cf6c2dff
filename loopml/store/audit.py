"""The contract for the append-only audit log."""

from __future__ import annotations

from abc import ABC, abstractmethod

from loopml.entities.audit import AuditEvent


class AuditLog(ABC):
    """Reading the append-only log. Events are never edited or deleted (the SQL backend enforces it with triggers).

    There is no free-form write: every event is appended by the store method
    whose action it records, in that action's transaction, so an event can
    neither be forged nor recorded for something that did not happen.
    """

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
        newest_first: bool = False,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        """Events matching every given condition, oldest first (newest first with ``newest_first``).

        ``before_id`` keeps only events older than that event (the next page of a newest-first listing).

        ``target`` matches exactly or as a prefix followed by ``/`` or ``@``
        (so ``churn`` also finds ``churn/3`` and ``churn@champion``);
        ``action`` may end in ``*``.
        """
