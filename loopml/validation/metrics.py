"""Model metrics for many bootstrap resamples at once.

A bootstrap resample is its vector of counts ``w`` (how often each row was
drawn), so a metric over ``B`` resamples is a function of the ``B x n`` weight
matrix ``W``. Every metric here is written with matrix products, cumulative
sums and sparse products over ``W``, never with a Python loop over resamples; a
row of ones gives the plain metric, equal to scikit-learn's with
``sample_weight``. ``bootstrap_weights`` draws ``W`` in chunks from one seeded
generator, so a run is reproducible and its memory bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from loopml.errors import InvalidValueError, did_you_mean

Needs = Literal["proba", "label", "value"]
Task = Literal["binary", "classification", "regression"]
_EPS = float(np.finfo(np.float64).eps)
#: Elements of W drawn per chunk (float64: about 32 MB).
CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class ModelMetric:
    """A metric: what it scores (probabilities, labels or values), its task and its direction.

    For binary metrics ``y`` is 0/1 and the prediction is the probability or
    the 0/1 label of the positive class.
    """

    name: str
    needs: Needs
    task: Task
    higher_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

    def weighted(self, y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The metric for each row of ``weights`` (shape ``B x n``); NaN where it is undefined."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.fn(y, pred, np.atleast_2d(weights).astype(np.float64)), dtype=np.float64)

    def value(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The metric on the data as it is."""
        return float(self.weighted(y, pred, np.ones((1, len(y))))[0])


def _mean(weights: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    mean: np.ndarray = (weights @ per_row) / weights.sum(axis=1)
    return mean


def _accuracy(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _mean(w, (y == pred).astype(np.float64))


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    correct = (y == pred).astype(np.float64)
    recalls = []
    for label in np.unique(y):
        member = (y == label).astype(np.float64)
        recalls.append((w @ (correct * member)) / (w @ member))
    return np.nanmean(np.vstack(recalls), axis=0) if recalls else np.full(len(w), np.nan)


def _counts(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted true positives, false positives and false negatives."""
    return w @ (pred * y), w @ (pred * (1 - y)), w @ ((1 - pred) * y)


def _precision(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    tp, fp, _ = _counts(y, pred, w)
    return np.where(tp + fp > 0, tp / (tp + fp), 0.0)  # scikit-learn's zero_division default


def _recall(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    tp, _, fn = _counts(y, pred, w)
    return np.where(tp + fn > 0, tp / (tp + fn), 0.0)


def _f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    tp, fp, fn = _counts(y, pred, w)
    return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)


def _roc_auc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney: P(score of a positive > score of a negative), ties counting one half.

    Rows are grouped by distinct score; two sparse products give every resample's
    positive and negative weight per group, and a cumulative sum over the groups
    the negative weight below each one. No resample is ever sorted.
    """
    from scipy import sparse

    distinct, group = np.unique(score, return_inverse=True)
    rows, shape = np.arange(len(y)), (len(y), len(distinct))
    positives = sparse.csr_matrix((y, (rows, group)), shape=shape)
    negatives = sparse.csr_matrix((1 - y, (rows, group)), shape=shape)
    pos = np.asarray((positives.T @ w.T).T)  # resamples x groups
    neg = np.asarray((negatives.T @ w.T).T)
    # sum of pos * (negatives strictly below + half the tied ones) = pos . cumsum(neg) - pos . neg / 2
    wins = np.einsum("bg,bg->b", pos, np.cumsum(neg, axis=1)) - 0.5 * np.einsum("bg,bg->b", pos, neg)
    auc: np.ndarray = wins / (pos.sum(axis=1) * neg.sum(axis=1))
    return auc


def _log_loss(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    if proba.ndim == 2:  # multi-class: y holds column indices
        p = np.clip(proba[np.arange(len(y)), y.astype(int)], _EPS, 1.0)
        return _mean(w, -np.log(p))
    p = np.clip(proba, _EPS, 1 - _EPS)
    return _mean(w, -(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _brier(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _mean(w, (proba - y) ** 2)


def _mse(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _mean(w, (pred - y) ** 2)


def _rmse(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    rmse: np.ndarray = np.sqrt(_mse(y, pred, w))
    return rmse


def _mae(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _mean(w, np.abs(pred - y))


def _r2(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1)
    sse = w @ ((pred - y) ** 2)
    centred = y - y.mean()  # the sum of squares is shift-invariant; centred, it keeps its precision for large y
    sst = w @ (centred**2) - (w @ centred) ** 2 / total  # weighted sum of squares about each resample's own mean
    r2: np.ndarray = 1 - sse / sst
    return r2


METRICS: dict[str, ModelMetric] = {
    m.name: m
    for m in (
        ModelMetric("accuracy", "label", "classification", True, _accuracy),
        ModelMetric("balanced_accuracy", "label", "classification", True, _balanced_accuracy),
        ModelMetric("precision", "label", "binary", True, _precision),
        ModelMetric("recall", "label", "binary", True, _recall),
        ModelMetric("f1", "label", "binary", True, _f1),
        ModelMetric("roc_auc", "proba", "binary", True, _roc_auc),
        ModelMetric("log_loss", "proba", "classification", False, _log_loss),
        ModelMetric("brier", "proba", "binary", False, _brier),
        ModelMetric("mse", "value", "regression", False, _mse),
        ModelMetric("rmse", "value", "regression", False, _rmse),
        ModelMetric("mae", "value", "regression", False, _mae),
        ModelMetric("r2", "value", "regression", True, _r2),
    )
}


def get_metric(name: str | ModelMetric) -> ModelMetric:
    """A metric by name; InvalidValueError listing the known ones."""
    if isinstance(name, ModelMetric):
        return name
    if not isinstance(name, str) or name not in METRICS:
        raise InvalidValueError(
            f"Unknown metric {name!r}; metrics are {', '.join(METRICS)}." + did_you_mean(str(name), METRICS)
        )
    return METRICS[name]


def bootstrap_weights(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Count matrices of ``n_boot`` resamples of ``n`` rows, in chunks, from one generator seeded with ``seed``.

    Chunk ``k`` holds the counts of the rows drawn by
    ``rng.integers(0, n, size=(chunk, n))``, so a loop drawing the same way
    reproduces the resamples exactly.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, CHUNK_ELEMENTS // max(n, 1)))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        rows = rng.integers(0, n, size=(size, n))
        offsets = (rows + (np.arange(size) * n)[:, None]).ravel()
        yield np.bincount(offsets, minlength=size * n).reshape(size, n).astype(np.float64)
