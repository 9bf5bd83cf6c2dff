"""A serving app over a feature store, on a real socket: shared by the serving-by-entity and skew tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopml.features.definitions import FeatureService
from loopml.features.materialize import materialize
from loopml.features.offline import get_historical_features
from loopml.features.online import open_online_store
from loopml.registry.client import RegistryClient
from loopml.serving.app import create_serving_app
from loopml.store import Store, open_store
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from tests.features.online_fixtures import drop_prefix, online_url
from tests.features.online_helpers import apply, parquet_view

NOW = datetime.now(UTC).replace(microsecond=0)


@contextmanager
def serving_setup(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: Any
) -> Iterator[tuple[httpx.Client, Store, Any]]:
    """A serving app on a real socket over a store with a feature view, materialized, and two model versions.

    Version 1 names its feature service (tag); version 2 is known by its training data's lineage.
    Yields (HTTP client, store, (models by version, the prediction service)).
    """
    url, prefix = online_url(backend, tmp_path)
    monkeypatch.setenv("LOOPML_ONLINE_STORE_URL", url)
    if prefix is not None:
        monkeypatch.setenv("LOOPML_ONLINE_STORE_PREFIX", prefix)
    store = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    history = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 1],
            "event_time": [NOW - timedelta(days=2), NOW - timedelta(hours=3), NOW - timedelta(hours=1), NOW],
            "spend": [5.0, 80.0, 20.0, 95.0],
            "orders": [1, 9, 3, 12],
        }
    )
    view = parquet_view(tmp_path, history, "customers", {"spend": "float64", "orders": "int64"})
    apply(store, [view, FeatureService("churn", [view])])
    online = open_online_store(url, prefix=prefix)
    materialize(NOW - timedelta(days=7), NOW + timedelta(seconds=1), store=store, online=online)
    online.close()
    # training data through the feature store: its lineage tags the run with the view
    entity_df = pd.DataFrame({"customer_id": [1, 2, 3, 1], "event_timestamp": [NOW] * 4, "label": [1, 0, 0, 1]})
    train = get_historical_features(entity_df, features=["customers:spend", "customers:orders"], client=store)
    X, y = train[["spend", "orders"]], train["label"]
    tracking = TrackingClient(store)
    registry = RegistryClient(tracking)
    models = {}
    for version, tags in ((1, {"loopml.feature_service": "churn"}), (2, None)):
        model = LogisticRegression(C=float(version)).fit(X, y)
        run = ActiveRun(tracking, tracking.create_run("serving", capture=False))
        run.log_dataset(train, "train")
        info = run.log_model(model, "model", input_example=X.head(2))
        assert registry.register_model(info.uri, "churn_model", tags=tags).version == version
        models[version] = model
    app = create_serving_app(store, log_capacity=1000)
    service = app.state.service
    service.start()
    base, switch = live_server
    switch.app = app
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            yield http, store, (models, service)
    finally:
        switch.app = None
        service.close()
        store.close()
        if prefix is not None:
            drop_prefix(prefix)
