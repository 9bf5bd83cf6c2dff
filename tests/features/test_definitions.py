"""Definitions, sources and references: what they accept, their fingerprints, and precise errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from loopml.errors import (
    EntityFrameError,
    FeatureDefinitionError,
    FeatureReferenceError,
    FeatureSourceError,
    FeatureViewNotFoundError,
)
from loopml.features.definitions import Entity, FeatureService, FeatureView, parse_ttl
from loopml.features.offline import historical_join
from loopml.features.references import resolve
from loopml.features.sources import DataFrameSource, FileSource, SqlSource, iter_batches, source_from_dict

CUSTOMER = Entity("customer", ["customer_id"])
ROWS = pd.DataFrame(
    {
        "customer_id": [1, 1, 2],
        "event_time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        "orders": [1, 2, 3],
        "spend": [1.0, 2.0, 3.0],
        "segment": ["a", "b", "c"],
    }
)


def view(name="stats", source=None, schema=None, ttl="30d", **kwargs):
    schema = schema or {"orders": "int64", "spend": "float64"}
    return FeatureView(name, [CUSTOMER], source or DataFrameSource(ROWS), ttl=ttl, schema=schema, **kwargs)


def entities(**columns):
    base = {"customer_id": [1, 2], "event_timestamp": pd.to_datetime(["2024-01-02", "2024-01-05"])}
    return pd.DataFrame({**base, **columns})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("1d12h", timedelta(hours=36)), ("90m", timedelta(minutes=90)),
     ("2w", timedelta(weeks=2)), ("45s", timedelta(seconds=45)), ("250ms", timedelta(milliseconds=250)),
     (3600, timedelta(hours=1)), (timedelta(days=1), timedelta(days=1))],
)  # fmt: skip
def test_ttls_parse(text, expected):
    assert parse_ttl(text) == expected


@pytest.mark.parametrize("bad", ["", "soon", "3x", "-1d", "0s", "1d soon", None, True])
def test_bad_ttls_are_refused_naming_the_view(bad):
    with pytest.raises(FeatureDefinitionError, match="ttl of feature view 'stats'"):
        view(ttl=bad)


def test_definitions_refuse_bad_names_keys_and_dtypes():
    with pytest.raises(FeatureDefinitionError, match="Entity 'my customer'"):
        Entity("my customer", ["id"])
    with pytest.raises(FeatureDefinitionError, match="join_keys"):
        Entity("customer", "customer_id")  # type: ignore[arg-type]
    with pytest.raises(FeatureDefinitionError, match="feature 'orders' has dtype 'int'"):
        view(schema={"orders": "int"})
    with pytest.raises(FeatureDefinitionError, match="'customer_id' is a join key"):
        view(schema={"customer_id": "int64"})
    with pytest.raises(FeatureDefinitionError, match="source must be"):
        FeatureView("v", [CUSTOMER], "data.parquet", ttl="1d", schema={"a": "int64"})  # type: ignore[arg-type]
    with pytest.raises(FeatureDefinitionError, match="no feature 'nope'"):
        view()[["nope"]]
    with pytest.raises(FeatureDefinitionError, match="exactly one of table= or query="):
        SqlSource("sqlite://", table="t", query="select 1")
    with pytest.raises(FeatureDefinitionError, match="lists view 'stats' twice"):
        FeatureService("s", [view(), view()[["orders"]]])
    with pytest.raises(AttributeError, match="immutable"):
        view().ttl = timedelta(1)  # type: ignore[misc]


def test_fingerprints_follow_the_definition_not_the_object(tmp_path):
    assert view().fingerprint() == view().fingerprint()
    assert view().fingerprint() != view(ttl="29d").fingerprint()
    assert view().fingerprint() != view(schema={"orders": "int64"}).fingerprint()
    assert FeatureView.from_dict(view().to_dict()) == view()
    secret = SqlSource("postgresql+psycopg://u:hunter2@db.example/x", table="stats")
    assert "hunter2" not in str(secret.to_dict()) and "hunter2" not in repr(secret)
    assert source_from_dict(secret.to_dict()).to_dict() == secret.to_dict()
    other = DataFrameSource(ROWS.assign(orders=[9, 9, 9]))
    with pytest.raises(FeatureSourceError, match="lives only in the process"):
        source_from_dict({**other.to_dict(), "sha256": "0" * 64})


def test_references_resolve_and_refuse_duplicates():
    a, b = view("a"), view("b", schema={"orders": "int64", "segment": "string"})
    views = {"a": a, "b": b}
    assert resolve(["a:orders", "b:segment", "a:spend"], None, views=views) == [(a, ["orders", "spend"]), (b, ["segment"])]
    with pytest.raises(FeatureReferenceError, match="'orders' comes from both view 'a' and view 'b'"):
        resolve(["a:orders", "b:orders"], None, views=views)
    assert len(resolve(["a:orders", "b:orders"], None, views=views, full_names=True)) == 2
    with pytest.raises(FeatureReferenceError, match="'view:feature'"):
        resolve(["orders"], None, views=views)
    with pytest.raises(FeatureReferenceError, match=r"has no feature 'order'.*'orders'"):
        resolve(["a:order"], None, views=views)
    with pytest.raises(FeatureViewNotFoundError, match="'c'"):
        resolve(["c:orders"], None, views=views)
    with pytest.raises(FeatureReferenceError, match="exactly one"):
        resolve(["a:orders"], "svc", views=views)
    with pytest.raises(FeatureViewNotFoundError, match="service 'svc'"):
        resolve(None, "svc", views=views, services={})


def test_entity_frame_errors_name_the_column():
    stats = view()
    with pytest.raises(EntityFrameError, match="no column 'customer_id', a join key of feature view 'stats'"):
        historical_join(entities().drop(columns="customer_id"), [(stats, ["orders"])])
    with pytest.raises(EntityFrameError, match="no timestamp column 'event_timestamp'"):
        historical_join(entities().drop(columns="event_timestamp"), [(stats, ["orders"])])
    aware = entities(event_timestamp=pd.to_datetime(["2024-01-02", "2024-01-05"]).tz_localize("UTC"))
    with pytest.raises(EntityFrameError, match=r"tz-aware.*'event_time' of feature view 'stats' is naive"):
        historical_join(aware, [(stats, ["orders"])])
    mixed = entities(event_timestamp=[datetime(2024, 1, 2), datetime(2024, 1, 5, tzinfo=UTC)])
    with pytest.raises(EntityFrameError, match="'event_timestamp' mixes naive and tz-aware"):
        historical_join(mixed, [(stats, ["orders"])])
    with pytest.raises(EntityFrameError, match="already has a column 'orders'"):
        historical_join(entities(orders=[0, 0]), [(stats, ["orders"])])
    with pytest.raises(EntityFrameError, match="'customer_id' is VARCHAR in the entity frame but BIGINT"):
        historical_join(entities(customer_id=["1", "2"]), [(stats, ["orders"])])
    with pytest.raises(EntityFrameError, match="pandas DataFrame"):
        historical_join([{"customer_id": 1}], [(stats, ["orders"])])  # type: ignore[arg-type]


def test_source_errors_name_the_view_and_column(tmp_path):
    missing = view(schema={"orders": "int64", "visits": "int64"})
    with pytest.raises(FeatureSourceError, match=r"view 'stats'.*no column 'visits'"):
        historical_join(entities(), [(missing, ["visits"])])
    retyped = view(schema={"segment": "float64"})
    with pytest.raises(FeatureSourceError, match="column 'segment' has type VARCHAR, but the schema declares float64"):
        historical_join(entities(), [(retyped, ["segment"])])
    no_time = view(timestamp="updated_at")
    with pytest.raises(FeatureSourceError, match="no column 'updated_at'"):
        historical_join(entities(), [(no_time, ["orders"])])
    with pytest.raises(FeatureSourceError, match="holds no parquet file"):
        historical_join(entities(), [(view(source=FileSource(str(tmp_path / "none"))), ["orders"])])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(FeatureSourceError, match="cannot read the parquet"):
        historical_join(entities(), [(view(source=FileSource(str(tmp_path))), ["orders"])])
    with pytest.raises(FeatureSourceError, match="cannot read its SqlSource"):
        historical_join(entities(), [(view(source=SqlSource(f"sqlite:///{tmp_path}/x.db", table="nope")), ["orders"])])


def test_iter_batches_streams_a_time_range_in_batches(tmp_path):
    folder = tmp_path / "stats"
    folder.mkdir()
    ROWS.iloc[:2].to_parquet(folder / "a.parquet")
    ROWS.iloc[2:].to_parquet(folder / "b.parquet")
    stats = view(source=FileSource(str(folder)))
    batches = list(iter_batches(stats, datetime(2024, 1, 2), None, ["orders"], batch_rows=1))
    assert [b.num_rows for b in batches] == [1, 1]
    rows = [row for b in batches for row in b.to_pylist()]
    assert [(r["customer_id"], r["orders"]) for r in rows] == [(1, 2), (2, 3)]
    assert rows[0]["event_time"] == datetime(2024, 1, 2, tzinfo=UTC)
    until = list(iter_batches(stats, None, datetime(2024, 1, 2, tzinfo=UTC)))
    assert sum(b.num_rows for b in until) == 1 and until[0].schema.names == ["customer_id", "event_time", "orders", "spend"]
    with pytest.raises(FeatureSourceError, match="no feature 'nope'"):
        list(iter_batches(stats, None, None, ["nope"]))


def test_file_sources_read_fsspec_urls():
    import fsspec

    fs = fsspec.filesystem("memory")
    with fs.open("memory://loopml-features-test/stats/part-0.parquet", "wb") as handle:
        ROWS.to_parquet(handle)
    try:
        stats = view(source=FileSource("memory://loopml-features-test/stats"))
        result = historical_join(entities(), [(stats, ["orders", "spend"])])
        assert result["orders"].tolist() == [2, 3] and result["spend"].tolist() == [2.0, 3.0]
    finally:
        fs.rm("memory://loopml-features-test", recursive=True)


def test_times_outside_the_nanosecond_range_are_refused_not_wrapped():
    far = pd.Series([datetime(3000, 1, 1)], dtype="datetime64[us]")
    with pytest.raises(EntityFrameError, match="'event_timestamp' holds times outside the years 1678-2261"):
        historical_join(pd.DataFrame({"customer_id": [1], "event_timestamp": far}), [(view(), ["orders"])])
    future = view(source=DataFrameSource(ROWS.iloc[:1].assign(event_time=far.to_numpy())))
    with pytest.raises(FeatureSourceError, match="view 'stats': its source cannot be joined"):
        historical_join(entities(), [(future, ["orders"])])
