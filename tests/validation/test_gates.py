"""Model gates: McNemar and the paired bootstrap against hand computations, and the gate verdicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import loopml
from loopml.errors import InvalidValueError, ValidationFailedError
from loopml.validation import GateResult, compare_models, mcnemar, paired_bootstrap, validate_model


def _pairs(n01: int, n10: int, both_right: int = 50, both_wrong: int = 10) -> tuple[np.ndarray, ...]:
    """Labels where the champion alone is right n01 times and the challenger alone n10 times."""
    y = np.ones(n01 + n10 + both_right + both_wrong, dtype=int)
    challenger = np.concatenate([np.zeros(n01), np.ones(n10), np.ones(both_right), np.zeros(both_wrong)]).astype(int)
    champion = np.concatenate([np.ones(n01), np.zeros(n10), np.ones(both_right), np.zeros(both_wrong)]).astype(int)
    return y, challenger, champion


@pytest.mark.parametrize(("n01", "n10"), [(2, 9), (7, 7), (0, 5), (12, 3)])
def test_mcnemar_exact_matches_the_binomial_sum(n01: int, n10: int) -> None:
    result = mcnemar(*_pairs(n01, n10))
    n, k = n01 + n10, min(n01, n10)
    by_hand = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    assert (result.n01, result.n10, result.method) == (n01, n10, "exact binomial")
    assert result.p_value == pytest.approx(by_hand, rel=1e-12)


def test_mcnemar_chi2_with_continuity_correction_matches_the_formula() -> None:
    result = mcnemar(*_pairs(30, 12))
    statistic = (abs(30 - 12) - 1) ** 2 / 42
    assert result.statistic == pytest.approx(statistic)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)), rel=1e-12)  # chi2 sf, 1 df
    assert result.method == "chi2 with continuity correction"
    forced = mcnemar(*_pairs(30, 12), exact=True)
    assert forced.method == "exact binomial" and forced.p_value != result.p_value
    assert mcnemar(*_pairs(0, 0)).p_value == 1.0


@pytest.mark.parametrize(("metric", "reference"), [("accuracy", skm.accuracy_score), ("roc_auc", skm.roc_auc_score)])
def test_paired_bootstrap_equals_a_loop_over_the_same_resamples(metric: str, reference) -> None:
    rng = np.random.default_rng(0)
    n, n_boot, seed = 150, 100, 11
    y = rng.integers(0, 2, n).astype(float)
    a = np.clip(y * 0.4 + rng.random(n) * 0.6, 0, 1)
    b = np.clip(y * 0.2 + rng.random(n) * 0.8, 0, 1)
    if metric == "accuracy":
        a, b = (a >= 0.5).astype(float), (b >= 0.5).astype(float)
    result = paired_bootstrap(metric, y, a, b, n_boot=n_boot, alpha=0.1, seed=seed)
    rows = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # one chunk at this size
    deltas = np.array([reference(y[r], a[r]) - reference(y[r], b[r]) for r in rows])
    low, high = np.percentile(deltas, [5, 95])
    assert result.ci_low == pytest.approx(low, abs=1e-12) and result.ci_high == pytest.approx(high, abs=1e-12)
    assert result.delta == pytest.approx(reference(y, a) - reference(y, b))
    assert result.prob_better == pytest.approx(np.mean(deltas > 0))
    again = paired_bootstrap(metric, y, a, b, n_boot=n_boot, alpha=0.1, seed=seed)
    assert again == result  # fixed seed: the same figures every time


def test_lower_is_better_metrics_are_signed_so_positive_means_better() -> None:
    y = np.array([0.0, 1.0] * 50)
    good, bad = np.where(y == 1, 0.9, 0.1), np.where(y == 1, 0.6, 0.4)
    result = paired_bootstrap("log_loss", y, good, bad, n_boot=200)
    assert result.delta > 0 and result.ci_low > 0


@pytest.fixture(scope="module")
def holdout() -> dict[str, object]:
    X, y = make_classification(1200, 8, n_informative=5, random_state=3)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(region=np.where(X[:, 0] > 0, "north", "south"))
    train, test = slice(0, 600), slice(600, None)
    features = [f"f{i}" for i in range(8)]
    strong = LogisticRegression(max_iter=500).fit(frame.iloc[train][features], y[train])
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(frame.iloc[train][features], y[train])
    return {
        "X": frame.iloc[test][features],
        "y": y[test],
        "region": frame.iloc[test]["region"].to_numpy(),
        "strong": strong,
        "weak": weak,
    }


def test_a_clearly_better_challenger_passes_and_a_worse_one_fails(holdout) -> None:
    X, y = holdout["X"], holdout["y"]
    result = compare_models(holdout["strong"], holdout["weak"], X, y, segments=holdout["region"])
    assert result.passed, result.summary()
    assert [c.name for c in result.checks] == ["bootstrap", "mcnemar", "segment north", "segment south"]
    figures = result.figures
    assert figures["challenger"] == pytest.approx(skm.roc_auc_score(y, holdout["strong"].predict_proba(X)[:, 1]))
    assert figures["ci"][0] > 0 and figures["mcnemar"]["n10"] > figures["mcnemar"]["n01"]

    reverse = compare_models(holdout["weak"], holdout["strong"], X, y, metric="accuracy", segments=holdout["region"])
    assert not reverse.passed
    assert {"bootstrap", "mcnemar", "segment north"} <= {c.name for c in reverse.failures}
    with pytest.raises(
        ValidationFailedError, match=r"Gate 'challenger_vs_champion' failed \d check\(s\):\n  - bootstrap"
    ):
        reverse.raise_if_failed()


def test_a_copy_of_the_champion_needs_a_margin_to_pass(holdout) -> None:
    X, y = holdout["X"], holdout["y"]
    same = compare_models(holdout["strong"], holdout["strong"], X, y, n_boot=200)
    assert not same.passed and same.figures["ci"] == [0.0, 0.0]  # not an improvement
    assert compare_models(holdout["strong"], holdout["strong"], X, y, n_boot=200, margin=0.005).passed


def test_a_regression_in_one_segment_fails_the_gate_even_when_overall_better() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 2, n)
    segment = np.where(np.arange(n) < 1500, "big", "small")
    noise = rng.random(n)
    champion = np.clip(0.25 * y + 0.75 * noise, 0, 1)
    challenger = np.where(
        segment == "big", np.clip(0.6 * y + 0.4 * noise, 0, 1), np.clip(0.05 * y + 0.95 * noise, 0, 1)
    )
    result = compare_models(challenger, champion, None, y, segments=segment, mcnemar_test=False, n_boot=300)
    checks = {c.name: c for c in result.checks}
    assert checks["bootstrap"].passed and checks["segment big"].passed
    assert not checks["segment small"].passed and not result.passed
    small = next(s for s in result.figures["segments"] if s["segment"] == "small")
    assert small["delta"] < -0.01 and small["n"] == 500
    tiny = compare_models(
        challenger, champion, None, y, segments={"few": np.arange(n) < 10}, n_boot=200, mcnemar_test=False
    )
    assert tiny.checks[-1].skipped and tiny.checks[-1].passed


def test_evidence_is_json_safe_and_complete(holdout) -> None:
    result = compare_models(holdout["strong"], holdout["weak"], holdout["X"], holdout["y"], segments=holdout["region"])
    evidence = result.to_evidence()
    text = json.dumps(evidence, allow_nan=False)
    assert evidence["gate"] == "challenger_vs_champion" and evidence["passed"] is True
    assert {"challenger", "champion", "delta", "ci", "p_value", "mcnemar", "segments", "n_boot", "seed"} <= set(
        evidence["figures"]
    )
    assert len(evidence["checks"]) == 4 and "NaN" not in text


def test_metric_thresholds(holdout) -> None:
    X, y = holdout["X"], holdout["y"]
    result = validate_model(holdout["strong"], X, y, {"roc_auc": 0.8, "log_loss": "<= 0.6", "accuracy": "> 0.99"})
    assert [c.passed for c in result.checks] == [True, True, False] and not result.passed
    assert result.figures["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, holdout["strong"].predict(X)))
    assert validate_model(holdout["strong"], X, y, {"brier": 0.25}).checks[0].figures["op"] == "<="
    with pytest.raises(InvalidValueError, match="must be a number or"):
        validate_model(holdout["strong"], X, y, {"roc_auc": "at least 0.8"})
    with pytest.raises(InvalidValueError, match="n_boot"):
        compare_models(holdout["strong"], holdout["weak"], X, y, n_boot=5)


def test_gate_evidence_is_recorded_on_the_model_version(client, holdout) -> None:
    from loopml.registry.client import RegistryClient

    X, y = holdout["X"], holdout["y"]
    run = client.create_run("gates", capture=False)
    from loopml.models.package import log_model

    info = log_model(client, run.run_id, holdout["strong"], "model")
    registry = RegistryClient(client)
    version = registry.register_model(info.uri, "gated")
    gate = compare_models(holdout["strong"], holdout["weak"], X, y, n_boot=200)
    thresholds = validate_model(holdout["strong"], X, y, {"roc_auc": 0.8})
    gate.record("gated", version.version, client=registry)
    stored = thresholds.record("gated", version.version, client=registry)
    assert set(stored.evidence) == {"challenger_vs_champion", "thresholds"}  # merged, not replaced
    assert stored.evidence["challenger_vs_champion"] == json.loads(json.dumps(gate.to_evidence()))
    assert isinstance(gate, GateResult) and bool(gate) is gate.passed


def test_models_can_be_given_as_registry_uris(loopml_env, holdout) -> None:
    X, y = holdout["X"], holdout["y"]
    versions = []
    for model in (holdout["weak"], holdout["strong"]):
        with loopml.start_run(capture=False) as run:
            info = run.log_model(model, "model")
        versions.append(loopml.register_model(info.uri, "uri-gated"))
    loopml.set_alias("uri-gated", "champion", versions[0].version)
    result = compare_models("models:/uri-gated/2", "models:/uri-gated@champion", X, y, n_boot=200)
    assert result.passed
    assert result.record("uri-gated", 2).evidence["challenger_vs_champion"]["passed"] is True


def test_a_holdout_of_negatives_only_scores_probability_arrays_against_class_1() -> None:
    y = np.zeros(40, dtype=int)
    proba = np.linspace(0.05, 0.7, 40)
    result = validate_model(proba, None, y, {"log_loss": 10.0, "brier": 1.0, "accuracy": 0.0})
    figures = result.figures["metrics"]
    assert figures["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=[0, 1]))
    assert figures["brier"] == pytest.approx(skm.brier_score_loss(y, proba, pos_label=1))
    assert figures["accuracy"] == pytest.approx(skm.accuracy_score(y, proba >= 0.5))


def test_probability_matrices_as_predictions_give_labels_for_mcnemar_and_label_metrics(holdout) -> None:
    X, y = holdout["X"], holdout["y"]
    new, old = holdout["strong"].predict_proba(X), holdout["weak"].predict_proba(X)
    as_arrays = compare_models(new, old, X, y, metric="roc_auc", n_boot=200, margin=1.0)
    as_models = compare_models(holdout["strong"], holdout["weak"], X, y, metric="roc_auc", n_boot=200)
    assert as_arrays.figures["mcnemar"] == as_models.figures["mcnemar"]
    accuracy = validate_model(new, X, y, {"accuracy": 0.5}).figures["metrics"]["accuracy"]
    assert accuracy == pytest.approx(skm.accuracy_score(y, holdout["strong"].predict(X)))
    three = np.tile([0.2, 0.5, 0.3], (len(y), 1))
    with pytest.raises(InvalidValueError, match="3 columns of probabilities but y has 2 classes"):
        validate_model(three, X, y, {"accuracy": 0.5})


def test_rows_whose_segment_is_missing_form_their_own_segment() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    score = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    region = pd.Series(["north", None, "south"] * 100).to_numpy()  # NaN for the missing ones on pandas 3
    result = compare_models(score, score, None, y, metric="roc_auc", segments=region, n_boot=200, margin=1.0)
    segments = {s["segment"]: s["n"] for s in result.figures["segments"]}
    assert segments == {"north": 100, "south": 100, "missing": 100}  # not "nan" with 0 rows, skipped
    floats = np.where(np.arange(300) % 3 == 0, np.nan, 1.0)
    result = compare_models(score, score, None, y, metric="roc_auc", segments=floats, n_boot=200, margin=1.0)
    assert {s["segment"]: s["n"] for s in result.figures["segments"]} == {"1.0": 200, "missing": 100}
