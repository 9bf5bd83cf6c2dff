"""Serving replicas' heartbeats: one route per ReplicaStore method."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from loopml.entities.scale import Replica
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.schemas.common import Int64, JsonObject, Schema

router = APIRouter(tags=["serving"], route_class=AuthorizedRoute)


class ReplicaIn(Schema):
    address: str
    hostname: str
    pid: Int64
    started_at: Int64
    last_seen: Int64
    serving: dict[str, list[Int64]]


class ReplicaOut(Schema):
    replica_id: str
    address: str
    hostname: str
    pid: Int64
    started_at: Int64
    last_seen: Int64
    serving: JsonObject


@router.put("/serving/replicas/{replica_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def heartbeat_replica(replica_id: str, body: ReplicaIn, store: StoreDep) -> None:
    store.replicas.heartbeat_replica(Replica(replica_id, body.address, body.hostname, body.pid, body.started_at,
                                             body.last_seen, body.serving))  # fmt: skip


@router.get("/serving/replicas")
def list_replicas(store: StoreDep, seen_since: Annotated[Int64 | None, Query()] = None) -> list[ReplicaOut]:
    return [ReplicaOut.model_validate(r) for r in store.replicas.list_replicas(seen_since=seen_since)]


@router.delete("/serving/replicas/{replica_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove_replica(replica_id: str, store: StoreDep) -> None:
    store.replicas.remove_replica(replica_id)
