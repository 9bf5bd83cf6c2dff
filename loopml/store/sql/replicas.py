"""Serving replica heartbeats in SQL: one row per replica, upserted by each heartbeat."""

from __future__ import annotations

import json

from sqlalchemy import Engine, delete, select, update

from loopml.entities.scale import Replica
from loopml.store.replicas import ReplicaStore, check_replica, check_replica_id
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import AnyRow, read_statement, write_transaction


def _replica(row: AnyRow) -> Replica:
    return Replica(row.replica_id, row.address, row.hostname, row.pid, row.started_at, row.last_seen,
                   json.loads(row.serving_json))  # fmt: skip


class SqlReplicaStore(ReplicaStore):
    """Replicas in the metadata database; the first heartbeat and a clean stop are audited."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def heartbeat_replica(self, replica: Replica) -> None:
        check_replica(replica)
        serving = json.dumps({k: list(v) for k, v in replica.serving.items()}, sort_keys=True)
        c = t.serving_replicas.c
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                update(t.serving_replicas)
                .where(c.replica_id == replica.replica_id)
                .values(last_seen=replica.last_seen, serving_json=serving, address=replica.address)
            )
            if done.rowcount:
                return
            conn.execute(
                t.serving_replicas.insert().values(
                    replica_id=replica.replica_id, address=replica.address, hostname=replica.hostname,
                    pid=replica.pid, started_at=replica.started_at, last_seen=replica.last_seen, serving_json=serving,
                )
            )  # fmt: skip
            append_event(
                conn, actor=f"replica {replica.replica_id}", action="serving.replica.started", target_type="replica",
                target=replica.replica_id, after={"address": replica.address, "hostname": replica.hostname,
                                                  "pid": replica.pid},
            )  # fmt: skip

    def list_replicas(self, *, seen_since: int | None = None) -> list[Replica]:
        c = t.serving_replicas.c
        query = select(t.serving_replicas).order_by(c.address, c.replica_id)
        if seen_since is not None:
            query = query.where(c.last_seen >= int(seen_since))
        with read_statement(self._engine) as conn:
            return [_replica(row) for row in conn.execute(query)]

    def remove_replica(self, replica_id: str) -> None:
        check_replica_id(replica_id)
        with write_transaction(self._engine) as conn:
            gone = conn.execute(delete(t.serving_replicas).where(t.serving_replicas.c.replica_id == replica_id))
            if gone.rowcount:
                append_event(conn, actor=f"replica {replica_id}", action="serving.replica.stopped",
                             target_type="replica", target=replica_id)  # fmt: skip
