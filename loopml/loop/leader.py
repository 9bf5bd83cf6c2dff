"""Leader election among loop agents: one lease row in the store, renewed while the leader lives.

Two agents over one store (``loopml loop run`` on two machines, for availability) must not both
act on an alert. Each agent asks for the lease ``loopml-agent`` at every tick and at every
heartbeat of a running task; the store gives it to one holder at a time, until its expiry
(``ttl_s``). When the leader dies, its lease runs out and the next agent to ask takes it with the
next epoch: failover takes at most ``ttl_s`` plus one tick interval. A leader that finds its lease
taken (it stalled longer than ``ttl_s``) stops its task at the next stage boundary, see
``loopml.loop.agent``. A lease row rather than a PostgreSQL advisory lock: it works on SQLite and
over REST the same way, survives a dropped connection, and the stored epoch and audit trail say who
led when.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from loopml.entities.scale import Lease
from loopml.errors import LoopMLError
from loopml.timestamps import now_ms

if TYPE_CHECKING:
    from loopml.store import Store

LEASE_NAME = "loopml-agent"
DEFAULT_TTL_S = 30.0

_log = logging.getLogger("loopml.loop")


class LeadershipLostError(LoopMLError):
    """Another agent took the lease while this one was running a task: the task stops here."""

    headline = "Leadership lost"


def holder_id() -> str:
    """A name for this agent process that no other agent shares: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leadership:
    """This agent's claim to the lease; ``ensure()`` takes or renews it and says whether it leads.

    Thread-safe: the agent's tick and its task heartbeat both call ``ensure()``. Once a lease this
    agent held has gone to another holder, ``lost`` stays set until the agent leads again.
    """

    def __init__(self, store: Store, *, ttl_s: float = DEFAULT_TTL_S, name: str = LEASE_NAME,
                 holder: str | None = None) -> None:  # fmt: skip
        self.store = store
        self.ttl_s = ttl_s
        self.name = name
        self.holder = holder or holder_id()
        self.lease: Lease | None = None
        self.lost = threading.Event()
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self.lease is not None

    def ensure(self) -> bool:
        """Take or renew the lease; True while this agent leads. A store error counts as not leading."""
        with self._lock:
            try:
                lease = self.store.loop.acquire_lease(self.name, self.holder, ttl_s=self.ttl_s)
            except LoopMLError as exc:  # the store is away: lead on while the lease we hold runs
                _log.warning("Could not renew the agent lease %r: %s", self.name, exc)
                lease = self.lease if self.lease is not None and self.lease.expires_at > now_ms() else None
            if lease is None and self.lease is not None:
                self.lost.set()
            elif lease is not None and (self.lease is None or lease.epoch != self.lease.epoch):
                self.lost.clear()
            self.lease = lease
            return lease is not None

    def check(self) -> None:
        """LeadershipLostError when another agent has taken the lease since this one took it."""
        if self.lost.is_set():
            raise LeadershipLostError(f"Agent {self.holder} lost the lease {self.name!r} to another agent.")

    def current(self) -> Lease | None:
        """The stored lease, whoever holds it."""
        return self.store.loop.get_lease(self.name)

    def release(self) -> None:
        """Let the lease go (a clean stop), so a follower takes over at its next tick."""
        with self._lock:
            if self.lease is not None:
                try:
                    self.store.loop.release_lease(self.name, self.holder)
                except LoopMLError as exc:
                    _log.warning("Could not release the agent lease %r: %s", self.name, exc)
            self.lease = None
