"""The feature catalogue, a feature view's page and a feature service's page, over a real server and in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.features.apply import apply_features
from loopml.features.definitions import Entity, FeatureService, FeatureView
from loopml.features.materialize import materialize
from loopml.features.online import open_online_store
from loopml.features.sources import FileSource
from loopml.registry.client import RegistryClient
from loopml.server.app import create_app
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from tests.ui.conftest import Filled, Problems, serve

NOW = datetime.now(UTC).replace(microsecond=0)
PATIENT = Entity("patient", join_keys=["patient_id"], description="a diabetes study patient")
HTML = {"accept": "text/html"}


@dataclass
class Featured:
    filled: Filled
    folder: Path


def _vitals(folder: Path, schema: dict[str, str]) -> FeatureView:
    """``vitals`` over scikit-learn's diabetes data, one row per patient an hour apart, as a parquet file."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True).frame
    frame = pd.DataFrame(
        {
            "patient_id": range(len(data)),
            "event_time": [NOW - timedelta(hours=i) for i in range(len(data))],
            **{feature: data[feature] for feature in schema},
        }
    )
    path = folder / "vitals.parquet"
    frame.to_parquet(path, index=False)
    return FeatureView("vitals", [PATIENT], FileSource(str(path)), ttl="30d", schema=schema)


@pytest.fixture
def featured(filled_store: Filled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Featured]:
    """``vitals`` v1 applied and materialized, ``risk`` selecting two of its features, a model declaring
    ``risk`` and trained on ``vitals`` v1; then ``vitals`` v2 drops ``bp``, forced over that model."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    monkeypatch.delenv("LOOPML_ONLINE_STORE_URL", raising=False)
    store = filled_store.store
    folder = tmp_path / "sources"
    folder.mkdir()
    vitals = _vitals(folder, {"age": "float64", "bmi": "float64", "bp": "float64"})
    apply_features([FeatureService("risk", [vitals[["bmi", "bp"]]])], actor="mia", client=store)
    online = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")  # beside ui.db, where the page looks
    materialize(NOW - timedelta(days=30), NOW, ["vitals"], store=store, online=online)
    online.close()
    client = TrackingClient(store)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    run = ActiveRun(client, client.create_run("iris-sweep", name="risk-model", capture=False))
    info = run.log_model(LinearRegression().fit(X[["bmi", "bp"]], y), "model", input_example=X[["bmi", "bp"]].head())
    client.set_tags(run.run_id, {"loopml.feature_view.vitals": "1"})
    run.end()
    RegistryClient(client).register_model(info.uri, "risk-model", tags={"loopml.feature_service": "risk"}, actor="mia")
    v2 = _vitals(folder, {"age": "float64", "bmi": "float64"})
    apply_features([v2, FeatureService("risk", [v2[["bmi"]]])], force=True, actor="ravi", client=store)
    yield Featured(filled_store, tmp_path)


def test_catalogue_view_and_service_pages(featured: Featured, asgi_client: Any) -> None:
    client = asgi_client(create_app(featured.filled.store))
    catalogue = client.get("/features", headers=HTML)
    assert catalogue.status_code == 200
    text = catalogue.text
    assert 'data-view="vitals"' in text and "patient (patient_id)" in text and "parquet vitals.parquet" in text
    assert str(featured.folder) not in text  # the source's folder never reaches a page
    assert 'data-entity="patient"' in text and 'data-service="risk"' in text
    assert 'href="/models/risk-model?version=1"' in text  # the version declaring the service
    assert "not materialized" not in text  # v1 was materialized up to NOW: a time and a lag
    view = client.get("/features/views/vitals", headers=HTML).text
    assert 'data-feature="age"' in view and 'data-feature="bmi"' in view and 'data-feature="bp"' not in view
    assert 'data-version="2"' in view and 'data-version="1"' in view
    assert "feature &#39;bp&#39; removed" in view and "forced</strong> over models:/risk-model/1" in view
    assert "ravi" in view and "mia" in view and ">30 d<" in view
    assert "risk-model v1" in view and 'href="/features/services/risk"' in view
    older = client.get("/features/views/vitals?version=1", headers=HTML).text
    assert 'data-feature="bp"' in older and "the latest is" in older
    service = client.get("/features/services/risk", headers=HTML).text
    assert 'data-view="vitals"' in service and "risk-model v1" in service
    model = client.get("/models/risk-model", headers=HTML).text
    assert 'id="feature-service"' in model and 'href="/features/services/risk"' in model


def test_unknown_view_or_service_is_a_404_page(filled_store: Filled, asgi_client: Any) -> None:
    client = asgi_client(create_app(filled_store.store))
    for path in ("/features/views/nope", "/features/services/nope"):
        answer = client.get(path, headers=HTML)
        assert answer.status_code == 404 and 'id="error-headline"' in answer.text
    assert client.get("/features", headers=HTML).status_code == 200  # an empty catalogue is a page too
    assert client.get("/features/views/nope?version=0", headers=HTML).status_code == 422


def test_features_need_a_session(filled_store: Filled, asgi_client: Any) -> None:
    client = asgi_client(create_app(filled_store.store, auth=True), follow_redirects=False)
    for path in ("/features", "/features/views/vitals?version=1", "/features/services/risk"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=/features")


def test_catalogue_renders_in_chromium(live_server: Any, featured: Featured, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    base = serve(live_server, featured.filled.store)
    tab.goto(base + "/")
    tab.get_by_role("navigation").get_by_role("link", name="Features").click()
    tab.wait_for_url("**/features")
    tab.locator("tr[data-view='vitals']").get_by_role("link", name="vitals").click()
    tab.wait_for_url("**/features/views/vitals")
    assert tab.locator("#schema tbody tr").count() == 2
    assert tab.locator("#history tbody tr").count() == 2
    assert problems.none(), problems
