"""Point-in-time correctness against a reference computed row by row in plain Python.

Random data on a coarse time grid (so ties and values exactly ``ttl`` old happen
often), rows written out of time order ("late" rows), keys the sources never
saw, null feature values, two views with different keys, a DataFrame source and
a folder of parquet files; every seed must match the reference exactly.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from loopml.features.apply import apply_features
from loopml.features.definitions import Entity, FeatureService, FeatureView
from loopml.features.offline import get_historical_features, historical_join
from loopml.features.sources import DataFrameSource, FileSource, SqlSource, iter_batches

CUSTOMER = Entity("customer", ["customer_id"])
STORE = Entity("shop", ["store_id"])
BASE = pd.Timestamp("2024-03-01")
SEEDS = range(20)


def random_case(seed: int, tmp_path, *, aware: bool = False):
    """Entity frame, the two views, and each view's source rows in source order."""
    rng = np.random.default_rng(seed)
    tz = "UTC" if aware else None

    def times(n):
        return (BASE + pd.to_timedelta(rng.integers(0, 30, n) * 10, unit="min")).tz_localize(tz)

    n_a = int(rng.integers(0, 60))
    rows_a = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 8, n_a),
            "event_time": times(n_a),
            "orders": pd.array(rng.integers(0, 100, n_a), dtype="Int64"),
            "spend": rng.normal(size=n_a).round(3),
        }
    )
    rows_a.loc[rng.random(n_a) < 0.15, "orders"] = pd.NA
    n_b = int(rng.integers(1, 60))
    rows_b = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 8, n_b),
            "store_id": rng.integers(0, 3, n_b),
            "event_time": times(n_b),
            "visits": rng.integers(0, 9, n_b),
            "segment": rng.choice(["a", "b", "c"], n_b),
        }
    )
    folder = tmp_path / f"visits-{seed}"
    folder.mkdir(parents=True)
    cut = int(rng.integers(0, n_b + 1))
    rows_b.iloc[:cut].to_parquet(folder / "part-0.parquet")
    rows_b.iloc[cut:].to_parquet(folder / "part-1.parquet")
    ttl_a = timedelta(minutes=10 * int(rng.integers(1, 8)))
    ttl_b = timedelta(minutes=10 * int(rng.integers(1, 8)))
    view_a = FeatureView(
        "orders_view", [CUSTOMER], DataFrameSource(rows_a), ttl=ttl_a, schema={"orders": "int64", "spend": "float64"}
    )
    view_b = FeatureView(
        "visits_view",
        [CUSTOMER, STORE],
        FileSource(str(folder)),
        ttl=ttl_b,
        schema={"visits": "int64", "segment": "string"},
    )
    n_e = int(rng.integers(1, 80))
    entity_df = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 10, n_e),
            "store_id": rng.integers(0, 4, n_e),
            "event_timestamp": times(n_e),
            "label": rng.integers(0, 2, n_e),
        },
        index=pd.Index(rng.permutation(n_e) + 1000, name="row"),
    )
    if n_e > 3:  # rows sharing a key and a timestamp must stay separate rows
        entity_df.iloc[1] = entity_df.iloc[0]
    return entity_df, [(view_a, rows_a, ["orders", "spend"]), (view_b, rows_b, ["visits", "segment"])]


def reference(entity_df: pd.DataFrame, views) -> pd.DataFrame:
    """The expected result, one entity row and one view at a time."""
    expected = entity_df.copy()
    for view, rows, features in views:
        columns: dict[str, list] = {f: [] for f in features}
        records = rows.to_dict("records")
        for _, entity in entity_df.iterrows():
            at = entity["event_timestamp"]
            best, best_pos = None, -1
            for pos, row in enumerate(records):
                if any(row[k] != entity[k] for k in view.join_keys):
                    continue
                if row["event_time"] > at or row["event_time"] < at - view.ttl:
                    continue
                if best is None or (row["event_time"], pos) >= (best["event_time"], best_pos):
                    best, best_pos = row, pos
            for feature in features:
                columns[feature].append(None if best is None else best[feature])
        for feature in features:
            dtype = {"int64": "Int64", "float64": "float64", "string": "str"}[view.schema[feature]]
            values = pd.array(columns[feature], dtype=object)
            expected[feature] = pd.Series(values, index=entity_df.index).astype(dtype)
    return expected


def check(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(result.index) == list(expected.index)
    assert list(result.columns) == list(expected.columns)
    for column in expected.columns:
        got, want = result[column], expected[column]
        missing = want.isna().to_numpy()
        assert (got.isna().to_numpy() == missing).all(), column
        assert [str(v) for v in got[~missing]] == [str(v) for v in want[~missing]], column


def test_matches_the_reference_for_many_seeds(tmp_path):
    for seed in SEEDS:  # odd seeds in UTC, even ones naive
        entity_df, views = random_case(seed, tmp_path / str(seed), aware=seed % 2 == 1)
        result = historical_join(entity_df, [(view, features) for view, _, features in views])
        check(result, reference(entity_df, views))


def test_value_exactly_ttl_old_counts_and_one_tick_older_does_not(tmp_path):
    rows = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "event_time": pd.to_datetime(["2024-01-01 00:00:00", "2024-01-01 00:00:00"]),
            "orders": [7, 8],
        }
    )
    view = FeatureView("v", [CUSTOMER], DataFrameSource(rows), ttl="1h", schema={"orders": "int64"})
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 2, 1],
            "event_timestamp": pd.to_datetime(["2024-01-01 01:00:00", "2024-01-01 01:00:00.000001", "2023-12-31 23:59:59"], format="ISO8601"),
        }
    )
    result = historical_join(entity_df, [(view, ["orders"])])
    assert result["orders"].tolist() == [7, pd.NA, pd.NA]


def test_nanosecond_times_never_see_the_future(tmp_path):
    at = pd.Timestamp("2024-01-01 00:00:00.000000001")
    rows = pd.DataFrame(
        {"customer_id": [1, 1], "event_time": pd.DatetimeIndex([at - pd.Timedelta(1, "ns"), at + pd.Timedelta(1, "ns")])}
    ).assign(orders=[1, 2])
    rows["event_time"] = rows["event_time"].astype("datetime64[ns]")
    view = FeatureView("v", [CUSTOMER], DataFrameSource(rows), ttl="1d", schema={"orders": "int64"})
    entity_df = pd.DataFrame({"customer_id": [1], "event_timestamp": pd.DatetimeIndex([at]).astype("datetime64[ns]")})
    assert historical_join(entity_df, [(view, ["orders"])])["orders"].tolist() == [1]


def test_through_the_store_on_sql_metadata(db_url, tmp_path):
    """Definitions applied to SQLite and PostgreSQL, retrieved by reference and by service."""
    from loopml.store import open_store

    store = open_store(db_url, artifacts_url=str(tmp_path / "artifacts"))
    try:
        for seed in (3, 11):
            entity_df, views = random_case(seed, tmp_path / f"s{seed}")
            (view_a, _, _), (view_b, _, _) = views
            apply_features([view_a, view_b, FeatureService("both", [view_a, view_b[["visits"]]])], client=store)
            result = get_historical_features(
                entity_df, ["orders_view:orders", "orders_view:spend", "visits_view:visits", "visits_view:segment"],
                client=store,
            )  # fmt: skip
            check(result, reference(entity_df, views))
            by_service = get_historical_features(entity_df, service="both", client=store)
            assert list(by_service.columns) == [*entity_df.columns, "orders", "spend", "visits"]
            assert by_service.attrs["loopml.feature_views"] == result.attrs["loopml.feature_views"]
            table = get_historical_features(entity_df, service="both", client=store, as_arrow=True)
            assert table.num_rows == len(entity_df)
            full = get_historical_features(entity_df, ["orders_view:orders"], client=store, full_names=True)
            assert "orders_view__orders" in full.columns
    finally:
        store.close()


def test_sql_source_on_postgresql(pg_base_url, tmp_path):
    import sqlalchemy as sa

    from tests.conftest import drop_pg_schema, make_pg_schema_url

    _, schema = make_pg_schema_url(pg_base_url)
    try:
        for seed in (5, 17):
            entity_df, views = random_case(seed, tmp_path / str(seed))
            (view_a, _, features_a), (view_b, rows_b, features_b) = views
            engine = sa.create_engine(pg_base_url)
            rows_b.to_sql(f"visits_{seed}", engine, schema=schema, index=False)
            engine.dispose()
            from_table = FeatureView(
                "visits_view", [CUSTOMER, STORE], SqlSource(pg_base_url, table=f"{schema}.visits_{seed}"),
                ttl=view_b.ttl, schema=view_b.schema,
            )  # fmt: skip
            from_query = FeatureView(
                "visits_view", [CUSTOMER, STORE],
                SqlSource(pg_base_url, query=f"SELECT * FROM {schema}.visits_{seed} WHERE visits >= 0"),
                ttl=view_b.ttl, schema=view_b.schema,
            )  # fmt: skip
            for sql_view in (from_table, from_query):
                result = historical_join(entity_df, [(view_a, features_a), (sql_view, features_b)])
                check(result, reference(entity_df, views))
            start, end = BASE + pd.Timedelta(minutes=60), BASE + pd.Timedelta(minutes=200)
            streamed = pd.concat(
                [b.to_pandas() for b in iter_batches(from_table, start.to_pydatetime(), end.to_pydatetime(), ["visits"], 7)]
            )
            inside = rows_b[(rows_b["event_time"] >= start) & (rows_b["event_time"] < end)]
            assert sorted(streamed["visits"]) == sorted(inside["visits"])
            assert list(streamed.columns) == ["customer_id", "store_id", "event_time", "visits"]
    finally:
        drop_pg_schema(pg_base_url, schema)
