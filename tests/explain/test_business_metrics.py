"""@loopml.metric: registration with a code hash, thresholds and challenger gates, and a metric that breaks."""

from __future__ import annotations

import hashlib
import inspect

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidValueError
from loopml.explain.metrics import (
    BUILT_IN_METRICS,
    evaluate_metric,
    get_business_metric,
    metric,
    unregister_metric,
)
from loopml.validation.gates import validate_model
from loopml.validation.metrics import METRICS
from loopml.validation.responsible import business_metric_gate


def revenue(predictions, labels, features):
    """Each accepted good customer brings 40; each accepted bad one costs 100."""
    accepted = np.asarray(predictions) == 1
    return float(40 * (accepted & (labels == 1)).sum() - 100 * (accepted & (labels == 0)).sum())


@pytest.fixture
def registered():
    found = metric(higher_is_better=True)(revenue)
    yield found
    unregister_metric("revenue")


def test_a_registered_metric_carries_the_hash_of_its_code(registered) -> None:
    assert get_business_metric("revenue") is registered
    assert registered.code_hash == hashlib.sha256(inspect.getsource(revenue).encode()).hexdigest()
    assert registered.describe()["code_hash"] == registered.code_hash
    with pytest.raises(InvalidValueError, match=r"No business metric .revenu.*revenue"):
        get_business_metric("revenu")
    with pytest.raises(InvalidValueError, match="built-in metric"):
        metric(name="roc_auc")(revenue)
    assert set(METRICS) <= BUILT_IN_METRICS


def test_business_metrics_are_named_in_thresholds_like_built_in_ones(task, registered) -> None:
    X, y = task["X"], task["y"]
    model = LogisticRegression().fit(X.iloc[:400], y[:400])
    result = validate_model(model, X.iloc[400:], y[400:], {"accuracy": 0.5, "revenue": 0.0})
    expected = revenue(model.predict(X.iloc[400:]), y[400:], None)
    assert result.figures["metrics"]["revenue"] == expected
    check = result.checks[1]
    assert check.name == "revenue" and check.figures["code_hash"] == registered.code_hash


def test_the_gate_blocks_a_challenger_that_loses_more_than_one_percent_of_revenue(task, registered) -> None:
    X, y = task["X"], task["y"]
    champion = LogisticRegression().fit(X.iloc[:400], y[:400])
    same = business_metric_gate("revenue", champion, champion, X.iloc[400:], y[400:])
    assert same.passed
    accept_all = DummyClassifier(strategy="constant", constant=1).fit(X.iloc[:400], y[:400])
    blocked = business_metric_gate("revenue", accept_all, champion, X.iloc[400:], y[400:], max_relative_loss=0.01)
    assert not blocked.passed
    loss = blocked.failures[0]
    assert loss.name == "vs champion" and loss.figures["relative_change"] < -0.01
    assert blocked.to_evidence()["figures"]["code_hash"] == registered.code_hash


def test_a_metric_that_raises_or_returns_no_number_fails_its_gate_with_the_traceback(task) -> None:
    @metric
    def broken(predictions, labels, features):
        raise ZeroDivisionError("no customers in this holdout")

    @metric(name="wordy")
    def wordy(predictions, labels, features):
        return "a lot"

    try:
        X, y = task["X"], task["y"]
        model = LogisticRegression().fit(X.iloc[:400], y[:400])
        result = business_metric_gate("broken", model, model, X.iloc[400:], y[400:])
        assert not result.passed
        evidence = result.to_evidence()["checks"][0]
        assert evidence["passed"] is False
        assert (
            "Traceback" in evidence["figures"]["error"]
            and "ZeroDivisionError: no customers" in evidence["figures"]["error"]
        )
        assert "ZeroDivisionError" in evidence["message"]
        value = evaluate_metric("wordy", np.ones(3), np.ones(3), None)
        assert value.value is None and "not a finite number" in (value.error or "")
        assert not validate_model(model, X.iloc[400:], y[400:], {"wordy": 1.0}).passed
    finally:
        unregister_metric("broken")
        unregister_metric("wordy")
