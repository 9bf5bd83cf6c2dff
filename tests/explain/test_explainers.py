"""Per-prediction SHAP attributions: additivity for each explainer, the cache, and unsupported explainers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from loopml.errors import InvalidValueError, UnsupportedModelError
from loopml.explain.explainers import Explainer
from loopml.explain.local import explain, explainer_for


def _fit(model, task):
    X, y = task["X"].iloc[task["train"]], task["y"][task["train"]]
    return model.fit(X, y)


@pytest.mark.parametrize(
    ("model", "method", "output"),
    [
        (RandomForestClassifier(n_estimators=20, random_state=0), "tree", "probability of class 1"),
        (LogisticRegression(), "linear", "log-odds of class 1"),
        (KNeighborsClassifier(), "kernel", "probability of class 1"),
    ],
)
def test_attributions_add_up_to_the_output_minus_the_expected_value(task, model, method, output) -> None:
    fitted = _fit(model, task)
    rows = task["X"].iloc[400:408]
    found = explain(fitted, rows, background=task["X"].iloc[:100])
    assert (found.method, found.output, found.additive) == (method, output, True)
    assert found.values.shape == (8, 4) and found.columns == ("income", "debt", "age", "tenure")
    # the output is the model's own, computed apart from the attributions
    own = fitted.decision_function(rows) if method == "linear" else fitted.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(found.outputs, own, atol=1e-6)
    np.testing.assert_allclose(found.values.sum(axis=1), own - found.expected_value, atol=1e-6)
    record = found.to_records()[0]
    assert set(record["attributions"]) == {"income", "debt", "age", "tenure"}
    assert sum(record["attributions"].values()) == pytest.approx(record["output_value"] - record["expected_value"])


def test_regressors_are_explained_on_their_predicted_value(task) -> None:
    X, y = task["X"].iloc[:300], task["X"]["income"].iloc[:300] * 3 + task["y"][:300]
    for model in (RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y), LinearRegression().fit(X, y)):
        found = explain(model, X.iloc[:5], background=X)
        assert found.output == "prediction"
        np.testing.assert_allclose(
            found.values.sum(axis=1) + found.expected_value, model.predict(X.iloc[:5]), atol=1e-6
        )


def test_the_explainer_is_built_once_per_model(task) -> None:
    fitted = _fit(RandomForestClassifier(n_estimators=5, random_state=0), task)
    first = explainer_for(fitted)
    assert explainer_for(fitted) is first
    other = _fit(RandomForestClassifier(n_estimators=5, random_state=1), task)
    assert explainer_for(other) is not first


def test_an_explainer_that_does_not_fit_the_model_names_the_one_that_would(task) -> None:
    linear = _fit(LogisticRegression(), task)
    with pytest.raises(
        UnsupportedModelError,
        match=r"tree explainer does not support LogisticRegression.*linear explainer \(method='linear'\) would",
    ):
        Explainer(linear, task["X"], method="tree")
    knn = _fit(KNeighborsClassifier(), task)
    with pytest.raises(
        UnsupportedModelError,
        match="linear explainer does not support KNeighborsClassifier; the kernel explainer would",
    ):
        Explainer(knn, task["X"], method="linear")
    with pytest.raises(InvalidValueError, match="needs background rows"):
        Explainer(linear)
    with pytest.raises(InvalidValueError, match="Unknown explanation method"):
        Explainer(linear, task["X"], method="deep")  # type: ignore[arg-type]


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_xgboost_and_lightgbm_are_explained_on_their_log_odds(task, library) -> None:
    module = pytest.importorskip(library)
    model = (module.XGBClassifier(n_estimators=10) if library == "xgboost"
             else module.LGBMClassifier(n_estimators=10, verbose=-1))  # fmt: skip
    fitted = _fit(model, task)
    rows = task["X"].iloc[400:406]
    found = explain(fitted, rows)
    assert (found.method, found.output) == ("tree", "log-odds of class 1")
    proba = np.clip(fitted.predict_proba(rows)[:, 1], 1e-15, 1 - 1e-15)
    np.testing.assert_allclose(found.values.sum(axis=1) + found.expected_value, np.log(proba / (1 - proba)), atol=1e-5)
