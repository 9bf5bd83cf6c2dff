"""Point-in-time joins for training data: the value each feature had when each entity row happened.

For every row of the entity frame (join keys and a timestamp), and every
requested view, the result holds the latest value at or before the row's
time and no older than the view's ttl (a value exactly ttl old counts), and
nulls where there is none; never a value from the future. The result has
exactly one row per entity row, in the input's order, with every input column
kept (rows sharing a key and a timestamp stay separate rows). Where a source
holds several rows for one key at one timestamp, the one read last wins
(for parquet: files in name order, rows in file order).

The engine is DuckDB's ASOF JOIN: it sorts both sides by key and time and
merges them in one pass, in parallel and out of core (past ``memory_limit`` it
spills to a temporary folder), reading parquet and DataFrames in place. Only
the join keys and timestamps of the entity frame go into DuckDB; the features
come back as Arrow columns placed beside the caller's frame by row number.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import EntityFrameError, FeatureSourceError
from loopml.features.definitions import FeatureView
from loopml.features.references import output_name
from loopml.features.sources import DUCK_TYPES, connect, scan

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa  # type: ignore[import-untyped]

#: ``DataFrame.attrs`` key of a result: ``{view name: version}`` of the views that produced it.
FEATURE_VIEWS_ATTR = "loopml.feature_views"
_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_NUMERIC |= {"FLOAT", "DOUBLE"}


def _entity_times(entity_df: pd.DataFrame, column: str) -> tuple[Any, bool]:
    """The entity timestamps as naive-UTC ``datetime64[ns]`` values, and whether they carried a timezone."""
    import pandas as pd

    series = entity_df[column]
    if not isinstance(series.dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(series.dtype):
        try:
            series = pd.to_datetime(series, format="ISO8601")
        except (ValueError, TypeError) as exc:
            detail = (
                "mixes naive and tz-aware timestamps" if "tz" in str(exc).lower() else "holds values that are not times"
            )
            raise EntityFrameError(f"Entity frame column {column!r} {detail}.") from None
    aware = isinstance(series.dtype, pd.DatetimeTZDtype)
    if aware:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        return series.astype("datetime64[ns]").to_numpy(), aware
    except (ValueError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        raise EntityFrameError(f"Entity frame column {column!r} holds times outside the years 1678-2261.") from None


def _family(duck_type: str) -> str:
    if duck_type in _NUMERIC or duck_type.startswith("DECIMAL"):
        return "number"
    return duck_type


def _check_frame(
    entity_df: Any, requested: Sequence[tuple[FeatureView, list[str]]], timestamp: str, full_names: bool
) -> list[str]:
    import pandas as pd

    if not isinstance(entity_df, pd.DataFrame):
        raise EntityFrameError(f"entity_df must be a pandas DataFrame, got {type(entity_df).__name__}.")
    if timestamp not in entity_df.columns:
        raise EntityFrameError(f"Entity frame has no timestamp column {timestamp!r}; pass timestamp='<column>'.")
    keys: list[str] = []
    for view, features in requested:
        for key in view.join_keys:
            if key not in entity_df.columns:
                raise EntityFrameError(f"Entity frame has no column {key!r}, a join key of feature view {view.name!r}.")
            if key not in keys:
                keys.append(key)
        for feature in features:
            out = output_name(view.name, feature, full_names=full_names)
            if out in entity_df.columns:
                raise EntityFrameError(
                    f"Entity frame already has a column {out!r}, which feature view {view.name!r} would add."
                )
    if timestamp in keys:
        raise EntityFrameError(f"Column {timestamp!r} cannot be both the timestamp and a join key.")
    return keys


def _register(
    con: duckdb.DuckDBPyConnection,
    requested: Sequence[tuple[FeatureView, list[str]]],
    aware: bool,
    timestamp: str,
) -> None:
    """Register every view's source as ``__src<i>``, checking its timestamps and join keys against the frame's."""
    entity_types = {str(r[0]): str(r[1]) for r in con.execute("DESCRIBE SELECT * FROM __entities").fetchall()}
    for i, (view, features) in enumerate(requested):
        found = scan(con, view, f"__src{i}", features=features)
        if found.aware is not None and found.aware != aware:
            raise EntityFrameError(
                f"Entity frame column {timestamp!r} is {'tz-aware' if aware else 'naive'}, but the timestamp column "
                f"{view.timestamp!r} of feature view {view.name!r} is {'tz-aware' if found.aware else 'naive'}; "
                "use the same kind on both sides."
            )
        source_types = {str(r[0]): str(r[1]) for r in con.execute(f'DESCRIBE SELECT * FROM "__src{i}"').fetchall()}
        for key in view.join_keys:
            mine, theirs = entity_types[key], source_types[key]
            if _family(mine) != _family(theirs) and '"NULL"' not in (mine, theirs):
                raise EntityFrameError(
                    f"Join key {key!r} is {mine} in the entity frame but {theirs} in the source of "
                    f"feature view {view.name!r}."
                )


def _view_sql(i: int, view: FeatureView, features: list[str], full_names: bool) -> str:
    """The ASOF LEFT JOIN of the entities with view ``i``: ``__row`` and the view's features, nulls past the ttl.

    Both sides compare ``(time, source order)`` pairs, the entity side with the largest order, so the
    match is the latest row at or before the entity's time and, among rows sharing that time, the last read.
    """
    on = " AND ".join(f'e."{k}" = f."{k}"' for k in view.join_keys)
    micros = round(view.ttl.total_seconds() * 1_000_000)
    fresh = f"f.__ts >= e.__ts - to_microseconds({micros}::BIGINT)"
    selects = ["e.__row"]
    for feature in features:
        out = output_name(view.name, feature, full_names=full_names)
        duck = DUCK_TYPES[view.schema[feature]]
        selects.append(f'CASE WHEN {fresh} THEN f."{feature}" ELSE NULL::{duck} END AS "{out}"')
    return (
        f"SELECT {', '.join(selects)} "
        f"FROM (SELECT *, {{'t': __ts, 'o': 9223372036854775807::BIGINT}} AS __at FROM __entities) AS e "
        f"ASOF LEFT JOIN (SELECT *, {{'t': __ts, 'o': __ord}} AS __at FROM \"__src{i}\") AS f "
        f"ON {on} AND e.__at >= f.__at"
    )


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with nullable integer and boolean columns (a missing value must not turn ints into floats)."""
    import pandas as pd
    import pyarrow as pa

    mapping = {
        pa.int64(): pd.Int64Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    frame: pd.DataFrame = table.to_pandas(types_mapper=mapping.get)
    return frame


def historical_join(
    entity_df: pd.DataFrame,
    requested: Sequence[tuple[FeatureView, list[str]]],
    *,
    timestamp: str = "event_timestamp",
    full_names: bool = False,
    memory_limit: str = "2GB",
    threads: int | None = None,
) -> pd.DataFrame:
    """The point-in-time join of ``entity_df`` with ``requested`` views' features (no store involved).

    EntityFrameError for a missing join key or timestamp column, mixed naive and tz-aware times, or a
    key whose type differs from the source's; FeatureSourceError for a source missing a declared column
    or holding the wrong type.
    """
    import duckdb
    import numpy as np
    import pandas as pd

    keys = _check_frame(entity_df, requested, timestamp, full_names)
    times, aware = _entity_times(entity_df, timestamp)
    narrow = pd.DataFrame({k: entity_df[k].to_numpy() for k in keys})
    narrow["__ts"] = times
    narrow["__row"] = np.arange(len(entity_df), dtype=np.int64)
    con, spill = connect(memory_limit, threads)
    try:
        con.register("__entity_frame", narrow)
        con.execute(
            "CREATE TEMP VIEW __entities AS SELECT * REPLACE (CAST(__ts AS TIMESTAMP_NS) AS __ts) FROM __entity_frame"
        )
        _register(con, requested, aware, timestamp)
        result = entity_df.copy()
        # one view at a time: DuckDB holds one view's sorted rows at once, never all of them
        for i, (view, features) in enumerate(requested):
            try:
                table = con.sql(_view_sql(i, view, features, full_names)).to_arrow_table()
            except duckdb.Error as exc:  # e.g. a source time outside TIMESTAMP_NS's range
                detail = str(exc).strip().splitlines()[0][:300]
                raise FeatureSourceError(f"Feature view {view.name!r}: its source cannot be joined: {detail}") from None
            frame = _to_pandas(table.sort_by("__row").drop_columns(["__row"]))
            for column in frame.columns:
                values = frame[column]
                result[column] = values.to_numpy() if values.dtype.kind in "fM" else values.array
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return result


def get_historical_features(
    entity_df: pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    service: str | None = None,
    timestamp: str = "event_timestamp",
    full_names: bool = False,
    memory_limit: str = "2GB",
    threads: int | None = None,
    as_arrow: bool = False,
    client: Any = None,
) -> pd.DataFrame | pa.Table:
    """Training data: ``entity_df`` with each requested feature's value as of each row's ``timestamp``.

    ``features`` lists ``"view:feature"`` strings; ``service`` names an applied feature service
    (exactly one of the two). The definitions are the latest applied ones; the result's
    ``attrs["loopml.feature_views"]`` maps each view to the version used, which ``run.log_dataset``
    records so that a model's lineage reaches its feature definitions. ``as_arrow`` returns a
    ``pyarrow.Table`` instead of a DataFrame.

    Example:
        >>> train = loopml.get_historical_features(orders, ["customer_stats:orders_7d"])  # doctest: +SKIP
    """
    from loopml.features.catalog import Catalog

    catalog = Catalog.load(client)
    requested = catalog.resolve(features, service, full_names=full_names)
    result = historical_join(
        entity_df, requested, timestamp=timestamp, full_names=full_names, memory_limit=memory_limit, threads=threads
    )
    result.attrs[FEATURE_VIEWS_ATTR] = {view.name: catalog.versions[view.name] for view, _ in requested}
    if as_arrow:
        import pyarrow as pa

        table = pa.Table.from_pandas(result, preserve_index=False)
        views = json.dumps(result.attrs[FEATURE_VIEWS_ATTR], sort_keys=True).encode()
        return table.replace_schema_metadata({**(table.schema.metadata or {}), FEATURE_VIEWS_ATTR.encode(): views})
    return result
