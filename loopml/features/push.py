"""``push``: write fresh feature values straight into the online store (a stream, a webhook, a job's output).

The frame must hold the view's join keys, its timestamp column and every feature; the features are cast to their
declared dtypes (FeatureSourceError naming the column otherwise), each key keeps its latest row, and the online
store's newest-wins rule means a push never overwrites a value observed later than the one pushed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.errors import FeatureSourceError, FeatureViewNotFoundError, did_you_mean
from loopml.features.materialize import reduce_batch
from loopml.features.online.base import OnlineStore

if TYPE_CHECKING:
    import pandas as pd

    from loopml.features.definitions import FeatureView
    from loopml.store import Store

_ARROW = {
    "int64": "int64",
    "int32": "int32",
    "float64": "float64",
    "float32": "float32",
    "string": "string",
    "bool": "bool",
}


def push(
    view: str | FeatureView,
    df: pd.DataFrame,
    *,
    store: Store | None = None,
    online: OnlineStore | None = None,
) -> int:
    """Write ``df``'s latest row per key of ``view`` to the online store; returns the number of keys replaced.

    Example: ``loopml.push("customers", pd.DataFrame({"customer_id": [42], "event_time": [now], "orders_7d": [3]}))``.
    Naive timestamps are UTC.
    """
    import pandas as pd
    import pyarrow as pa  # type: ignore[import-untyped]

    from loopml.features.cache import definitions_for
    from loopml.features.online_features import default_stores

    if store is None or online is None:
        default_store, default_online = default_stores()
        store, online = store or default_store, online or default_online
    if isinstance(view, str):
        views = definitions_for(store).views
        if view not in views:
            raise FeatureViewNotFoundError(f"No feature view {view!r} has been applied.{did_you_mean(view, views)}")
        view = views[view]
    if not isinstance(df, pd.DataFrame):
        raise FeatureSourceError(f"push to feature view {view.name!r} needs a pandas DataFrame.")
    columns = [*view.join_keys, view.timestamp, *view.features]
    for column in columns:
        if column not in df.columns:
            raise FeatureSourceError(f"Feature view {view.name!r}: the pushed frame has no column {column!r}.")
    if df.empty:
        return 0
    arrays = {k: pa.array(df[k], from_pandas=True) for k in view.join_keys}
    try:
        times = pd.to_datetime(df[view.timestamp], utc=True)
    except (TypeError, ValueError) as exc:
        raise FeatureSourceError(
            f"Feature view {view.name!r}: pushed column {view.timestamp!r} is not a timestamp ({exc})."
        ) from None
    arrays[view.timestamp] = pa.array(times, type=pa.timestamp("us", "UTC"))
    for feature in view.features:
        dtype = view.schema[feature]
        target = pa.timestamp("us", "UTC") if dtype == "timestamp" else pa.type_for_alias(_ARROW[dtype])
        values = pd.to_datetime(df[feature], utc=True) if dtype == "timestamp" else df[feature]
        try:
            arrays[feature] = pa.array(values, from_pandas=True).cast(target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
            raise FeatureSourceError(
                f"Feature view {view.name!r}: pushed column {feature!r} does not hold {dtype} values."
            ) from None
    batch = pa.RecordBatch.from_pydict(arrays)
    return online.write(reduce_batch(view, batch, view.features))
