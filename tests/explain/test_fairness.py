"""Group figures equal fairlearn's on the same data; small groups are "not enough data"; the fairness gate."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidValueError
from loopml.explain.fairness import NOT_ENOUGH_DATA, fairness
from loopml.validation.responsible import fairness_gate


def _data(seed: int = 1, n: int = 900):
    rng = np.random.default_rng(seed)
    group = rng.choice(["x", "y", "z"], size=n, p=[0.5, 0.3, 0.2])
    y_true = rng.integers(0, 2, n)
    bias = np.select([group == "x", group == "y"], [0.7, 0.5], 0.3)
    y_pred = np.where(rng.random(n) < bias, y_true, 1 - y_true)
    return y_true, y_pred, group


def test_group_figures_equal_fairlearns() -> None:
    y_true, y_pred, group = _data()
    found = fairness(y_true, y_pred, group, min_rows=1)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=group,
    )  # fmt: skip
    for g in found.groups:
        for metric in ("selection_rate", "tpr", "fpr"):
            assert g.value(metric) == pytest.approx(frame.by_group.loc[g.group, metric], abs=1e-12)
    assert found.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=group), abs=1e-12
    )
    assert found.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=group), abs=1e-12
    )


def test_a_group_with_too_few_rows_is_not_enough_data_and_takes_no_part_in_the_differences() -> None:
    y_true, y_pred, group = _data()
    group = group.astype(object)
    group[:12] = "tiny"
    found = fairness(y_true, y_pred, group, min_rows=30)
    tiny = found.group("tiny")
    assert tiny is not None and tiny.n == 12 and not tiny.enough_data
    assert any(NOT_ENOUGH_DATA in note for note in found.notes)
    keep = group != "tiny"
    assert found.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true[keep], y_pred[keep], sensitive_features=group[keep])
    )
    alone = fairness(y_true[:20], y_pred[:20], ["x"] * 20, min_rows=30)
    assert alone.demographic_parity_difference is None and alone.equalized_odds_difference is None
    with pytest.raises(InvalidValueError, match="give one per row"):
        fairness(y_true, y_pred, group[:5])


def test_the_gate_blocks_a_challenger_that_makes_one_group_worse_off(task) -> None:
    X, y, group = task["X"], task["y"], task["group"]
    train, test = task["train"], task["test"]
    champion = LogisticRegression().fit(X.iloc[train], y[train])

    class Unfair:
        """The champion, except that it refuses every row of group b."""

        classes_ = champion.classes_

        def predict(self, frame):
            labels = champion.predict(frame.drop(columns=["group"]))
            return np.where(frame["group"].to_numpy() == "b", 0, labels)

    holdout = X.iloc[test].assign(group=group[test])
    fine = fairness_gate(champion, champion, holdout, y[test], "group", tolerance=0.02)
    assert fine.passed and all(c.passed for c in fine.checks)
    assert fine.figures["challenger"]["groups"][0]["group"] == "a"  # the model never saw the column: dropped
    blocked = fairness_gate(Unfair(), champion, holdout, y[test], "group", tolerance=0.02)
    assert not blocked.passed
    failed = {c.name: c for c in blocked.failures}
    assert list(failed) == ["group group=b"]
    assert failed["group group=b"].figures["challenger"] == 0.0 and failed["group group=b"].figures["delta"] < -0.02
    # a small group neither passes nor fails: it is skipped with "not enough data"
    small = fairness_gate(Unfair(), champion, holdout, y[test], "group", min_rows=500)
    assert small.passed and all(c.skipped and NOT_ENOUGH_DATA in c.message for c in small.checks)
    bounded = fairness_gate(
        DummyClassifier(strategy="most_frequent").fit(X.iloc[train], y[train]), None, holdout, y[test], "group",
        max_parity_difference=0.1, max_equalized_odds_difference=0.1,
    )  # fmt: skip
    assert bounded.passed and {c.name for c in bounded.checks} >= {"demographic_parity_difference"}
    with pytest.raises(InvalidValueError, match="names no column"):
        fairness_gate(champion, None, holdout, y[test], "gruop")
