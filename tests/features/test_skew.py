"""The feature_skew monitor check: online values served against the offline truth, and materialization lag."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from loopml.errors import InvalidValueError
from loopml.features.online import open_online_store
from loopml.features.push import push
from loopml.monitoring.monitors import monitor, run_monitor
from loopml.tracking.client import TrackingClient
from tests.features.serving_fixtures import NOW, serving_setup


def test_skew_alerts_when_online_values_differ_from_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: Any
) -> None:
    with serving_setup("sqlite", tmp_path, monkeypatch, live_server) as (http, store, (_, service)):
        client = TrackingClient(store)
        entities = {"entities": [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3}]}
        assert http.post("/v1/models/churn_model/versions/1/predict", json=entities).status_code == 200
        assert service.log.barrier().wait(30)
        monitor("churn-skew", "churn_model", checks=["feature_skew"], window={"last": 100}, client=client,
                thresholds={"materialization_lag_max_s": 3600})  # fmt: skip
        clean = run_monitor("churn-skew", client=client)
        assert clean.status == "ok", clean.summary
        assert clean.figures["feature_skew"]["features"]["spend"] == {
            "view": "customers", "compared": 3, "mismatched": 0, "share": 0.0
        }  # fmt: skip
        assert clean.summary["feature_skew_share"] == 0.0 and clean.summary["materialization_lag_s"] is not None
        # a push that disagrees with the source: served online, never seen offline
        online = open_online_store()
        pushed = pd.DataFrame({"customer_id": [2], "event_time": [NOW + timedelta(seconds=2)], "spend": [-1.0],
                               "orders": [9]})  # fmt: skip
        push("customers", pushed, store=store, online=online)
        online.close()
        assert http.post("/v1/models/churn_model/versions/1/predict", json=entities).status_code == 200
        assert service.log.barrier().wait(30)
        skewed = run_monitor("churn-skew", client=client)
        assert [a.kind for a in skewed.alerts] == ["feature_skew"]
        assert skewed.figures["feature_skew"]["features"]["spend"]["mismatched"] == 1
        assert skewed.figures["feature_skew"]["features"]["orders"]["mismatched"] == 0
        assert isinstance(http, httpx.Client)


def test_skew_thresholds_are_checked(tmp_path: Path) -> None:
    from loopml.monitoring.spec import build_spec

    with pytest.raises(InvalidValueError, match="feature_skew_max"):
        build_spec(checks=["feature_skew"], thresholds={"feature_skew_max": 2})
    with pytest.raises(InvalidValueError, match="feature_skew"):
        build_spec(checks=["data_drift"], thresholds={"feature_skew_max": 0.1})
    assert build_spec(checks=["feature_skew", "data_drift"]).checks == ("data_drift", "feature_skew")
