"""The web UI's model and monitor pages show explanations, fairness and business metrics (HTML, no browser;
tests/ui/test_models_views.py sees the same in Chromium)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sklearn.linear_model import LogisticRegression

from loopml.explain.importance import explain_model
from loopml.explain.metrics import metric, unregister_metric
from loopml.models.package import log_model
from loopml.monitoring.monitors import monitor, run_monitor
from loopml.registry.client import RegistryClient
from loopml.store import open_store
from loopml.tracking.client import TrackingClient
from loopml.validation.responsible import business_metric_gate, fairness_gate


def test_model_and_monitor_pages_show_responsible_ml(tmp_path: Path, asgi_client: Any, task: dict[str, Any]) -> None:
    from loopml.server.app import create_app

    store = open_store(f"sqlite:///{tmp_path / 'ui.db'}", artifacts_url=str(tmp_path / "artifacts"))
    X, y, group = task["X"], task["y"], task["group"]
    client = TrackingClient(store)
    registry = RegistryClient(client)
    model = LogisticRegression().fit(X.iloc[:400], y[:400])
    run = client.create_run("ui", capture=False)
    registry.register_model(log_model(client, run.run_id, model, "model", input_example=X.head()).uri, "credit")
    explain_model("models:/credit/1", X.iloc[400:].assign(y=y[400:]), target="y", client=registry, n_repeats=2)
    fairness_gate(model, model, X.iloc[400:], y[400:], group[400:], min_rows=20).record("credit", 1, client=registry)
    metric(name="ui_revenue")(lambda predictions, labels, features: float((predictions == labels).sum()))
    try:
        business_metric_gate("ui_revenue", model, model, X.iloc[400:], y[400:]).record("credit", 1, client=registry)
        monitor("credit-fair", "credit", checks=["fairness", "business"], version=1, segments="feedback.group",
                metrics=["ui_revenue"], client=client)  # fmt: skip
        labels = [{"label": int(t), "group": g} for t, g in zip(y[400:], group[400:], strict=True)]
        current = X.iloc[400:].assign(prediction=model.predict(X.iloc[400:]), label=labels)
        run_monitor("credit-fair", reference=X.iloc[:400], current=current, client=client)
    finally:
        unregister_metric("ui_revenue")
    with warnings.catch_warnings(), asgi_client(create_app(store)) as http:
        model_page = http.get("/models/credit?version=1")
        monitor_page = http.get("/monitors/credit-fair")
        report = http.get("/monitors/credit-fair/report")
    store.close()
    assert model_page.status_code == 200
    section = model_page.text.split('id="responsible"')[1].split("</section>")[0]
    assert "Feature importance" in section and "linear explainer" in section and "income" in section
    assert "Fairness by sensitive" in section and "group sensitive=a" in section
    assert "Business metric ui_revenue" in section
    assert monitor_page.status_code == 200
    part = monitor_page.text.split('id="responsible"')[1].split("</section>")[0]
    assert "Fairness by feedback.group" in part and "Business metrics" in part and "ui_revenue" in part
    assert report.status_code == 200 and "Fairness by feedback.group" in report.text
