"""Applied feature definitions, cached in the process: no registry read on the request path.

The prediction path asks for features many times a second; reading the view definitions from the metadata store
each time is what makes Feast's online latency grow with the number of views (feast#3442). Here the definitions
are loaded once and reloaded only when ``store.features.feature_definitions_version()`` (an integer that grows
with every apply) has changed; that version is itself asked at most once per ``check_every`` seconds, so a busy
server costs the metadata store one small query every few seconds, whatever its request rate.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.features.sources import Source

if TYPE_CHECKING:
    import duckdb

    from loopml.features.definitions import FeatureService, FeatureView, ServiceSpec
    from loopml.store import Store

#: Seconds between two looks at the definitions' version (``LOOPML_FEATURES_CHECK_EVERY`` overrides).
CHECK_EVERY = 2.0


@dataclass(frozen=True)
class Definitions:
    """One consistent snapshot of the applied views and services, and the resolutions computed from it."""

    version: int
    views: dict[str, FeatureView]
    services: dict[str, FeatureService | ServiceSpec]
    resolved: dict[Any, list[tuple[FeatureView, list[str]]]] = field(default_factory=dict)

    def resolve(
        self, features: Sequence[str] | None, service: str | None, *, full_names: bool = False
    ) -> list[tuple[FeatureView, list[str]]]:
        """``references.resolve`` against this snapshot, memoised (the same request resolves once)."""
        from loopml.features.references import resolve

        memo_key = (tuple(features) if features is not None else None, service, full_names)
        found = self.resolved.get(memo_key)
        if found is None:
            found = resolve(features, service, views=self.views, services=self.services, full_names=full_names)
            if len(self.resolved) < 1024:
                self.resolved[memo_key] = found
        return found


class DefinitionsCache:
    """The applied definitions of one store, refreshed when their version changes.

    ``loads`` counts full reads of the definitions and ``checks`` the version queries, so tests (and
    ``/metrics``) can see that requests do not reach the registry.
    """

    def __init__(
        self, store: Store, *, check_every: float = CHECK_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Definitions | None = None
        self._checked_at = float("-inf")
        self.loads = 0
        self.checks = 0

    def get(self) -> Definitions:
        """The current snapshot; looks at the version only when ``check_every`` seconds have passed."""
        current = self._current
        now = self._clock()
        if current is not None and now - self._checked_at < self._check_every:
            return current
        with self._lock:
            if self._current is not None and now - self._checked_at < self._check_every:
                return self._current
            self.checks += 1
            version = self._store.features.feature_definitions_version()
            self._checked_at = now
            if self._current is None or self._current.version != version:
                self._current = self._load(version)
            return self._current

    def invalidate(self) -> None:
        """Look at the version on the next ``get`` (after this process applied definitions itself)."""
        self._checked_at = float("-inf")

    def _load(self, version: int) -> Definitions:
        from loopml.features.definitions import ServiceSpec

        self.loads += 1
        part = self._store.features
        views = {record.name: view_from_spec(record.spec) for record in part.list_feature_views()}
        services: dict[str, FeatureService | ServiceSpec] = {
            record.name: ServiceSpec.from_dict(record.spec) for record in part.list_feature_services()
        }
        return Definitions(version, views, services)


def view_from_spec(spec: Mapping[str, Any]) -> FeatureView:
    """A view from its stored JSON; one whose source lives in another process gets a detached source.

    Serving needs only the keys, schema and ttl; the detached source refuses to be read with a clear error.
    """
    from loopml.errors import FeatureSourceError
    from loopml.features.definitions import Entity, FeatureView

    try:
        return FeatureView.from_dict(spec)
    except FeatureSourceError:
        return FeatureView(
            spec["name"],
            [Entity.from_dict(e) for e in spec["entities"]],
            DetachedSource(dict(spec["source"])),
            timestamp=spec["timestamp"],
            ttl=spec["ttl"],
            schema=spec["schema"],
            description=spec.get("description", ""),
            tags=spec.get("tags") or {},
        )


_caches: weakref.WeakKeyDictionary[Any, DefinitionsCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(store: Store) -> DefinitionsCache:
    """The process-wide cache of ``store``'s definitions (one per Store object)."""
    import os

    with _caches_lock:
        cache = _caches.get(store)
        if cache is None:
            every = float(os.environ.get("LOOPML_FEATURES_CHECK_EVERY") or CHECK_EVERY)
            cache = _caches[store] = DefinitionsCache(store, check_every=every)
        return cache


def definitions_for(store: Store) -> Definitions:
    """The current snapshot of ``store``'s applied definitions (cached)."""
    return cache_for(store).get()


class DetachedSource(Source):
    """The source of a view applied with a DataFrame in another process: known by its JSON, not readable here."""

    kind = "detached"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def to_dict(self) -> dict[str, Any]:
        return dict(self.spec)

    def describe(self) -> str:
        return f"{self.spec.get('kind', 'unknown')} source of another process"

    def _raw(
        self, con: duckdb.DuckDBPyConnection, view: FeatureView, name: str, start: datetime | None, end: datetime | None
    ) -> None:
        from loopml.errors import FeatureSourceError

        raise FeatureSourceError(
            f"Feature view {view.name!r}: its {self.describe()} cannot be read here; apply the view again in this "
            "process, or use a FileSource or SqlSource."
        )
