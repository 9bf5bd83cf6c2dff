"""Copy the latest feature values per entity key from a view's source into the online store, in bounded memory.

DuckDB scans the view's source (``sources.scan``: parquet and DataFrames in place, SQL streamed) and reduces it
to the latest row per entity key with a hash aggregate (``arg_max`` over the event time) that spills to disk past
its memory limit; the result is handed out ``batch_rows`` keys at a time and each batch is written in one atomic
call. Memory stays bounded whatever the range, and each key is written once (reducing each source chunk on its
own would write a key once per chunk it appears in). The online store keeps, per key, the newest of what it had
and what arrives (``OnlineStore.write``). A failure part-way (a source row that does not cast, the store going
away) leaves each key at its old row or at a consistently newer one, and does not move the view's watermark, so
running the same materialization again finishes the job. ``reduce_batch`` reduces one Arrow batch the same way
in Python (``push`` uses it).

The watermark (the time up to which a view is materialized) lives in the online store beside the rows it
describes; ``materialize_incremental(end)`` continues each view from it (or from ``end - ttl`` the first time:
older values would be stale on arrival).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Sequence
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


def latest_rows(
    view: FeatureView,
    start: datetime | None,
    end: datetime,
    *,
    batch_rows: int = 200_000,
    memory_limit: str = "1GB",
) -> Generator[tuple[WriteBatch, int], None, None]:
    """The latest row per entity key of ``view``'s rows in ``[start, end)``, ``batch_rows`` keys at a time.

    DuckDB scans the source and keeps one row per key (``arg_max`` over the event time, a hash aggregate that
    spills to disk past ``memory_limit``), then hands the result out in batches: memory stays bounded whatever
    the range, and each key is written once. Yields each batch with the number of source rows it stands for.
    """
    import shutil

    from loopml.features.sources import connect, scan

    features = view.features
    keys = ", ".join(f'"{k}"' for k in view.join_keys)
    packed = ", ".join(f'"{f}" := "{f}"' for f in features)
    con, spill = connect(memory_limit)
    try:
        scan(con, view, "src", start=start, end=end, features=features)
        reader = con.sql(
            f"SELECT {keys}, epoch_us(max(__ts)) AS __ts, arg_max(struct_pack({packed}), __ts) AS __v, "
            f"count(*) AS __n FROM src GROUP BY {keys}"
        ).to_arrow_reader(batch_rows)
        for batch in reader:
            if batch.num_rows == 0:
                continue
            key_columns = [batch.column(k).to_pylist() for k in view.join_keys]
            yield (
                WriteBatch(
                    view=view.name,
                    join_keys=tuple(view.join_keys),
                    keys=list(zip(*key_columns, strict=True)),
                    values=batch.column("__v").to_pylist(),
                    event_times=batch.column("__ts").to_pylist(),
                ),
                sum(batch.column("__n").to_pylist()),
            )
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def materialize_view(
    view: FeatureView,
    online: OnlineStore,
    start: datetime | None,
    end: datetime,
    *,
    batch_rows: int = 200_000,
    progress: Progress | None = None,
) -> MaterializeResult:
    """Materialize one view's rows with ``start <= time < end``; the watermark moves to ``end`` on success.

    ``progress`` is called after each written batch with the number of keys it held.
    """
    import duckdb
    import pyarrow as pa

    began = time.perf_counter()
    rows = written = keys = 0
    batches = latest_rows(view, start, end, batch_rows=batch_rows)
    try:
        for batch, covered in batches:
            written += online.write(batch)
            rows += covered
            keys += len(batch.keys)
            if progress is not None:
                progress(view.name, len(batch.keys))
    except (duckdb.Error, pa.ArrowException, OSError) as exc:  # DuckDB errors reach the Arrow reader as OSError
        raise FeatureSourceError(
            f"Feature view {view.name!r}: reading its source failed after {keys} keys were written "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); what was written is consistent, run again."
        ) from exc
    finally:
        batches.close()  # release DuckDB and its spill folder now
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
