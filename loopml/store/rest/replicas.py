"""Serving replica heartbeats over HTTP (``/api/v1/serving/replicas``)."""

from __future__ import annotations

from urllib.parse import quote

from loopml.entities.scale import Replica
from loopml.store.replicas import ReplicaStore, check_replica, check_replica_id
from loopml.store.rest.http import HttpSession


class RestReplicaStore(ReplicaStore):
    """The replicas a loopml server knows of."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    def heartbeat_replica(self, replica: Replica) -> None:
        check_replica(replica)
        body = {"address": replica.address, "hostname": replica.hostname, "pid": replica.pid,
                "started_at": replica.started_at, "last_seen": replica.last_seen,
                "serving": {k: list(v) for k, v in replica.serving.items()}}  # fmt: skip
        self._http.call("PUT", f"/serving/replicas/{quote(replica.replica_id, safe='')}", json_body=body)

    def list_replicas(self, *, seen_since: int | None = None) -> list[Replica]:
        params = {} if seen_since is None else {"seen_since": int(seen_since)}
        return [Replica(**r) for r in self._http.call("GET", "/serving/replicas", params=params)]

    def remove_replica(self, replica_id: str) -> None:
        check_replica_id(replica_id)
        self._http.call("DELETE", f"/serving/replicas/{quote(replica_id, safe='')}")
