"""The applied definitions as one process sees them: the latest version of every view and service.

Views are rebuilt from their stored JSON only when a request names them, so
one view whose source cannot be rebuilt here (a DataFrame applied by another
process) does not stop requests for the others.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.entities.features import FeatureDefinitionRecord
from loopml.features.definitions import FeatureView, ServiceSpec
from loopml.features.references import resolve

if TYPE_CHECKING:
    from loopml.store import Store


def default_store(client: Any = None) -> Store:
    """``client``'s store (a Store or a TrackingClient), else the process-wide client's."""
    from loopml.store import Store

    if isinstance(client, Store):
        return client
    if client is not None:
        store: Store = client.store
        return store
    from loopml.tracking.fluent import get_tracking_client

    return get_tracking_client().store


class _Views(Mapping[str, FeatureView]):
    """Views by name, each rebuilt from its record on first access."""

    def __init__(self, records: Mapping[str, FeatureDefinitionRecord]) -> None:
        self._records = records
        self._built: dict[str, FeatureView] = {}

    def __getitem__(self, name: str) -> FeatureView:
        if name not in self._built:
            self._built[name] = FeatureView.from_dict(self._records[name].spec)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


@dataclass(frozen=True)
class Catalog:
    """The latest applied views (by name, with their versions) and services, read once."""

    views: Mapping[str, FeatureView]
    versions: Mapping[str, int]
    services: Mapping[str, ServiceSpec]
    version: int

    @classmethod
    def load(cls, client: Any = None) -> Catalog:
        """Read the definitions from the store of ``client`` (a Store, a TrackingClient or None: the default)."""
        store = default_store(client)
        version = store.features.feature_definitions_version()
        records = {r.name: r for r in store.features.list_feature_views()}
        services = {r.name: ServiceSpec.from_dict(r.spec) for r in store.features.list_feature_services()}
        return cls(_Views(records), {n: r.version for n, r in records.items()}, services, version)

    def resolve(
        self, features: Sequence[str] | None, service: str | None, *, full_names: bool = False
    ) -> list[tuple[FeatureView, list[str]]]:
        """Per view the features asked for (see ``references.resolve``)."""
        return resolve(features, service, views=self.views, services=self.services, full_names=full_names)
