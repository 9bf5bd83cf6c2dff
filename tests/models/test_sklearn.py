from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from loopml.errors import UnsupportedModelError, UntrustedTypeError
from loopml.models import load_model_from_run, log_model
from loopml.tracking.client import TrackingClient

Iris = tuple[pd.DataFrame, pd.Series]
TREE = "sklearn.tree._tree.Tree"


class Doubler(TransformerMixin, BaseEstimator):
    """A user-defined transformer: skops does not trust it by default."""

    def fit(self, X: object, y: object = None) -> Doubler:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X * 2


def _logistic(iris: Iris) -> LogisticRegression:
    return LogisticRegression(max_iter=1000).fit(*iris)


def _forest(iris: Iris) -> Pipeline:
    steps = [("scale", StandardScaler()), ("forest", RandomForestClassifier(n_estimators=20, random_state=0))]
    return Pipeline(steps).fit(*iris)


@pytest.mark.parametrize(("build", "trusted"), [(_logistic, None), (_forest, [TREE])], ids=["logistic", "forest"])
def test_round_trip_predicts_like_the_original(
    client: TrackingClient, run_id: str, iris: Iris, build: object, trusted: list[str] | None
) -> None:
    features, _ = iris
    model = build(iris)  # type: ignore[operator]
    info = log_model(client, run_id, model, input_example=features)
    assert info.flavor == "sklearn"
    assert info.uri == f"runs:/{run_id}/model"

    loaded = load_model_from_run(client, run_id, trusted=trusted)
    assert loaded.flavor == "sklearn"
    assert type(loaded.raw) is type(model)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))


def test_every_input_form_gives_the_same_prediction(client: TrackingClient, run_id: str, iris: Iris) -> None:
    features, _ = iris
    model = _logistic(iris)
    log_model(client, run_id, model, input_example=features)
    loaded = load_model_from_run(client, run_id)
    rows = features.iloc[[0, 60, 120]]
    expected = model.predict(rows)
    np.testing.assert_array_equal(loaded.predict(rows.to_dict(orient="records")), expected)
    np.testing.assert_array_equal(loaded.predict(rows.to_dict(orient="list")), expected)
    single = [loaded.predict(rows.iloc[i].to_dict())[0] for i in range(len(rows))]
    np.testing.assert_array_equal(single, expected)


def test_model_fitted_on_numpy_takes_positional_columns(client: TrackingClient, run_id: str, iris: Iris) -> None:
    matrix, target = iris[0].to_numpy(), iris[1].to_numpy()
    model = LogisticRegression(max_iter=1000).fit(matrix, target)
    info = log_model(client, run_id, model, input_example=matrix)
    assert info.signature is not None and info.signature.input_names == ["0", "1", "2", "3"]
    loaded = load_model_from_run(client, run_id)
    frame = pd.DataFrame(matrix, columns=["0", "1", "2", "3"])
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(matrix))


def test_scikit_learns_own_types_are_trusted(client: TrackingClient, run_id: str, iris: Iris) -> None:
    forest = _forest(iris)
    info = log_model(client, run_id, forest, input_example=iris[0])
    assert info.manifest["flavor_config"]["untrusted_types"] == [TREE]  # skops alone would refuse it
    loaded = load_model_from_run(client, run_id)
    np.testing.assert_array_equal(loaded.predict(iris[0]), forest.predict(iris[0]))


def test_untrusted_custom_type_is_refused_then_trusted(client: TrackingClient, run_id: str, iris: Iris) -> None:
    features, target = iris
    model = Pipeline([("double", Doubler()), ("clf", LogisticRegression(max_iter=1000))]).fit(features, target)
    info = log_model(client, run_id, model, input_example=features)
    name = f"{__name__}.Doubler"
    assert info.manifest["flavor_config"]["untrusted_types"] == [name]

    with pytest.raises(UntrustedTypeError) as caught:
        load_model_from_run(client, run_id)
    assert caught.value.untrusted == [name]
    assert name in caught.value.message and "trusted=" in caught.value.message
    with pytest.raises(UntrustedTypeError):
        load_model_from_run(client, run_id, trusted=["functools.partial"])

    for trusted in ([name], [Doubler]):
        loaded = load_model_from_run(client, run_id, trusted=trusted)
        np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_skops_by_default_pickle_only_when_asked(client: TrackingClient, iris: Iris) -> None:
    model = _logistic(iris)
    safe = client.create_run("models", capture=False).run_id
    info = log_model(client, safe, model)
    assert info.manifest["flavor_config"]["serialization"] == "skops"
    assert [e.path for e in client.list_artifacts(safe, "model")] == ["model/loopml-model.json", "model/model.skops"]

    unsafe = client.create_run("models", capture=False).run_id
    info = log_model(client, unsafe, model, unsafe_pickle=True)
    assert info.manifest["flavor_config"]["serialization"] == "pickle"
    assert [e.path for e in client.list_artifacts(unsafe, "model")] == ["model/loopml-model.json", "model/model.pkl"]
    with pytest.raises(UntrustedTypeError, match="unsafe_pickle=True"):
        load_model_from_run(client, unsafe)  # loading a pickle needs the same explicit consent
    loaded = load_model_from_run(client, unsafe, unsafe_pickle=True)
    np.testing.assert_array_equal(loaded.predict(iris[0]), model.predict(iris[0]))


def test_predict_proba_refused_for_regressors(client: TrackingClient, run_id: str, iris: Iris) -> None:
    features, target = iris
    log_model(client, run_id, LinearRegression().fit(features, target), input_example=features)
    loaded = load_model_from_run(client, run_id)
    assert loaded.predict(features).shape == (len(features),)
    with pytest.raises(UnsupportedModelError, match="predict_proba"):
        loaded.predict_proba(features)


def test_sklearn_models_take_no_artifacts(client: TrackingClient, run_id: str, iris: Iris, tmp_path: object) -> None:
    from loopml.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="PythonModel"):
        log_model(client, run_id, _logistic(iris), artifacts={"x": str(tmp_path)})


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [("left_child", 10**6, "child index"), ("right_child", 0, "child index"), ("feature", 99, "feature index")],
)
def test_a_tree_with_out_of_range_indices_is_refused(field: str, value: int, problem: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from loopml.errors import ModelIntegrityError
    from loopml.models.flavors.sklearn import check_tree_bounds

    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    check_tree_bounds(forest)  # a genuine forest passes
    tree = forest.estimators_[1].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes[field][0] = value  # the root is a split node
    tree.__setstate__({**state, "nodes": nodes})
    with pytest.raises(ModelIntegrityError, match=problem):
        check_tree_bounds(forest)


def test_a_tampered_forest_is_refused_on_load(client: TrackingClient, run_id: str, iris: Iris) -> None:
    import skops.io

    from loopml.errors import ModelIntegrityError

    forest = _forest(iris)
    info = log_model(client, run_id, forest, input_example=iris[0])
    tree = forest[-1].estimators_[0].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["feature"][0] = 1000
    tree.__setstate__({**state, "nodes": nodes})
    # an attacker with write access rewrites the file and the manifest hash to match
    import hashlib
    import io
    import json

    buffer = io.BytesIO()
    skops.io.dump(forest, buffer)
    data = buffer.getvalue()
    manifest = dict(info.manifest)
    manifest["files"] = {**manifest["files"], "model.skops": hashlib.sha256(data).hexdigest()}
    client.log_artifact_bytes(run_id, {"model/model.skops": data, "model/loopml-model.json": json.dumps(manifest).encode()})
    with pytest.raises(ModelIntegrityError, match="feature index"):
        load_model_from_run(client, run_id)


def test_state_skops_cannot_serialise_is_unsupported_and_nothing_is_logged(
    client: TrackingClient, run_id: str, iris: Iris
) -> None:
    model = _logistic(iris)
    model.progress_ = (step for step in range(3))  # a generator: skops (like pickle) cannot store it
    with pytest.raises(UnsupportedModelError, match=r"skops cannot save LogisticRegression.*unsafe_pickle"):
        log_model(client, run_id, model)
    assert client.list_artifacts(run_id) == []
