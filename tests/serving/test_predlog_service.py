"""A prediction service logging to the parquet sink: answers, redaction, feedback joins, all read back as before."""

from __future__ import annotations

import shutil
import warnings

import pytest
import sqlalchemy

from loopml.serving.client import ServingClient
from loopml.tracking.client import TrackingClient
from tests.serving.conftest import open_sqlite, service

COLUMN = "petal width (cm)"


@pytest.fixture
def parquet_store(tmp_path, template, monkeypatch):
    """A copy of the iris template store whose log is the parquet sink."""
    monkeypatch.setenv("LOOPML_PREDICTION_LOG", "parquet")
    folder = tmp_path / "store"
    shutil.copytree(template[0], folder)
    opened = open_sqlite(folder)
    yield opened
    opened.close()


def test_a_service_over_the_parquet_sink_logs_redacted_rows_that_monitoring_reads(
    parquet_store, asgi_client, iris, tmp_path
):
    from loopml.serving.app import create_serving_app

    client = ServingClient(TrackingClient(parquet_store))
    client.deploy("iris", "champion")
    parquet_store.serving.set_log_policy("iris", redact={COLUMN: "truncate:1"}, entity_key=None, actor="dpo")
    rows = iris[0].iloc[:3].to_dict(orient="records")
    api = asgi_client(create_serving_app(parquet_store, poll_interval_s=60.0), raise_server_exceptions=False)
    with warnings.catch_warnings(), api:
        answered = api.post("/v1/models/iris/predict", json={"records": rows}).json()
        log = service(api).log
        assert (log.batch_size, log.interval_s) == (5_000, 1.0)  # the parquet sink's larger batches (half the queue)
        assert log.flush()
        assert (
            api.post("/v1/feedback", json={"request_id": answered["request_id"], "label": [0, 0, 0]}).status_code == 201
        )

    frame = client.search_predictions("iris", with_feedback=True)
    assert list(frame["request_id"]) == [answered["request_id"]]
    assert list(frame["label"]) == [[0, 0, 0]]
    logged = frame["inputs"][0]
    assert [row[COLUMN] for row in logged] == [str(row[COLUMN])[:1] for row in rows]
    assert logged[0]["sepal length (cm)"] == rows[0]["sepal length (cm)"]
    assert len(list((tmp_path / "store" / "artifacts" / "prediction-log" / "model=iris").glob("day=*/*.parquet"))) == 1
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'store' / 'loopml.db'}")
    with engine.connect() as conn:  # nothing went to the SQL table
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM predictions")).scalar() == 0
    engine.dispose()
