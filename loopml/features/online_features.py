"""``get_online_features``: the latest values of some features for some entity keys, fresh or missing.

The definitions come from the process cache (``loopml.features.cache``), so a request reads the registry never;
the values come from the online store in one round trip for every view and key asked for. A value whose event
time is older than its view's ttl comes back as missing (``None``) and is counted as stale; a key with no row is
counted as missing. Each row also carries, per view, the event time of the values it got.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import EntityFrameError, FeatureReferenceError, FeatureViewNotFoundError
from loopml.features.online.base import OnlineStore, ReadRequest

if TYPE_CHECKING:
    import pandas as pd

    from loopml.features.cache import Definitions
    from loopml.store import Store


@dataclass(frozen=True)
class OnlineFeatures:
    """Feature values per entity row, with their freshness.

    ``rows[i]`` holds entity row ``i``'s keys and one entry per feature (``None`` where missing or stale);
    ``event_times[i]`` maps each view to the event time of the values row ``i`` got from it (``None``: none);
    ``missing`` and ``stale`` count feature values that had no stored row, or one older than the view's ttl.
    """

    rows: list[dict[str, Any]]
    event_times: list[dict[str, datetime | None]]
    features: list[str]
    missing: int
    stale: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rows, event times as ISO strings, the counts."""
        return {
            "rows": self.rows,
            "event_times": [
                {view: None if t is None else t.isoformat() for view, t in times.items()} for times in self.event_times
            ],
            "features": self.features,
            "missing": self.missing,
            "stale": self.stale,
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row per entity row: its keys and the feature columns."""
        import pandas as pd

        return pd.DataFrame(self.rows)


def _timestamp(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def lookup(
    definitions: Definitions,
    online: OnlineStore,
    entity_rows: Sequence[Mapping[str, Any]],
    features: Sequence[str] | None = None,
    service: str | None = None,
    *,
    full_names: bool = False,
    now: datetime | None = None,
) -> OnlineFeatures:
    """The core of :func:`get_online_features`, against given definitions and online store (the serving path)."""
    if isinstance(entity_rows, Mapping) or not all(isinstance(row, Mapping) for row in entity_rows):
        raise EntityFrameError("entity_rows must be a list of objects such as {'customer_id': 42}.")
    resolved = definitions.resolve(features, service, full_names=full_names)
    requests: list[ReadRequest] = []
    for view, _ in resolved:
        keys: list[tuple[Any, ...]] = []
        for i, row in enumerate(entity_rows):
            try:
                keys.append(tuple(row[k] for k in view.join_keys))
            except KeyError as exc:
                raise EntityFrameError(
                    f"entity row {i} lacks join key {exc.args[0]!r} of feature view {view.name!r}."
                ) from None
        requests.append(ReadRequest(view.name, tuple(view.join_keys), keys))
    answers = online.read(requests)
    moment = now or datetime.now(UTC)
    out_rows: list[dict[str, Any]] = [dict(row) for row in entity_rows]
    times: list[dict[str, datetime | None]] = [{} for _ in entity_rows]
    names: list[str] = []
    missing = stale = 0
    for (view, wanted), found in zip(resolved, answers, strict=True):
        columns = [f"{view.name}__{f}" if full_names else f for f in wanted]
        names.extend(columns)
        stamps = [f for f in wanted if view.schema[f] == "timestamp"]
        for i, stored in enumerate(found):
            target = out_rows[i]
            if stored is None:
                missing += len(wanted)
                times[i][view.name] = None
                target.update(dict.fromkeys(columns))
                continue
            times[i][view.name] = stored.event_time
            if moment - stored.event_time > view.ttl:
                stale += len(wanted)
                target.update(dict.fromkeys(columns))
                continue
            values = stored.values
            for feature, column in zip(wanted, columns, strict=True):
                target[column] = values.get(feature)
            for feature in stamps:
                column = f"{view.name}__{feature}" if full_names else feature
                target[column] = _timestamp(target[column])
    return OnlineFeatures(out_rows, times, names, missing, stale)


_online: dict[str, OnlineStore] = {}
_online_lock = threading.Lock()


def default_stores() -> tuple[Store, OnlineStore]:
    """The process-wide client's metadata store, and the online store named by the environment (opened once)."""
    from loopml.features.catalog import default_store
    from loopml.features.online import default_online_url, open_online_store

    url = default_online_url()
    with _online_lock:
        online = _online.get(url)
        if online is None:
            online = _online[url] = open_online_store(url)
    return default_store(None), online


def get_online_features(
    entity_rows: Sequence[Mapping[str, Any]],
    features: Sequence[str] | None = None,
    service: str | None = None,
    *,
    full_names: bool = False,
    store: Store | None = None,
    online: OnlineStore | None = None,
) -> OnlineFeatures:
    """The latest values of ``features`` (``"view:feature"``) or of a ``service`` for each entity row.

    Example: ``loopml.get_online_features([{"customer_id": 42}], features=["customers:orders_7d"])``.
    Values older than their view's ttl come back as ``None`` and count in ``.stale``; keys never stored count
    in ``.missing``. EntityFrameError when a row lacks a join key; FeatureReferenceError for a bad reference.
    """
    from loopml.features.cache import cache_for

    if store is None or online is None:
        default_store, default_online = default_stores()
        store, online = store or default_store, online or default_online
    cache = cache_for(store)
    try:
        return lookup(cache.get(), online, entity_rows, features, service, full_names=full_names)
    except (FeatureViewNotFoundError, FeatureReferenceError):
        # perhaps applied a moment ago, before the cache looked at the version again: look now, once
        cache.invalidate()
        return lookup(cache.get(), online, entity_rows, features, service, full_names=full_names)
