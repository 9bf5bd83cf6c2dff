"""get_online_features and push: fresh values, stale and missing ones counted, definitions cached in process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.errors import EntityFrameError, FeatureReferenceError, FeatureSourceError, FeatureViewNotFoundError
from loopml.features.cache import DefinitionsCache
from loopml.features.definitions import FeatureService
from loopml.features.materialize import materialize
from loopml.features.online import OnlineStore
from loopml.features.online_features import get_online_features, lookup
from loopml.features.push import push
from loopml.store import open_store
from tests.features.online_fixtures import online_store_fixture  # noqa: F401  (the online_store fixture)
from tests.features.online_helpers import apply, parquet_view

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def meta(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    yield store
    store.close()


def _views(tmp_path: Path) -> list[Any]:
    spend = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "event_time": [NOW - timedelta(hours=1), NOW - timedelta(days=3), NOW - timedelta(minutes=5)],
            "spend": [10.5, 20.0, None],
            "last_seen": [NOW - timedelta(hours=2)] * 3,
        }
    )
    risk = pd.DataFrame({"customer_id": [1, 2], "event_time": [NOW - timedelta(minutes=1)] * 2, "score": [0.1, 0.9]})
    return [
        parquet_view(tmp_path, spend, "spend", {"spend": "float64", "last_seen": "timestamp"}, ttl="1d"),
        parquet_view(tmp_path, risk, "risk", {"score": "float64"}, ttl="1h"),
    ]


def test_values_staleness_and_missing_keys(meta: Any, online_store: OnlineStore, tmp_path: Path) -> None:
    views = _views(tmp_path)
    apply(meta, [*views, FeatureService("churn", [views[0][["spend"]], views[1]])])
    materialize(NOW - timedelta(days=7), NOW, store=meta, online=online_store)
    got = get_online_features(
        [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 4}],
        features=["spend:spend", "spend:last_seen", "risk:score"],
        store=meta,
        online=online_store,
    )
    assert got.features == ["spend", "last_seen", "score"]
    assert got.rows[0] == {"customer_id": 1, "spend": 10.5, "last_seen": NOW - timedelta(hours=2), "score": 0.1}
    # key 2's spend row is 3 days old against a 1-day ttl: missing and counted stale, its event time still shown
    assert got.rows[1] == {"customer_id": 2, "spend": None, "last_seen": None, "score": 0.9}
    assert got.event_times[1] == {"spend": NOW - timedelta(days=3), "risk": NOW - timedelta(minutes=1)}
    assert got.rows[2] == {"customer_id": 4, "spend": None, "last_seen": None, "score": None}
    assert got.stale == 2 and got.missing == 3
    by_service = get_online_features([{"customer_id": 1}], service="churn", store=meta, online=online_store)
    assert by_service.rows == [{"customer_id": 1, "spend": 10.5, "score": 0.1}]
    full = get_online_features(
        [{"customer_id": 1}], features=["risk:score"], full_names=True, store=meta, online=online_store
    )
    assert full.to_dict()["rows"] == [{"customer_id": 1, "risk__score": 0.1}]
    assert full.to_pandas().columns.tolist() == ["customer_id", "risk__score"]


def test_bad_requests_name_the_fault(meta: Any, online_store: OnlineStore, tmp_path: Path) -> None:
    views = _views(tmp_path)
    apply(meta, views)
    with pytest.raises(EntityFrameError, match="customer_id"):
        get_online_features([{"client": 1}], features=["risk:score"], store=meta, online=online_store)
    with pytest.raises(FeatureReferenceError, match="score"):
        get_online_features([{"customer_id": 1}], features=["risk:scor"], store=meta, online=online_store)
    with pytest.raises(FeatureViewNotFoundError, match="riks"):
        get_online_features([{"customer_id": 1}], features=["riks:score"], store=meta, online=online_store)
    with pytest.raises(EntityFrameError):
        get_online_features({"customer_id": 1}, features=["risk:score"], store=meta, online=online_store)  # type: ignore[arg-type]


def test_definitions_are_read_once_and_reloaded_only_on_change(
    meta: Any, online_store: OnlineStore, tmp_path: Path
) -> None:
    views = _views(tmp_path)
    apply(meta, views[:1])
    ticks = [0.0]
    cache = DefinitionsCache(meta, check_every=5.0, clock=lambda: ticks[0])
    for _ in range(50):
        lookup(cache.get(), online_store, [{"customer_id": 1}], ["spend:spend"])
    assert (cache.loads, cache.checks) == (1, 1)  # 50 requests: one registry read, one version query
    apply(meta, views)  # a new view: the version grows
    for _ in range(10):
        with pytest.raises(FeatureViewNotFoundError):  # not yet seen: the version is not asked again before 5 s
            lookup(cache.get(), online_store, [{"customer_id": 1}], ["risk:score"])
    ticks[0] = 5.0
    lookup(cache.get(), online_store, [{"customer_id": 1}], ["risk:score"])
    assert (cache.loads, cache.checks) == (2, 2)
    ticks[0] = 10.0
    cache.get()
    assert (cache.loads, cache.checks) == (2, 3)  # the version did not change: nothing reloaded


def test_push_writes_fresh_values_and_never_goes_back_in_time(
    meta: Any, online_store: OnlineStore, tmp_path: Path
) -> None:
    views = _views(tmp_path)
    apply(meta, views)
    frame = pd.DataFrame(
        {"customer_id": [7, 7, 8], "event_time": [NOW - timedelta(minutes=9), NOW, NOW], "score": [0.2, 0.5, 0.7]}
    )
    assert push("risk", frame, store=meta, online=online_store) == 2
    older = pd.DataFrame({"customer_id": [7], "event_time": [NOW - timedelta(minutes=30)], "score": [0.0]})
    assert push("risk", older, store=meta, online=online_store) == 0
    got = get_online_features([{"customer_id": 7}, {"customer_id": 8}], ["risk:score"], store=meta, online=online_store)
    assert [r["score"] for r in got.rows] == [0.5, 0.7]
    with pytest.raises(FeatureSourceError, match="score"):
        push("risk", frame.drop(columns=["score"]), store=meta, online=online_store)
    with pytest.raises(FeatureSourceError, match="score"):
        push("risk", frame.assign(score=["a", "b", "c"]), store=meta, online=online_store)
    with pytest.raises(FeatureViewNotFoundError):
        push("nope", frame, store=meta, online=online_store)


def test_a_view_applied_a_moment_ago_is_found(
    meta: Any, online_store: OnlineStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_FEATURES_CHECK_EVERY", "3600")  # the cache would not look at the version again
    views = _views(tmp_path)
    apply(meta, views[:1])
    get_online_features([{"customer_id": 1}], ["spend:spend"], store=meta, online=online_store)
    apply(meta, views)
    got = get_online_features([{"customer_id": 1}], ["risk:score"], store=meta, online=online_store)
    assert got.rows == [{"customer_id": 1, "score": None}] and got.missing == 1
