"""The canary judge names business metrics like accuracy: a revenue loss fails it, a broken metric too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.explain.metrics import metric, unregister_metric
from loopml.loop.canary import judge
from loopml.loop.policy import CanaryRules


def _log(role: str, predictions: list[int], labels: list[int]) -> pd.DataFrame:
    n = len(predictions)
    return pd.DataFrame({"role": role, "request_id": [f"{role}-{i}" for i in range(n)], "status": 200,
                         "latency_ms": 1.0, "prediction": predictions, "label": labels})  # fmt: skip


@pytest.fixture
def revenue():
    @metric(name="canary_revenue")
    def canary_revenue(predictions, labels, features):
        accepted = np.asarray(predictions) == 1
        return float(
            40 * (accepted & (np.asarray(labels) == 1)).sum() - 100 * (accepted & (np.asarray(labels) == 0)).sum()
        )

    @metric(name="canary_broken")
    def canary_broken(predictions, labels, features):
        return None

    yield
    unregister_metric("canary_revenue")
    unregister_metric("canary_broken")


def test_a_canary_that_loses_revenue_fails_even_with_equal_accuracy(revenue) -> None:
    labels = [1] * 30 + [0] * 30
    main = _log("main", [1] * 30 + [0] * 30, labels)  # accepts every good customer
    # the same accuracy (55/60) either way, but the canary accepts bad customers instead of good ones
    champion_like = _log("canary", [1] * 25 + [0] * 5 + [0] * 25 + [1] * 5, labels)
    canary = _log("canary", [1] * 30 + [1] * 5 + [0] * 25, labels)
    rules = CanaryRules(window_s=1, min_requests=20, min_labelled=20, metrics=("canary_revenue",))
    worse = judge(pd.concat([main, canary]), rules)
    assert not worse.passed and "canary_revenue" in worse.reason and "loses more than 1.00%" in worse.reason
    assert worse.figures["metrics"]["canary_revenue"]["main"]["value"] == 1200.0
    assert worse.figures["metrics"]["canary_revenue"]["canary"]["code_hash"]
    assert not judge(pd.concat([main, champion_like]), rules).passed  # 500 vs 1200
    assert judge(pd.concat([main, _log("canary", [1] * 30 + [0] * 30, labels)]), rules).passed


def test_a_broken_business_metric_fails_the_canary(revenue) -> None:
    labels = [1] * 30 + [0] * 30
    frame = pd.concat([_log("main", labels, labels), _log("canary", labels, labels)])
    verdict = judge(frame, CanaryRules(window_s=1, min_requests=20, min_labelled=20, metrics=("canary_broken",)))
    assert not verdict.passed and "canary_broken failed" in verdict.reason
    assert "not a finite number" in verdict.figures["metrics"]["canary_broken"]["canary"]["error"]
