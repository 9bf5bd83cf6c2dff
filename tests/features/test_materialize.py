"""Materialization: the latest value per key lands in the online store, in bounded batches, atomically per key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import FeatureSourceError, FeatureViewNotFoundError, InvalidValueError
from loopml.features.materialize import materialize, materialize_incremental
from loopml.features.online import OnlineStore, ReadRequest
from loopml.features.online_features import get_online_features
from loopml.store import open_store
from tests.features.online_fixtures import online_store_fixture  # noqa: F401  (the online_store fixture)
from tests.features.online_helpers import apply, parquet_view

NOW = datetime.now(UTC).replace(microsecond=0)
SCHEMA = {"spend": "float64", "orders": "int64", "tier": "string"}


def _history(seed: int, rows: int = 600, keys: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, keys, rows)
    # distinct times per key (the reference needs one latest row), spread over the last 20 days
    minutes = rng.permutation(20 * 24 * 60)[:rows]
    return pd.DataFrame(
        {
            "customer_id": customer,
            "event_time": [NOW - timedelta(minutes=int(m)) for m in minutes],
            "spend": rng.normal(100, 20, rows).round(2),
            "orders": rng.integers(0, 50, rows),
            "tier": rng.choice(["gold", "silver", None], rows),
        }
    )


def _reference(df: pd.DataFrame, start: datetime, end: datetime) -> dict[int, dict[str, Any]]:
    inside = df[(df.event_time >= start) & (df.event_time < end)]
    latest = inside.sort_values("event_time").groupby("customer_id").tail(1)
    return {
        int(r.customer_id): {"spend": r.spend, "orders": int(r.orders), "tier": None if pd.isna(r.tier) else r.tier}
        for r in latest.itertuples()
    }


@pytest.fixture
def meta(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    yield store
    store.close()


def test_materialize_matches_an_independent_reference(store: Any, online_store: OnlineStore, tmp_path: Path) -> None:
    df = _history(seed=7)
    view = parquet_view(tmp_path, df, "customers", SCHEMA)
    apply(store, [view])
    start, end = NOW - timedelta(days=12), NOW - timedelta(days=2)
    seen: list[int] = []
    [result] = materialize(
        start, end, store=store, online=online_store, batch_rows=16, progress=lambda v, n: seen.append(n)
    )
    expected = _reference(df, start, end)
    assert result.rows_read == int(((df.event_time >= start) & (df.event_time < end)).sum())
    assert sum(seen) == len(expected) == result.keys_written  # each key written once
    assert len(seen) > 1 and max(seen) <= 16  # handed out in bounded batches, never the whole range at once
    got = get_online_features(
        [{"customer_id": k} for k in range(40)],
        features=["customers:spend", "customers:orders", "customers:tier"],
        store=store,
        online=online_store,
    )
    for k, row in enumerate(got.rows):
        want = expected.get(k)
        if want is None:
            assert row["spend"] is None and got.event_times[k]["customers"] is None
        else:
            assert {f: row[f] for f in SCHEMA} == want
    assert got.missing == 3 * (40 - len(expected)) and got.stale == 0
    assert online_store.get_watermark("customers") == end


def test_incremental_continues_from_the_watermark(meta: Any, online_store: OnlineStore, tmp_path: Path) -> None:
    df = _history(seed=3)
    view = parquet_view(tmp_path, df, "customers", SCHEMA, ttl="10d")
    apply(meta, [view])
    middle = NOW - timedelta(days=5)
    [first] = materialize_incremental(middle, store=meta, online=online_store)
    assert first.start == middle - timedelta(days=10)  # first run: back one ttl, older values are stale anyway
    [second] = materialize_incremental(NOW + timedelta(minutes=1), store=meta, online=online_store)
    assert second.start == middle and online_store.get_watermark("customers") == NOW + timedelta(minutes=1)
    expected = _reference(df, middle - timedelta(days=10), NOW + timedelta(minutes=1))
    [rows] = online_store.read([ReadRequest("customers", ("customer_id",), [(k,) for k in expected])])
    assert [r.values["spend"] if r else None for r in rows] == [v["spend"] for v in expected.values()]
    [again] = materialize_incremental(NOW, store=meta, online=online_store)
    assert again.rows_read == 0  # nothing left to do: the watermark is past NOW


def test_a_source_that_fails_leaves_the_online_store_as_it_was(
    meta: Any, online_store: OnlineStore, tmp_path: Path
) -> None:
    keys = 300
    old = pd.DataFrame(
        {"customer_id": range(keys), "event_time": [NOW - timedelta(days=3)] * keys, "level": [1] * keys}
    )
    apply(meta, [parquet_view(tmp_path, old, "levels", {"level": "int32"})])
    materialize(NOW - timedelta(days=4), NOW - timedelta(days=2), store=meta, online=online_store)
    # newer rows, then one whose value does not fit the declared int32: DuckDB fails while reducing
    level = np.full(5000, 2, dtype=np.int64)
    level[-1] = 2**40
    new = pd.DataFrame(
        {
            "customer_id": np.arange(5000) % keys,
            "event_time": pd.date_range(end=NOW - timedelta(hours=1), periods=5000, freq="s"),
            "level": level,
        }
    )
    apply(meta, [parquet_view(tmp_path, new, "levels", {"level": "int32"})])
    with pytest.raises(FeatureSourceError, match="levels"):
        materialize(NOW - timedelta(days=1), NOW, ["levels"], store=meta, online=online_store, batch_rows=64)
    [stored] = online_store.read([ReadRequest("levels", ("customer_id",), [(k,) for k in range(keys)])])
    assert all(row is not None and row.values["level"] == 1 for row in stored)
    assert online_store.get_watermark("levels") == NOW - timedelta(days=2)  # the failed run did not move it


def test_a_store_failing_midway_leaves_each_key_old_or_newer(meta: Any, tmp_path: Path) -> None:
    """A real fault half-way through the writes: Redis refuses one key (it holds a string, not a hash)."""
    import redis

    from loopml.errors import OnlineStoreError
    from loopml.features.online import open_online_store
    from tests.features.online_fixtures import REDIS_URL, drop_prefix, online_url

    url, prefix = online_url("redis", tmp_path)
    online = open_online_store(url, prefix=prefix)
    try:
        keys = 300
        old = pd.DataFrame(
            {"customer_id": range(keys), "event_time": [NOW - timedelta(days=3)] * keys, "v": [1] * keys}
        )
        apply(meta, [parquet_view(tmp_path, old, "vals", {"v": "int64"})])
        materialize(NOW - timedelta(days=4), NOW - timedelta(days=2), store=meta, online=online)
        client = redis.Redis.from_url(REDIS_URL)
        client.set(f"{prefix}:e:customer_id=[150]", b"not a hash")  # the fault
        client.close()
        new = old.assign(event_time=NOW - timedelta(hours=1), v=2)
        apply(meta, [parquet_view(tmp_path, new, "vals", {"v": "int64"})])
        with pytest.raises(OnlineStoreError, match=r"redis://127\.0\.0\.1"):
            materialize(NOW - timedelta(days=1), NOW, ["vals"], store=meta, online=online, batch_rows=100)
        [stored] = online.read([ReadRequest("vals", ("customer_id",), [(k,) for k in range(keys) if k != 150])])
        states = {(row.values["v"], row.event_time) for row in stored if row is not None}
        assert states <= {(1, NOW - timedelta(days=3)), (2, NOW - timedelta(hours=1))}  # old, or consistently new
        assert len([r for r in stored if r is not None]) == keys - 1  # no key lost (the order of keys decides
        # how many were newer when the fault came: DuckDB's aggregate hands them out in no fixed order)
        assert online.get_watermark("vals") == NOW - timedelta(days=2)
    finally:
        online.close()
        assert prefix is not None
        drop_prefix(prefix)


def test_bad_calls_are_refused(meta: Any, online_store: OnlineStore) -> None:
    with pytest.raises(InvalidValueError, match="before"):
        materialize(NOW, NOW - timedelta(days=1), store=meta, online=online_store)
    with pytest.raises(FeatureViewNotFoundError, match="nope"):
        materialize(NOW - timedelta(days=1), NOW, ["nope"], store=meta, online=online_store)
