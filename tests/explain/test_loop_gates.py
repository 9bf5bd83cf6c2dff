"""The loop's gates over responsible ML: a group regression and a revenue loss each reject the challenger."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidValueError
from loopml.explain.metrics import metric, unregister_metric
from loopml.loop import Candidate, business_metric, explained, no_group_worse


@pytest.fixture
def candidates(task):
    X, y, group = task["X"], task["y"], task["group"]
    champion = LogisticRegression().fit(X.iloc[:400], y[:400])
    holdout = X.iloc[400:].assign(target=y[400:])

    class Refuses:
        """The champion, except that it refuses the rows whose income is high."""

        classes_ = champion.classes_

        def predict(self, frame):
            return np.where(frame["income"].to_numpy() > 0.5, 0, champion.predict(frame))

    @metric(name="loop_revenue")
    def loop_revenue(predictions, labels, features):
        return float(((predictions == 1) & (labels == 1)).sum() * 40 - ((predictions == 1) & (labels == 0)).sum() * 100)

    yield champion, Candidate(champion, holdout, "target"), Candidate(Refuses(), holdout, "target"), group
    unregister_metric("loop_revenue")


def test_a_group_regression_rejects_the_challenger(candidates) -> None:
    champion, same, worse, _ = candidates
    band = lambda X: (X["income"] > 0.5).map({True: "high", False: "low"}).rename("income band")  # noqa: E731
    gate = no_group_worse(band, tolerance=0.02)
    assert gate(same, champion).passed
    verdict = gate(worse, champion)
    assert not verdict.passed and [c.name for c in verdict.failures] == ["group income band=high"]
    assert gate(worse, None).passed  # nothing to compare with: absolute bounds only, none set
    with pytest.raises(InvalidValueError, match="needs sensitive"):
        no_group_worse()(same, champion)


def test_a_revenue_loss_rejects_the_challenger_and_explained_records_importance(candidates) -> None:
    champion, same, _, _ = candidates
    accept_all = Candidate(DummyClassifier(strategy="constant", constant=1).fit(same.X, same.y), same.holdout, "target")
    gate = business_metric("loop_revenue", max_relative_loss=0.01)
    assert gate(same, champion).passed
    verdict = gate(accept_all, champion)
    assert not verdict.passed and verdict.to_evidence()["figures"]["metric"] == "loop_revenue"
    record = explained(n_repeats=2)(same, champion)
    assert record.passed and record.figures["explanations"]["shap"]["method"] == "linear"
    assert "background" not in record.figures["explanations"]
