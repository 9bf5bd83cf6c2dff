"""The canary judge: worse beyond noise fails, worse by one row of a small sample does not."""

from __future__ import annotations

import pandas as pd

from loopml.loop.canary import judge
from loopml.loop.policy import CanaryRules

RULES = CanaryRules(window_s=1, min_requests=20, min_labelled=20, max_accuracy_drop=0.02)


def _log(role: str, n: int, wrong: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "role": role,
            "request_id": [f"{role}-{i + start}" for i in range(n)],
            "status": 200,
            "latency_ms": 1.0,
            "prediction": [1] * n,
            "label": [0] * wrong + [1] * (n - wrong),
        }
    )


def test_one_wrong_answer_in_a_small_sample_is_noise_not_a_verdict():
    # 24/25 = 0.96 against 74/75 = 0.987: the drop passes max_accuracy_drop but is far from significant
    verdict = judge(pd.concat([_log("main", 75, 1), _log("canary", 25, 1)]), RULES)
    assert verdict.passed, verdict.reason
    assert verdict.figures["canary"]["accuracy"] == 0.96


def test_a_clearly_worse_canary_fails():
    verdict = judge(pd.concat([_log("main", 100, 5), _log("canary", 40, 16)]), RULES)
    assert not verdict.passed
    assert verdict.reason == "canary accuracy 0.600 vs champion 0.950"


def test_exact_accuracies_are_compared_as_they_are():
    assert not judge(pd.concat([_log("main", 30, 0), _log("canary", 30, 30)]), RULES).passed
    assert judge(pd.concat([_log("main", 30, 0), _log("canary", 30, 0)]), RULES).passed


def test_a_stricter_confidence_needs_more_evidence():
    frame = pd.concat([_log("main", 200, 10), _log("canary", 60, 10)])  # 0.95 against 0.83: z = 1.9
    assert not judge(frame, RULES).passed
    assert judge(frame, CanaryRules(window_s=1, min_requests=20, min_labelled=20, confidence=0.9999)).passed
