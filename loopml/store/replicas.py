"""The contract for serving replicas: each running prediction service says what it serves, every few seconds.

A replica's first heartbeat is audited (``serving.replica.started``), as is a clean stop
(``serving.replica.stopped``); the heartbeats between are operational state, not decisions, and
only move ``last_seen``. A replica that was killed leaves its row behind with an old ``last_seen``:
readers ask for the replicas seen recently.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from loopml.entities.scale import Replica
from loopml.errors import InvalidValueError

_REPLICA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class ReplicaStore(ABC):
    """Heartbeats of running prediction services, one row per replica."""

    @abstractmethod
    def heartbeat_replica(self, replica: Replica) -> None:
        """Insert or refresh the replica's row (its ``last_seen`` and what it serves)."""

    @abstractmethod
    def list_replicas(self, *, seen_since: int | None = None) -> list[Replica]:
        """Replicas by address then id; only those seen at or after ``seen_since`` (ms) when given."""

    @abstractmethod
    def remove_replica(self, replica_id: str) -> None:
        """Forget a replica that stopped cleanly; nothing when it is unknown."""


def check_replica_id(value: object) -> str:
    if not isinstance(value, str) or not _REPLICA_ID.fullmatch(value):
        raise InvalidValueError(
            f"A replica id must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit; "
            f"got {value!r}."
        )
    return value


def check_replica(replica: Replica) -> Replica:
    """The replica once each field is checked (InvalidValueError naming the field at fault)."""
    check_replica_id(replica.replica_id)
    for what, value in (("address", replica.address), ("hostname", replica.hostname)):
        if not isinstance(value, str) or not value or len(value) > 256 or any(ord(c) < 32 for c in value):
            raise InvalidValueError(f"A replica {what} must be 1-256 printable characters, got {value!r}.")
    for what, number in (("pid", replica.pid), ("started_at", replica.started_at), ("last_seen", replica.last_seen)):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**63:
            raise InvalidValueError(f"A replica's {what} must be a whole number from 0, got {number!r}.")
    check_serving(replica.serving)
    return replica


def check_serving(serving: object) -> Mapping[str, Any]:
    """``{model name: [versions]}``: what a replica routes traffic to."""
    if not isinstance(serving, Mapping) or len(serving) > 100_000:
        raise InvalidValueError(f"A replica's serving must map model names to lists of versions, got {serving!r}.")
    for name, versions in serving.items():
        if (
            not isinstance(name, str)
            or not isinstance(versions, list | tuple)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in versions)
        ):
            raise InvalidValueError(
                f"A replica's serving must map model names to lists of versions, got {name!r}: {versions!r}."
            )
    return serving
