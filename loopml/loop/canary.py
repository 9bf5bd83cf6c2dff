"""Judging a canary from live traffic: its error rate and (where labels came back) its accuracy vs the champion's."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from loopml.loop.policy import CanaryRules

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class CanaryVerdict:
    """``passed`` with every figure it rests on; ``reason`` says why in one line."""

    passed: bool
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def _side(frame: pd.DataFrame, role: str) -> dict[str, Any]:
    rows = frame[frame["role"] == role]
    requests = int(rows["request_id"].nunique()) if len(rows) else 0
    errors = int((rows.drop_duplicates("request_id")["status"] >= 500).sum()) if len(rows) else 0
    figures: dict[str, Any] = {
        "requests": requests,
        "error_rate": errors / requests if requests else math.nan,
        "p99_latency_ms": float(rows["latency_ms"].quantile(0.99)) if len(rows) else math.nan,
    }
    # accuracy over answered requests whose labels came back (a failed request counts in the error rate)
    answered = rows[rows["prediction"].notna()] if "prediction" in rows else rows.iloc[0:0]
    labelled = answered[answered["label"].notna()] if "label" in answered else answered.iloc[0:0]
    figures["labelled"] = len(labelled)
    if len(labelled):
        hits = [str(p) == str(label) for p, label in zip(labelled["prediction"], labelled["label"], strict=True)]
        figures["accuracy"] = sum(hits) / len(hits)
    else:
        figures["accuracy"] = math.nan
    return figures


def _significantly_worse(main: dict[str, Any], canary: dict[str, Any], rules: CanaryRules) -> bool:
    """Whether the canary's accuracy is below the champion's by more than ``max_accuracy_drop``, beyond noise.

    One-sided two-proportion z-test of ``drop > max_accuracy_drop`` at ``rules.confidence``; when
    both accuracies are exact (0 or 1) there is no noise and the drop is compared as it is.
    """
    drop = main["accuracy"] - canary["accuracy"]
    if drop <= rules.max_accuracy_drop:
        return False
    variance = sum(side["accuracy"] * (1 - side["accuracy"]) / side["labelled"] for side in (main, canary))
    if variance == 0:
        return True
    z = (drop - rules.max_accuracy_drop) / math.sqrt(variance)
    return bool(z > NormalDist().inv_cdf(rules.confidence))


def _labelled(frame: pd.DataFrame, role: str) -> pd.DataFrame:
    rows = frame[frame["role"] == role]
    return rows[rows["prediction"].notna() & rows["label"].notna()]


def _business_metrics(frame: pd.DataFrame, rules: CanaryRules, figures: dict[str, Any]) -> str | None:
    """Score ``rules.metrics`` on each side's labelled requests; the reason the canary fails, or None.

    The canary fails when it loses more than ``rules.max_metric_loss`` of the champion's value, or
    when a metric raises or returns a non-number on either side (its traceback goes into ``figures``).
    """
    if not rules.metrics:
        return None
    import numpy as np

    from loopml.explain.metrics import evaluate_metric

    scored: dict[str, Any] = {}
    figures["metrics"] = scored
    reason = None
    for name in rules.metrics:
        values = {}
        for role in ("main", "canary"):
            rows = _labelled(frame, role)
            features = rows.drop(columns=[c for c in ("prediction", "label") if c in rows.columns])
            values[role] = evaluate_metric(name, np.asarray(rows["prediction"].tolist()),
                                           np.asarray(rows["label"].tolist()), features)  # fmt: skip
        scored[name] = {role: value.to_dict() for role, value in values.items()}
        champion, challenger = values["main"], values["canary"]
        if champion.value is None or challenger.value is None:
            reason = reason or f"business metric {name} failed: {(champion.error or challenger.error or '').strip().splitlines()[-1:]}"
            continue
        gain = challenger.value - champion.value if champion.metric.higher_is_better else champion.value - challenger.value
        scored[name]["relative_change"] = gain / abs(champion.value) if champion.value else 0.0
        if gain < -rules.max_metric_loss * abs(champion.value):
            reason = reason or (
                f"canary {name} {challenger.value:.6g} vs champion {champion.value:.6g}: loses more than "
                f"{rules.max_metric_loss:.2%}"
            )
    return reason


def judge(frame: pd.DataFrame, rules: CanaryRules) -> CanaryVerdict:
    """The verdict on a prediction-log frame (flattened, with feedback) of the canary's window."""
    main, canary = _side(frame, "main"), _side(frame, "canary")
    figures = {"main": main, "canary": canary}
    if canary["requests"] < rules.min_requests:
        return CanaryVerdict(False, f"only {canary['requests']} canary requests (< {rules.min_requests})", figures)
    main_errors = 0.0 if math.isnan(main["error_rate"]) else main["error_rate"]
    if canary["error_rate"] > main_errors + rules.max_error_rate_increase:
        return CanaryVerdict(
            False, f"canary error rate {canary['error_rate']:.2%} vs champion {main_errors:.2%}", figures
        )
    if min(main["labelled"], canary["labelled"]) >= rules.min_labelled:
        lost = _business_metrics(frame, rules, figures)
        if lost is not None:
            return CanaryVerdict(False, lost, figures)
        if _significantly_worse(main, canary, rules):
            return CanaryVerdict(
                False, f"canary accuracy {canary['accuracy']:.3f} vs champion {main['accuracy']:.3f}", figures
            )
        return CanaryVerdict(
            True, f"canary accuracy {canary['accuracy']:.3f} vs champion {main['accuracy']:.3f}, errors ok", figures
        )
    return CanaryVerdict(True, f"{canary['requests']} canary requests, error rate ok (too few labels to compare)", figures)


def watch(
    read_window: Callable[[], pd.DataFrame],
    rules: CanaryRules,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    heartbeat: Callable[[dict[str, Any]], None],
) -> CanaryVerdict:
    """Wait at least ``rules.window_s``, then until the canary has its minimum traffic (or the timeout), and judge.

    ``read_window`` returns the window's prediction log so far; ``heartbeat``
    records progress so a watching agent is not taken for a dead one.
    """
    started = clock()
    timeout = rules.timeout_s if rules.timeout_s is not None else 10 * max(rules.window_s, 1.0)
    while True:
        verdict = judge(read_window(), rules)
        elapsed = clock() - started
        heartbeat({"canary_elapsed_s": round(elapsed, 1), "canary_requests": verdict.figures["canary"]["requests"]})
        enough_traffic = verdict.figures["canary"]["requests"] >= rules.min_requests
        if elapsed >= rules.window_s and (enough_traffic or elapsed >= timeout):
            return verdict
        if not verdict.passed and enough_traffic and elapsed >= rules.window_s / 2:
            return verdict  # clearly worse: stop early rather than keep sending it traffic
        sleep(min(1.0, max(rules.window_s / 10, 0.05)))
