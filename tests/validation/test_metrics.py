"""Vectorised metrics: one row of weights equals scikit-learn's metric with those sample weights."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from loopml.errors import InvalidValueError
from loopml.validation.metrics import METRICS, bootstrap_weights, get_metric

rng = np.random.default_rng(7)
N = 300
Y_BIN = rng.integers(0, 2, N).astype(np.float64)
PROBA = np.clip(Y_BIN * 0.3 + rng.random(N) * 0.7, 0, 1).round(2)  # rounded: many ties for the AUC
LABELS = (PROBA >= 0.5).astype(np.float64)
Y_REG = rng.normal(size=N)
PRED_REG = Y_REG + rng.normal(scale=0.5, size=N)
Y_MULTI = rng.integers(0, 3, N)
PRED_MULTI = np.where(rng.random(N) < 0.7, Y_MULTI, rng.integers(0, 3, N))
PROBA_MULTI = rng.dirichlet([1, 1, 1], N)

CASES = {
    "accuracy": (Y_BIN, LABELS, skm.accuracy_score),
    "balanced_accuracy": (Y_MULTI, PRED_MULTI, skm.balanced_accuracy_score),
    "precision": (Y_BIN, LABELS, skm.precision_score),
    "recall": (Y_BIN, LABELS, skm.recall_score),
    "f1": (Y_BIN, LABELS, skm.f1_score),
    "roc_auc": (Y_BIN, PROBA, skm.roc_auc_score),
    "log_loss": (Y_BIN, PROBA, skm.log_loss),
    "brier": (Y_BIN, PROBA, skm.brier_score_loss),
    "mse": (Y_REG, PRED_REG, skm.mean_squared_error),
    "mae": (Y_REG, PRED_REG, skm.mean_absolute_error),
    "r2": (Y_REG, PRED_REG, skm.r2_score),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_metric_matches_scikit_learn_plain_and_weighted(name: str) -> None:
    y, pred, reference = CASES[name]
    metric = get_metric(name)
    assert metric.value(y, pred) == pytest.approx(reference(y, pred), rel=1e-9, abs=1e-12)
    weights = next(bootstrap_weights(len(y), 4, seed=1))
    got = metric.weighted(y, pred, weights)
    expected = [reference(y, pred, sample_weight=w) for w in weights]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_rmse_and_multiclass_log_loss() -> None:
    assert get_metric("rmse").value(Y_REG, PRED_REG) == pytest.approx(np.sqrt(skm.mean_squared_error(Y_REG, PRED_REG)))
    ll = get_metric("log_loss").value(Y_MULTI.astype(float), PROBA_MULTI)
    assert ll == pytest.approx(skm.log_loss(Y_MULTI, PROBA_MULTI, labels=[0, 1, 2]))


def test_bootstrap_weights_are_row_counts_of_seeded_draws_in_bounded_chunks(monkeypatch) -> None:
    from loopml.validation import metrics

    monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", 50)  # 5 resamples of 10 rows per chunk
    chunks = list(bootstrap_weights(10, 12, seed=3))
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert all((c.sum(axis=1) == 10).all() for c in chunks)
    draws = np.random.default_rng(3)
    expected = [np.bincount(row, minlength=10) for size in (5, 5, 2) for row in draws.integers(0, 10, size=(size, 10))]
    np.testing.assert_array_equal(np.vstack(chunks), np.vstack(expected))


def test_unknown_metric_suggests_a_name() -> None:
    with pytest.raises(InvalidValueError, match="Did you mean 'roc_auc'"):
        get_metric("roc_uac")
    assert set(METRICS) >= set(CASES)


def test_r2_keeps_its_precision_for_targets_far_from_zero() -> None:
    y, pred = Y_REG + 1e8, PRED_REG + 1e8  # e.g. readings of a meter: large values, small spread
    assert get_metric("r2").value(y, pred) == pytest.approx(skm.r2_score(y, pred), rel=1e-9)
    weights = next(bootstrap_weights(len(y), 4, seed=1))
    expected = [skm.r2_score(y, pred, sample_weight=w) for w in weights]
    np.testing.assert_allclose(get_metric("r2").weighted(y, pred, weights), expected, rtol=1e-9)
