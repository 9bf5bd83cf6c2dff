"""The monitor's fairness (attribute from the feedback), business-metric and attribution-drift checks, on every
store backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidValueError
from loopml.explain.metrics import metric, unregister_metric
from loopml.models.package import log_model
from loopml.monitoring.monitors import monitor, run_monitor
from loopml.monitoring.results import search_monitor_results, write_monitor_report
from loopml.registry.client import RegistryClient

COLUMNS = ["a", "b", "c", "d"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.normal(0, 1, n) for c in COLUMNS})


@pytest.fixture
def accepted():
    @metric(name="accepted_good")
    def accepted_good(predictions, labels, features):
        return float(((np.asarray(predictions) == 1) & (labels.astype(int) == 1)).sum())

    yield
    unregister_metric("accepted_good")


def test_fairness_business_and_attribution_drift_checks(client, accepted, tmp_path) -> None:
    reference = _frame(400, 0)
    y_ref = ((reference["a"] + reference["b"]) > 0).astype(int)
    model = LogisticRegression().fit(reference, y_ref)
    run = client.create_run("monitor", capture=False)
    info = log_model(client, run.run_id, model, "model", input_example=reference.head())
    RegistryClient(client).register_model(info.uri, "fair")
    monitor("fair-watch", "fair", checks=["fairness", "business", "attribution_drift"], version=1,
            segments="feedback.group", metrics=["accepted_good"],
            thresholds={"parity_difference_max": 0.1, "metric.accepted_good_min": 1000, "min_group_rows": 20},
            client=client)  # fmt: skip

    current = _frame(240, 1)
    current["a"] = current["a"] * 6  # the model now leans on a far more than on b: attribution drift
    truth = ((current["a"] + current["b"]) > 0).astype(int).to_numpy()
    group = np.where(np.arange(240) % 3 == 0, "b", "a").astype(object)
    group[:5] = "rare"  # too few rows to judge
    predicted = np.where(group == "b", 0, model.predict(current))  # group b is never accepted
    labels = [{"label": int(t), "group": g} for t, g in zip(truth, group, strict=True)]  # the attribute: feedback
    frame = current.assign(prediction=predicted, label=labels)

    result = run_monitor("fair-watch", reference=reference.assign(prediction=model.predict(reference)),
                         current=frame, client=client)  # fmt: skip
    kinds = sorted(a.kind for a in result.alerts)
    assert kinds == ["attribution_drift", "business", "fairness"], result.summary
    figures = result.figures["responsible"]
    keep = group != "rare"
    assert figures["fairness"]["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(truth[keep], predicted[keep], sensitive_features=group[keep])
    )
    rare = next(g for g in figures["fairness"]["groups"] if g["group"] == "rare")
    assert rare["enough_data"] is False and rare["n"] == 5
    assert figures["business"]["accepted_good"]["value"] == float(((predicted == 1) & (truth == 1)).sum())
    assert figures["attribution_drift"]["drifted"] is True
    a = next(f for f in figures["attribution_drift"]["features"] if f["feature"] == "a")
    assert a["current_rank"] == 1 and a["current_share"] > 0.7 > a["reference_share"]
    stored = search_monitor_results("fair-watch", client=client)
    assert stored["metric.accepted_good"].tolist() == [figures["business"]["accepted_good"]["value"]]
    page = write_monitor_report("fair-watch", tmp_path / "report.html", client=client).read_text(encoding="utf-8")
    for text in ("Fairness by feedback.group", "not enough data", "Business metrics", "accepted_good",
                 "Attribution drift", "Fairness and business metrics over time"):  # fmt: skip
        assert text in page


def test_responsible_checks_need_their_declarations(client) -> None:
    with pytest.raises(InvalidValueError, match="fairness check needs segments"):
        monitor("m1", "fair", checks=["fairness"], client=client)
    with pytest.raises(InvalidValueError, match="business check needs metrics"):
        monitor("m2", "fair", checks=["business"], client=client)
    with pytest.raises(InvalidValueError, match="applies to the fairness check"):
        monitor("m3", "fair", checks=["performance"], thresholds={"parity_difference_max": 0.1}, client=client)
