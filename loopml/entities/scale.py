"""What scaling out records: a named lease (one leader among agents) and a running serving replica."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Lease:
    """``holder`` owns lease ``name`` until ``expires_at`` (ms); ``epoch`` grows by one with each new holder.

    The epoch is a fencing token: work started under one epoch can tell, by reading the lease,
    that a newer leader has taken over since.
    """

    name: str
    holder: str
    epoch: int
    acquired_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Replica:
    """One running prediction service: where it listens and what it served at its last heartbeat.

    ``serving`` maps each model name to the versions its route sends traffic to (``{"iris": [3, 4]}``).
    """

    replica_id: str
    address: str
    hostname: str
    pid: int
    started_at: int
    last_seen: int
    serving: Mapping[str, Any]
