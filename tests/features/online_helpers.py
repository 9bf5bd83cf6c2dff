"""Helpers for the online tests: a parquet-backed view and applying definitions straight through the store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.features.definitions import Entity, FeatureService, FeatureView
from loopml.features.sources import FileSource

CUSTOMER = Entity("customer", join_keys=["customer_id"])


def parquet_view(tmp_path: Path, df: pd.DataFrame, name: str, schema: dict[str, str], ttl: str = "30d") -> FeatureView:
    """A view over ``df`` written to ``tmp_path/<name>.parquet``."""
    path = tmp_path / f"{name}.parquet"
    df.to_parquet(path, index=False)
    return FeatureView(name, [CUSTOMER], FileSource(str(path)), ttl=ttl, schema=schema)


def apply(store: Any, definitions: Sequence[FeatureView | FeatureService]) -> None:
    """Store the definitions (and their entities) as the apply API does."""
    items: list[dict[str, Any]] = []
    entities = {e.name: e for d in definitions if isinstance(d, FeatureView) for e in d.entities}
    items += [{"kind": "entity", "name": e.name, "spec": e.to_dict()} for e in entities.values()]
    for d in definitions:
        kind = "view" if isinstance(d, FeatureView) else "service"
        items.append({"kind": kind, "name": d.name, "spec": d.to_dict()})
    store.features.apply_feature_definitions(items, actor="test")
