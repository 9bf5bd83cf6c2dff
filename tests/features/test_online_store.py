"""The online store contract, on SQLite and on the real Redis server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loopml.errors import OnlineStoreError, UnsupportedSchemeError
from loopml.features.online import OnlineStore, ReadRequest, WriteBatch, open_online_store
from loopml.features.online.base import from_micros, to_micros
from tests.features.online_fixtures import online_store_fixture  # noqa: F401  (the online_store fixture)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = ("customer_id",)


def _batch(view: str, rows: dict[int, tuple[float, datetime]]) -> WriteBatch:
    return WriteBatch(
        view=view,
        join_keys=KEYS,
        keys=[(k,) for k in rows],
        values=[{"spend": v, "tier": f"t{k}"} for k, (v, _) in rows.items()],
        event_times=[to_micros(t) for _, t in rows.values()],
    )


def test_write_then_read_many_views_and_keys(online_store: OnlineStore) -> None:
    assert online_store.write(_batch("spend", {1: (1.5, T0), 2: (2.5, T0)})) == 2
    online_store.write(_batch("other", {1: (9.0, T0 + timedelta(hours=1))}))
    spend, other = online_store.read(
        [ReadRequest("spend", KEYS, [(1,), (2,), (3,)]), ReadRequest("other", KEYS, [(2,), (1,)])]
    )
    assert [r.values["spend"] if r else None for r in spend] == [1.5, 2.5, None]
    assert spend[0] is not None and spend[0].event_time == T0 and spend[0].values["tier"] == "t1"
    assert other[0] is None
    assert other[1] is not None and other[1].values["spend"] == 9.0 and other[1].event_time == T0 + timedelta(hours=1)


def test_newest_event_time_wins(online_store: OnlineStore) -> None:
    online_store.write(_batch("spend", {1: (1.0, T0 + timedelta(days=1)), 2: (2.0, T0)}))
    # an older row for key 1 is ignored, a newer one for key 2 replaces, an equal time replaces (replays)
    written = online_store.write(_batch("spend", {1: (-1.0, T0), 2: (3.0, T0 + timedelta(days=2))}))
    assert written == 1
    online_store.write(_batch("spend", {2: (4.0, T0 + timedelta(days=2))}))
    [rows] = online_store.read([ReadRequest("spend", KEYS, [(1,), (2,)])])
    assert [r.values["spend"] for r in rows if r] == [1.0, 4.0]


def test_keys_typed_and_composite(online_store: OnlineStore) -> None:
    batch = WriteBatch("pair", ("a", "b"), [(1, "x"), ("1", "x")], [{"f": 1}, {"f": 2}], [to_micros(T0)] * 2)
    online_store.write(batch)
    [rows] = online_store.read([ReadRequest("pair", ("a", "b"), [("1", "x"), (1, "x"), (1, "y")])])
    assert [r.values["f"] if r else None for r in rows] == [2, 1, None]


def test_missing_values_round_trip_as_none(online_store: OnlineStore) -> None:
    online_store.write(WriteBatch("v", KEYS, [(1,)], [{"f": float("nan"), "g": None, "h": True}], [to_micros(T0)]))
    [[row]] = online_store.read([ReadRequest("v", KEYS, [(1,)])])
    assert row is not None and row.values == {"f": None, "g": None, "h": True}


def test_watermark_only_moves_forward(online_store: OnlineStore) -> None:
    assert online_store.get_watermark("spend") is None
    online_store.set_watermark("spend", T0 + timedelta(days=2))
    online_store.set_watermark("spend", T0)
    assert online_store.get_watermark("spend") == T0 + timedelta(days=2)


def test_delete_view_drops_rows_and_watermark(online_store: OnlineStore) -> None:
    online_store.write(_batch("spend", {1: (1.0, T0)}))
    online_store.write(_batch("keep", {1: (1.0, T0)}))
    online_store.set_watermark("spend", T0)
    online_store.delete_view("spend")
    spend, keep = online_store.read([ReadRequest("spend", KEYS, [(1,)]), ReadRequest("keep", KEYS, [(1,)])])
    assert spend == [None] and keep[0] is not None
    assert online_store.get_watermark("spend") is None


def test_a_failed_write_leaves_rows_old_or_newer(online_store: OnlineStore) -> None:
    online_store.write(_batch("spend", {k: (float(k), T0) for k in range(5)}))
    bad = WriteBatch(
        "spend",
        KEYS,
        [(k,) for k in range(5)],
        [{"spend": 10.0 + k} for k in range(4)] + [{"spend": object()}],
        [to_micros(T0 + timedelta(days=1))] * 5,
    )
    with pytest.raises(TypeError):
        online_store.write(bad)
    [rows] = online_store.read([ReadRequest("spend", KEYS, [(k,) for k in range(5)])])
    for k, row in enumerate(rows):
        assert row is not None
        assert (row.values["spend"], row.event_time) in {(float(k), T0), (10.0 + k, T0 + timedelta(days=1))}


def test_micros_round_trip() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment
    assert to_micros(moment.replace(tzinfo=None)) == to_micros(moment)


def test_unreachable_redis_names_the_url_without_credentials() -> None:
    store = open_online_store("redis://reader:hunter2@127.0.0.1:1/0")
    with pytest.raises(OnlineStoreError) as info:
        store.read([ReadRequest("spend", KEYS, [(1,)])])
    assert "redis://***@127.0.0.1:1/0" in str(info.value)
    assert "hunter2" not in str(info.value) and "reader" not in str(info.value)
    assert info.value.http_status == 503
    store.close()


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(UnsupportedSchemeError, match="memcached"):
        open_online_store("memcached://127.0.0.1")
