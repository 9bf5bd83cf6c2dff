"""The REST backend: a Store whose every call is a request to a loopml server.

``open_rest_store("http://host:5000", "")`` is what ``open_store`` calls for
``http(s)://`` URLs. Tests pass ``client=TestClient(create_app(store))`` to
run through the real routes without a socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from loopml.store import Store


def open_rest_store(uri: str, artifacts_url: str, *, client: httpx.Client | None = None) -> Store:
    """A Store backed by the loopml server at ``uri``.

    ``artifacts_url`` is ignored: artifacts go through the server, which
    keeps them wherever it was configured to. ``client`` replaces the
    ``httpx.Client`` the store would otherwise create (and close).
    """
    from loopml.store import Store
    from loopml.store.rest.artifacts import RestArtifactStore
    from loopml.store.rest.audit import RestAuditLog
    from loopml.store.rest.features import RestFeatureStore
    from loopml.store.rest.http import HttpSession
    from loopml.store.rest.monitoring import RestLoopStore, RestMonitoringStore
    from loopml.store.rest.registry import RestRegistryStore
    from loopml.store.rest.replicas import RestReplicaStore
    from loopml.store.rest.serving import RestServingStore
    from loopml.store.rest.tokens import RestTokenStore
    from loopml.store.rest.tracking import RestTrackingStore

    del artifacts_url
    session = HttpSession(uri, client=client)
    return Store(
        tracking=RestTrackingStore(session),
        registry=RestRegistryStore(session),
        audit=RestAuditLog(session),
        artifacts=RestArtifactStore(session),
        tokens=RestTokenStore(session),
        serving=RestServingStore(session),
        monitoring=RestMonitoringStore(session),
        loop=RestLoopStore(session),
        features=RestFeatureStore(session),
        replicas=RestReplicaStore(session),
        url=uri,
        on_close=session.close,
    )


__all__ = ["open_rest_store"]
