"""Copy the latest feature values per entity key from a view's source into the online store, in bounded memory.

The source is streamed (``sources.iter_batches``: DuckDB hands out ``batch_rows`` rows at a time); each batch is
reduced to its latest row per key and written in one atomic call; the online store keeps, per key, the newest of
what it had and what arrives (``OnlineStore.write``), so the reduction over the whole range is exact without ever
holding more than one batch. A failure part-way (a source row that does not cast, the store going away) leaves
each key at its old row or at a consistently newer one, and does not move the view's watermark, so running the
same materialization again finishes the job.

The watermark (the time up to which a view is materialized) lives in the online store beside the rows it
describes; ``materialize_incremental(end)`` continues each view from it (or from ``end - ttl`` the first time:
older values would be stale on arrival).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loopml.errors import FeatureSourceError, InvalidValueError
from loopml.features.online.base import OnlineStore, WriteBatch

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]

    from loopml.features.definitions import FeatureView
    from loopml.store import Store

#: Called after each written batch with the view's name and the number of source rows it held.
Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class MaterializeResult:
    """What one view's materialization did."""

    view: str
    start: datetime | None
    end: datetime
    rows_read: int
    keys_written: int
    seconds: float


def reduce_batch(view: FeatureView, batch: pa.RecordBatch, features: Sequence[str]) -> WriteBatch:
    """The latest row per entity key of one batch, as a WriteBatch (ties: the later row of the batch wins)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    keys = view.join_keys
    ts_us = pc.cast(pc.cast(batch.column(view.timestamp), pa.timestamp("us", "UTC")), pa.int64())
    table = pa.table(
        {
            **{f"k{i}": batch.column(k) for i, k in enumerate(keys)},
            "__ts": ts_us,
            "__row": pa.array(np.arange(len(ts_us))),
        }
    )
    # last row per key in (time, position) order: sort, then keep the maximal row index per key
    ordered = table.sort_by([("__ts", "ascending"), ("__row", "ascending")])
    ordered = ordered.append_column("__pos", pa.array(np.arange(ordered.num_rows)))
    latest = ordered.group_by([f"k{i}" for i in range(len(keys))], use_threads=False).aggregate([("__pos", "max")])
    take = pc.take(ordered.column("__row"), latest.column("__pos_max")).combine_chunks()
    picked = batch.take(take)
    key_columns = [picked.column(k).to_pylist() for k in keys]
    return WriteBatch(
        view=view.name,
        join_keys=tuple(keys),
        keys=list(zip(*key_columns, strict=True)),
        values=picked.select(list(features)).to_pylist(),
        event_times=pc.take(ts_us, take).to_pylist(),
    )


def materialize_view(
    view: FeatureView,
    online: OnlineStore,
    start: datetime | None,
    end: datetime,
    *,
    batch_rows: int = 200_000,
    progress: Progress | None = None,
) -> MaterializeResult:
    """Materialize one view's rows with ``start <= time < end``; the watermark moves to ``end`` on success."""
    import duckdb
    import pyarrow as pa

    from loopml.features.sources import iter_batches

    began = time.perf_counter()
    rows = written = 0
    features = view.features
    batches = iter_batches(view, start, end, features, batch_rows=batch_rows)
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            written += online.write(reduce_batch(view, batch, features))
            rows += batch.num_rows
            if progress is not None:
                progress(view.name, batch.num_rows)
    except (
        duckdb.Error,
        pa.ArrowException,
        OSError,
    ) as exc:  # DuckDB errors surface through the Arrow reader as OSError
        raise FeatureSourceError(
            f"Feature view {view.name!r}: reading its source failed after {rows} rows "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); rows written so far are consistent, run again."
        ) from exc
    finally:
        close = getattr(batches, "close", None)  # a generator: release DuckDB and its spill folder now
        if close is not None:
            close()
    online.set_watermark(view.name, end)
    return MaterializeResult(view.name, start, end, rows, written, time.perf_counter() - began)


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise InvalidValueError(f"{what} must be a datetime, got {type(moment).__name__}.")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _views(store: Store, views: Iterable[str | FeatureView] | None) -> list[FeatureView]:
    from loopml.errors import FeatureViewNotFoundError, did_you_mean
    from loopml.features.cache import cache_for

    cache = cache_for(store)
    cache.invalidate()  # not a hot path: see definitions applied a moment ago (one version query)
    applied = cache.get().views  # a DataFrame-sourced view of another process fails when read
    if views is None:
        return list(applied.values())
    picked: list[FeatureView] = []
    for item in views:
        if isinstance(item, str):
            if item not in applied:
                raise FeatureViewNotFoundError(
                    f"No feature view {item!r} has been applied.{did_you_mean(item, applied)}"
                )
            picked.append(applied[item])
        else:
            picked.append(item)
    return picked


def materialize(
    start: datetime,
    end: datetime,
    views: Iterable[str | FeatureView] | None = None,
    *,
    store: Store | None = None,
    online: OnlineStore | None = None,
    batch_rows: int = 200_000,
    progress: Progress | None = None,
) -> list[MaterializeResult]:
    """Copy each view's latest values with event times in ``[start, end)`` into the online store.

    ``views`` are names or FeatureView objects (default: every applied view). Naive datetimes are UTC.
    Example: ``loopml.materialize(datetime(2026, 1, 1), datetime.now(UTC))``.
    """
    begin, finish = _aware(start, "start"), _aware(end, "end")
    if begin >= finish:
        raise InvalidValueError(f"start ({begin.isoformat()}) must be before end ({finish.isoformat()}).")
    meta, target = _stores(store, online)
    return [
        materialize_view(view, target, begin, finish, batch_rows=batch_rows, progress=progress)
        for view in _views(meta, views)
    ]


def materialize_incremental(
    end: datetime,
    views: Iterable[str | FeatureView] | None = None,
    *,
    store: Store | None = None,
    online: OnlineStore | None = None,
    batch_rows: int = 200_000,
    progress: Progress | None = None,
) -> list[MaterializeResult]:
    """Continue each view from its watermark (the first time: from ``end - ttl``) up to ``end``."""
    finish = _aware(end, "end")
    results: list[MaterializeResult] = []
    meta, target = _stores(store, online)
    for view in _views(meta, views):
        begin = target.get_watermark(view.name) or finish - view.ttl
        if begin >= finish:
            results.append(MaterializeResult(view.name, begin, finish, 0, 0, 0.0))
            continue
        results.append(materialize_view(view, target, begin, finish, batch_rows=batch_rows, progress=progress))
    return results


def _stores(store: Store | None, online: OnlineStore | None) -> tuple[Store, OnlineStore]:
    """The given stores, else the process-wide client's metadata store and the environment's online store."""
    from loopml.features.online_features import default_stores

    if store is None or online is None:
        default_store, default_online = default_stores()
        store, online = store or default_store, online or default_online
    return store, online
