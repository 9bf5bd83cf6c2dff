"""Store definitions in the metadata store: versioned, audited, and guarded against breaking a model.

``apply_features([customer, customer_stats, churn_service])`` stores each
definition (and the entities and views the others name) as a new version when
its fingerprint changed. A change that would break a model trained on the
view (a feature removed or retyped, other join keys or timestamp column) is
refused while a registered model version uses the view, unless
``force=True``; a model version uses a view when its run logged a dataset
produced by ``get_historical_features`` from it (the run's
``loopml.feature_view.<view>`` tag). A forced change is audited with the
breaking changes and the model versions it affects.

``load_definitions(path)`` runs a Python file of definitions, as ``python
path`` would: it is the user's own code, run in the user's own process, never
on the server, which only ever receives the resulting JSON.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loopml.entities.features import FeatureDefinitionRecord
from loopml.errors import FeatureChangeRefusedError, FeatureDefinitionError, NotFoundError
from loopml.features.catalog import default_store
from loopml.features.definitions import Entity, FeatureService, FeatureView, FeatureViewProjection
from loopml.store import Store

#: Run tag prefix recording which feature view versions a run's datasets came from.
VIEW_TAG_PREFIX = "loopml.feature_view."


def collect(definitions: Iterable[Any]) -> tuple[list[Entity], list[FeatureView], list[FeatureService]]:
    """Entities, views and services to apply, including those that views and services name, each once.

    FeatureDefinitionError when two different definitions share a name, or something is not a definition.
    """
    entities: dict[str, Entity] = {}
    views: dict[str, FeatureView] = {}
    services: dict[str, FeatureService] = {}

    def add(table: dict[str, Any], item: Any, what: str) -> None:
        old = table.get(item.name)
        if old is not None and old.fingerprint() != item.fingerprint():
            raise FeatureDefinitionError(f"Two different {what}s are named {item.name!r} in one apply.")
        table[item.name] = item

    def add_view(view: FeatureView) -> None:
        for entity in view.entities:
            add(entities, entity, "entity")
        add(views, view, "feature view")

    for item in definitions:
        if isinstance(item, Entity):
            add(entities, item, "entity")
        elif isinstance(item, FeatureView):
            add_view(item)
        elif isinstance(item, FeatureViewProjection):
            add_view(item.view)
        elif isinstance(item, FeatureService):
            for view in item.views:
                add_view(view)
            add(services, item, "feature service")
        else:
            raise FeatureDefinitionError(
                f"Cannot apply a {type(item).__name__}: pass Entity, FeatureView and FeatureService objects."
            )
    return list(entities.values()), list(views.values()), list(services.values())


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What in view spec ``new`` breaks a model trained on ``old``: removed or retyped features, keys, timestamp."""

    def keys(spec: Mapping[str, Any]) -> list[str]:
        return [key for entity in spec.get("entities", []) for key in entity.get("join_keys", [])]

    changes: list[str] = []
    if keys(old) != keys(new):
        changes.append(f"join keys {keys(old)} -> {keys(new)}")
    if old.get("timestamp") != new.get("timestamp"):
        changes.append(f"timestamp column {old.get('timestamp')!r} -> {new.get('timestamp')!r}")
    old_schema, new_schema = old.get("schema", {}), new.get("schema", {})
    for feature, dtype in old_schema.items():
        if feature not in new_schema:
            changes.append(f"feature {feature!r} removed")
        elif new_schema[feature] != dtype:
            changes.append(f"feature {feature!r} {dtype} -> {new_schema[feature]}")
    return changes


def models_using(view: str, client: Any = None) -> list[str]:
    """``models:/name/version`` of every registered model version whose training data came from ``view``."""
    from loopml.tracking.search import parse_filter

    store = default_store(client)
    query = parse_filter(f"tags.`{VIEW_TAG_PREFIX}{view}` like '%'")
    run_ids: list[str] = []
    token: str | None = None
    while True:
        page = store.tracking.search_runs(None, query, [], 1000, token)
        run_ids.extend(run.run_id for run in page.runs)
        token = page.next_page_token
        if not token:
            break
    versions = store.registry.versions_of_runs(sorted(set(run_ids))) if run_ids else []
    return sorted(f"models:/{v.name}/{v.version}" for v in versions)


def _item(kind: str, spec: Mapping[str, Any], evidence: Mapping[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": kind, "name": spec["name"], "spec": dict(spec)}
    if evidence:
        item["evidence"] = dict(evidence)
    return item


def _latest_spec(store: Store, view: str) -> Mapping[str, Any] | None:
    try:
        return store.features.get_feature_view(view).spec
    except NotFoundError:
        return None


def apply_features(
    definitions: Sequence[Any], *, force: bool = False, actor: str | None = None, client: Any = None
) -> list[FeatureDefinitionRecord]:
    """Store ``definitions`` (entities, views, services) as new versions where they changed, in one transaction.

    Returns one record per stored definition (``changed`` tells new versions from unchanged ones).
    FeatureChangeRefusedError for a breaking change to a view a registered model version uses,
    unless ``force``.

    Example:
        >>> loopml.apply_features([customer, customer_stats, churn_features])  # doctest: +SKIP
    """
    from loopml.config import default_actor

    if isinstance(definitions, (Entity, FeatureView, FeatureService)):
        definitions = [definitions]
    entities, views, services = collect(definitions)
    store = default_store(client)
    items = [_item("entity", entity.to_dict()) for entity in entities]
    for view in views:
        spec = view.to_dict()
        old = _latest_spec(store, view.name)
        changes = [] if old is None else breaking_changes(old, spec)
        evidence: dict[str, Any] | None = None
        if changes:
            users = models_using(view.name, store)
            if users and not force:
                raise FeatureChangeRefusedError(
                    f"Feature view {view.name!r}: {'; '.join(changes)} would break "
                    f"{', '.join(users[:5])}{' and more' if len(users) > 5 else ''}, trained on it; "
                    "apply with force=True (CLI: --force) to change it anyway."
                )
            evidence = {"breaking_changes": changes, "used_by": users, "forced": bool(users)}
        items.append(_item("view", spec, evidence))
    known = {view.name for view in views}
    for service in services:
        for name in (item.name for item in service.features):
            if name not in known and _latest_spec(store, name) is None:
                raise FeatureDefinitionError(f"Feature service {service.name!r} names view {name!r}, never applied.")
        items.append(_item("service", service.to_dict()))
    return store.features.apply_feature_definitions(items, actor=actor or default_actor())


def load_definitions(path: str | os.PathLike[str]) -> list[Entity | FeatureView | FeatureService]:
    """Run the Python file at ``path`` and return the Entity, FeatureView and FeatureService objects it defines.

    The file is the user's own code and runs with the user's rights, as ``python path`` would; its
    folder is importable while it runs, so it may import its neighbours.
    """
    file = Path(path)
    if file.suffix != ".py" or not file.is_file():
        raise FeatureDefinitionError(f"{file.name!r} is not a Python file of feature definitions.")
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)
    try:
        namespace = runpy.run_path(str(file), run_name="loopml_feature_definitions")
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    found = [v for k, v in namespace.items() if not k.startswith("_") and isinstance(v, (Entity, FeatureView, FeatureService))]
    if not found:
        raise FeatureDefinitionError(f"{file.name!r} defines no Entity, FeatureView or FeatureService.")
    return found
