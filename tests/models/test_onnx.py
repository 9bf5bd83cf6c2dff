from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidValueError, SchemaError, UnsupportedModelError
from loopml.models import ColumnSpec, Signature, infer_signature, load_model_from_run, log_model, to_onnx
from loopml.models.flavors import flavor_for
from loopml.tracking.client import TrackingClient

Iris = tuple[pd.DataFrame, pd.Series]


def test_converted_model_matches_sklearn(client: TrackingClient, run_id: str, iris: Iris) -> None:
    features, target = iris
    model = LogisticRegression(max_iter=1000).fit(features, target)
    signature = infer_signature(features)
    proto = to_onnx(model, signature)
    info = log_model(client, run_id, proto, "onnx-model", signature=signature, input_example=features)
    assert info.flavor == "onnx"
    config = info.manifest["flavor_config"]
    assert config["inputs"] == [{"name": "input", "type": "tensor(float)", "shape": [None, 4]}]
    assert [o["name"] for o in config["outputs"]] == ["label", "probabilities"]

    loaded = load_model_from_run(client, run_id, "onnx-model")
    assert loaded.flavor == "onnx"
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features), atol=1e-5)
    record = features.iloc[0].to_dict()
    np.testing.assert_array_equal(loaded.predict(record), model.predict(features.iloc[[0]]))


def test_bytes_are_an_onnx_model(iris: Iris) -> None:
    model = LogisticRegression(max_iter=1000).fit(*iris)
    proto = to_onnx(model, infer_signature(iris[0]))
    assert flavor_for(proto).name == "onnx"
    assert flavor_for(proto.SerializeToString()).name == "onnx"


def test_one_input_per_column(client: TrackingClient, run_id: str) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.DOUBLE, [None, 1]),
            helper.make_tensor_value_info("b", TensorProto.DOUBLE, [None, 1]),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.DOUBLE, [None, 1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    log_model(client, run_id, proto.SerializeToString(), signature=None)
    loaded = load_model_from_run(client, run_id)
    np.testing.assert_allclose(loaded.predict({"b": [1.0, 2.0], "a": [10, 20]}), [[11.0], [22.0]])
    with pytest.raises(SchemaError) as caught:
        loaded.predict({"a": [1.0]})
    assert set(caught.value.problems) == {"b"}
    with pytest.raises(UnsupportedModelError, match="probabilities"):
        loaded.predict_proba({"a": [1.0], "b": [1.0]})


def test_to_onnx_needs_numeric_inputs_in_fitted_order(iris: Iris) -> None:
    features, target = iris
    model = LogisticRegression(max_iter=1000).fit(features, target)
    mixed = Signature((ColumnSpec("x", "float"), ColumnSpec("city", "string")))
    with pytest.raises(UnsupportedModelError, match="'city' \\(string\\)"):
        to_onnx(model, mixed)
    reordered = Signature(tuple(reversed(infer_signature(features).inputs)))
    with pytest.raises(InvalidValueError, match="fitted on"):
        to_onnx(model, reordered)


def test_invalid_onnx_bytes_are_refused(client: TrackingClient, run_id: str) -> None:
    with pytest.raises(UnsupportedModelError, match="onnxruntime"):
        log_model(client, run_id, b"not a model")
    assert client.list_artifacts(run_id, "model") == []


def test_an_estimator_skl2onnx_cannot_convert_is_unsupported(iris: Iris) -> None:
    from sklearn.semi_supervised import LabelPropagation

    features, target = iris
    model = LabelPropagation().fit(features, target)
    with pytest.raises(UnsupportedModelError, match="skl2onnx cannot convert LabelPropagation"):
        to_onnx(model, infer_signature(features))
