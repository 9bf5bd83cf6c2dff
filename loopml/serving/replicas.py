"""A prediction service's heartbeat: who it is, where it listens, and what it serves, in the store.

Several ``loopml serve`` processes over one store (replicas behind a load balancer, or the
``--workers`` of one) each write one row every ``interval_s`` seconds: ``loopml deployments list``
then shows which replicas serve which versions, and how long ago each was seen. The heartbeat is
a daemon thread of its own: a store that is away only delays it (the error is logged and the next
beat tries again), and the request path never waits on it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace

from loopml.entities.scale import Replica
from loopml.store.replicas import ReplicaStore
from loopml.timestamps import now_ms

logger = logging.getLogger("loopml.serving")

#: a replica not seen for this many heartbeats is shown as gone
STALE_BEATS = 3


def replica_id() -> str:
    """A fresh id for this process's service: ``host-pid-random``."""
    host = "".join(c if c.isalnum() or c in ".-" else "-" for c in socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class ReplicaHeartbeat:
    """Writes this replica's row every ``interval_s``; ``serving()`` says what it routes to now."""

    def __init__(
        self,
        store: ReplicaStore,
        address: str,
        serving: Callable[[], Mapping[str, list[int]]],
        *,
        interval_s: float = 5.0,
    ) -> None:
        self.store = store
        self.serving = serving
        self.interval_s = interval_s
        self.replica = Replica(replica_id(), address, socket.gethostname()[:256] or "host", os.getpid(), now_ms(),
                               now_ms(), {})  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Write the row now; False (and a warning) when the store is away."""
        try:
            current = {name: list(versions) for name, versions in self.serving().items()}
            self.store.heartbeat_replica(replace(self.replica, last_seen=now_ms(), serving=current))
        except Exception as exc:  # the store is away for a while: serving goes on, the next beat retries
            logger.warning("Replica heartbeat of %s failed: %s", self.replica.replica_id, exc)
            return False
        return True

    def start(self) -> None:
        """Beat now, then every ``interval_s`` in a daemon thread."""
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="loopml-replica-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()

    def stop(self) -> None:
        """Stop beating and remove the row (a clean stop; a killed replica's row just ages)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.store.remove_replica(self.replica.replica_id)
        except Exception as exc:  # shutting down with the store away: the row ages out
            logger.warning("Could not remove replica %s from the store: %s", self.replica.replica_id, exc)
