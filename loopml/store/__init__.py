"""Store contracts composed into one Store, and open_store() to get one by URL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from loopml.store.artifacts import ArtifactStore
from loopml.store.audit import AuditLog
from loopml.store.features import FeatureStore
from loopml.store.monitoring import LoopStore, MonitoringStore
from loopml.store.registry import RegistryStore
from loopml.store.replicas import ReplicaStore
from loopml.store.serving import ServingStore
from loopml.store.tokens import TokenStore
from loopml.store.tracking import TrackingStore


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Store:
    """Every per-domain store of one loopml installation.

    Example:
        >>> store = open_store("sqlite:////tmp/loopml.db", artifacts_url="/tmp/artifacts")
        >>> store.tracking.list_experiments()  # doctest: +SKIP
    """

    tracking: TrackingStore
    registry: RegistryStore
    audit: AuditLog
    artifacts: ArtifactStore
    tokens: TokenStore
    serving: ServingStore
    monitoring: MonitoringStore
    loop: LoopStore
    features: FeatureStore
    replicas: ReplicaStore
    url: str
    on_close: Callable[[], None] = field(default=_nothing, repr=False)

    def close(self) -> None:
        """Release connections; the Store must not be used afterwards."""
        self.on_close()


def open_store(tracking_uri: str | None = None, *, artifacts_url: str | None = None) -> Store:
    """Open the store at ``tracking_uri`` (default: from the environment).

    ``sqlite:///…`` and ``postgresql+psycopg://…`` open the SQL store directly,
    migrating its schema on first use; other schemes are looked up in
    ``loopml.store.schemes``.
    """
    from loopml.config import get_settings
    from loopml.store.schemes import resolve

    settings = get_settings()
    uri = tracking_uri or settings.tracking_uri
    return resolve(uri)(uri, artifacts_url or settings.artifacts_url)


__all__ = [
    "ArtifactStore",
    "AuditLog",
    "FeatureStore",
    "LoopStore",
    "MonitoringStore",
    "RegistryStore",
    "ReplicaStore",
    "ServingStore",
    "Store",
    "TokenStore",
    "TrackingStore",
    "open_store",
]
