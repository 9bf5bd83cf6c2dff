"""Training/serving skew and feature freshness: what the model was served online against the offline truth.

The ``feature_skew`` check of a monitor takes the current window of the prediction log (requests by entity key log
the entity keys with the feature values used, see ``loopml.serving.entities``), asks the offline store for the
same features of the same keys as of each request's time (``get_historical_features``, a point-in-time join) and
counts, per feature, the rows whose online value differs from the offline one. A share above
``feature_skew_max`` (default 0.01) alerts: the online store served values that training would not have seen
(a stale or failed materialization, a push that disagrees with the source, a transformation that differs).

It also reports each view's materialization lag (now minus the time up to which it is materialized, read from the
online store) and alerts above ``materialization_lag_max_s`` when that threshold is set.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.entities.monitoring import AlertSpec

if TYPE_CHECKING:
    import pandas as pd

    from loopml.store import Store

DEFAULT_SKEW_MAX = 0.01
#: Relative tolerance below which two float values count as equal (encodings round-trip floats exactly).
TOLERANCE = 1e-9


def _same(online: Any, offline: Any) -> bool:
    online_missing = online is None or (isinstance(online, float) and math.isnan(online))
    offline_missing = offline is None or (isinstance(offline, float) and math.isnan(offline))
    if online_missing or offline_missing:
        return online_missing and offline_missing
    if isinstance(online, int | float) and isinstance(offline, int | float):
        return abs(float(online) - float(offline)) <= TOLERANCE * max(1.0, abs(float(offline)))
    if hasattr(offline, "isoformat") and isinstance(online, str):
        return bool(online == offline.isoformat())
    return bool(online == offline)


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def compare(store: Store, rows: pd.DataFrame) -> dict[str, Any]:
    """Per feature found in ``rows`` (logged values with their keys and ``time``): rows compared and mismatched."""
    from loopml.features.cache import definitions_for
    from loopml.features.offline import get_historical_features

    views = definitions_for(store).views
    owner: dict[str, str] = {}
    figures: dict[str, Any] = {}
    for view in views.values():
        if "time" not in rows.columns or not set(view.join_keys) <= set(rows.columns):
            continue
        wanted = [f for f in view.features if f in rows.columns and f not in owner]
        if not wanted:
            continue
        owner.update(dict.fromkeys(wanted, view.name))
        subset = rows.dropna(subset=view.join_keys)
        if subset.empty:
            continue
        entity_df = subset[view.join_keys].copy()
        entity_df["event_timestamp"] = subset["time"].to_numpy()
        offline = get_historical_features(entity_df, features=[f"{view.name}:{f}" for f in wanted], client=store)
        for feature in wanted:
            pairs = zip(subset[feature].tolist(), offline[feature].tolist(), strict=True)
            mismatched = sum(not _same(_plain(a), _plain(b)) for a, b in pairs)
            figures[feature] = {
                "view": view.name,
                "compared": len(subset),
                "mismatched": mismatched,
                "share": mismatched / len(subset),
            }
    return figures


def lags(views: list[str]) -> dict[str, float | None]:
    """Seconds since each view's materialized-up-to time (None: never materialized), from the online store."""
    from loopml.features.online import open_online_store

    online = open_online_store()
    try:
        now = datetime.now(UTC)
        found: dict[str, float | None] = {}
        for view in views:
            watermark = online.get_watermark(view)
            found[view] = None if watermark is None else max(0.0, (now - watermark).total_seconds())
        return found
    finally:
        online.close()


def feature_skew(
    store: Store, rows: pd.DataFrame, *, skew_max: float | None, lag_max_s: float | None
) -> tuple[dict[str, Any], list[AlertSpec]]:
    """The check's figures (per feature skew, the worst share, lags per view) and its alerts."""
    per_feature = compare(store, rows)
    views = sorted({f["view"] for f in per_feature.values()})
    lag = lags(views) if views else {}
    worst = max((f["share"] for f in per_feature.values()), default=0.0)
    figures: dict[str, Any] = {"features": per_feature, "skew_share": worst, "materialization_lag_s": lag}
    alerts: list[AlertSpec] = []
    limit = DEFAULT_SKEW_MAX if skew_max is None else skew_max
    skewed = {name: f for name, f in per_feature.items() if f["share"] > limit}
    if skewed:
        shown = ", ".join(f"{name} {f['share']:.1%}" for name, f in list(skewed.items())[:5])
        alerts.append(
            AlertSpec(
                "feature_skew",
                f"{len(skewed)} feature(s) served online differ from their offline values (threshold {limit:.1%}): "
                f"{shown}",
                {"skewed": skewed, "threshold": limit},
            )
        )
    if lag_max_s is not None:
        late = {view: seconds for view, seconds in lag.items() if seconds is None or seconds > lag_max_s}
        if late:
            text = ", ".join(f"{v} {'never' if s is None else f'{s:.0f}s'}" for v, s in late.items())
            alerts.append(
                AlertSpec(
                    "feature_freshness",
                    f"feature views materialized too long ago (threshold {lag_max_s:g}s): {text}",
                    {"late": late, "threshold_s": lag_max_s},
                )
            )
    if not per_feature:
        figures["notes"] = ["no logged column is a feature of an applied view with its join keys"]
    return figures, alerts
