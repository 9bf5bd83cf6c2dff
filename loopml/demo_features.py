"""The demo's feature-store step: define a feature view, train through it, serve by entity key.

The bundled breast-cancer measurements become a feature view keyed by ``patient_id`` with a synthetic event
time (each patient measured once in the last 30 days, a parquet file under ``LOOPML_HOME``). The step applies
it with a feature service, builds the training set with ``get_historical_features`` (point in time, as of now),
logs it (so the model's lineage reaches the view), fits a logistic regression, registers it tagged with its
feature service, materializes the view into the online store and serves the model on 127.0.0.1: requests carry
only ``{"entities": [{"patient_id": ...}]}`` and the service fetches the features itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.text import Text

VIEW = "patient_measurements"
SERVICE = "cancer_features"
MODEL = "breast-cancer-by-patient"
FEATURES = ("mean_radius", "mean_texture", "mean_smoothness", "worst_concavity", "worst_area")


@dataclass(frozen=True, slots=True)
class FeatureDemo:
    """What the feature-store step made: the view, the version registered, and how serving by key went."""

    view: str
    model: str
    version: int
    training_rows: int
    keys_written: int
    requests: int
    predictions_match: bool


def run_feature_demo(console: Console, experiment: str, data: Any) -> FeatureDemo:
    """Apply a view over ``data`` (the bunch from ``load_breast_cancer``), train through it, serve by key."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import loopml
    from loopml.config import get_settings

    now = datetime.now(UTC).replace(microsecond=0)
    frame = data.data.rename(columns=lambda c: c.replace(" ", "_"))[list(FEATURES)]
    frame.insert(0, "patient_id", range(len(frame)))
    frame.insert(1, "event_time", [now - timedelta(minutes=43 * i % (30 * 24 * 60)) for i in range(len(frame))])
    folder = get_settings().home / "demo-features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "patients.parquet"
    frame.to_parquet(path, index=False)
    patient = loopml.Entity("patient", ["patient_id"])
    view = loopml.FeatureView(
        VIEW, [patient], loopml.FileSource(str(path)), ttl="90d", schema=dict.fromkeys(FEATURES, "float64")
    )
    loopml.apply_features([patient, view, loopml.FeatureService(SERVICE, [view])], actor="demo")
    entity_df = pd.DataFrame(
        {"patient_id": frame["patient_id"], "event_timestamp": now + timedelta(seconds=1), "label": data.target}
    )
    train = loopml.get_historical_features(entity_df, service=SERVICE)
    X, y = train[list(FEATURES)], train["label"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    with loopml.start_run("features", experiment=experiment, tags={"demo": "true"}) as run:
        run.log_dataset(train, "patients-train")
        run.log_metric("train_accuracy", float(model.score(X, y)))
        info = run.log_model(model, "model", input_example=X.head(3))
    version = loopml.register_model(info.uri, MODEL, tags={"loopml.feature_service": SERVICE}).version
    [done] = loopml.materialize(now - timedelta(days=90), now + timedelta(seconds=1), views=[VIEW])
    patients = [int(p) for p in frame["patient_id"].head(20)]
    answers = _serve_by_key(MODEL, version, patients)
    expected = model.predict(X.head(20)).tolist()
    found = FeatureDemo(VIEW, MODEL, version, len(train), done.keys_written, len(patients), answers == expected)
    tick = Text("✓ ", style="bold green") if found.predictions_match else Text("✗ ", style="bold red")
    console.print(
        Text.assemble(
            tick,
            "Feature store: view ",
            (VIEW, "cyan"),
            f" ({len(FEATURES)} features, synthetic event times) trained {MODEL} v{version} through "
            f"get_historical_features ({found.training_rows} rows), materialized {found.keys_written} keys, and "
            f"served {found.requests} patients by entity key alone",
        ),
        soft_wrap=True,
    )
    return found


def _serve_by_key(model: str, version: int, patients: list[int]) -> list[Any]:
    """POST ``{"entities": [{"patient_id": ...}]}`` to a serving app on a free 127.0.0.1 port; the predictions."""
    import socket
    import threading

    import httpx
    import uvicorn

    import loopml
    from loopml.serving.app import create_serving_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_serving_app(loopml.get_tracking_client().store, models=[f"{model}/{version}"], poll_interval_s=0.5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="loopml-demo-features", daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 60
            while not server.started or http.get("/readyz").status_code != 200:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the demo's prediction service did not start")
                time.sleep(0.02)
            answer = http.post(
                f"/v1/models/{model}/versions/{version}/predict",
                json={"entities": [{"patient_id": p} for p in patients]},
            )
            answer.raise_for_status()
            predictions: list[Any] = answer.json()["predictions"]
            return predictions
    finally:
        server.should_exit = True
        thread.join(timeout=30)
