"""XGBoost, LightGBM and PyTorch flavors: small real models trained offline, logged, loaded and served.

Each is logged with ``log_model`` (the flavor chosen from the model's type), loaded
back from its own format (no pickle in the package), and must predict exactly what
the model in memory predicts; served through the prediction app, it answers the
same over HTTP. ONNX conversion is checked where a converter supports the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidValueError, ModelIntegrityError
from loopml.models import load_model_from_run, log_model
from loopml.models.flavors import flavor_for
from loopml.tracking.client import TrackingClient

Iris = tuple[pd.DataFrame, pd.Series]


def _no_pickle(info: Any) -> None:
    """The package's files are the flavor's own formats: no pickle, skops or joblib file among them."""
    files = set(info.manifest["files"])
    assert not [name for name in files if name.endswith((".pkl", ".pickle", ".joblib", ".skops"))], files


def test_xgboost_classifier_round_trips_in_its_json_format(client: TrackingClient, run_id: str, iris: Iris) -> None:
    import xgboost

    features, target = iris
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(features, target)
    assert flavor_for(model).name == "xgboost"
    info = log_model(client, run_id, model, "xgb", input_example=features.head())
    assert info.flavor == "xgboost" and info.manifest["flavor_config"]["file"] == "model.json"
    _no_pickle(info)
    loaded = load_model_from_run(client, run_id, "xgb")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features), rtol=1e-6)
    assert type(loaded.raw).__name__ == "XGBClassifier"


def test_xgboost_booster_and_regressor(client: TrackingClient, run_id: str) -> None:
    import xgboost
    from sklearn.datasets import load_diabetes

    features, target = load_diabetes(return_X_y=True, as_frame=True)
    booster = xgboost.train({"max_depth": 3, "seed": 0}, xgboost.DMatrix(features, label=target), num_boost_round=15)
    log_model(client, run_id, booster, "booster", input_example=features.head())
    loaded = load_model_from_run(client, run_id, "booster")
    np.testing.assert_allclose(loaded.predict(features), booster.predict(xgboost.DMatrix(features)), rtol=1e-6)
    regressor = xgboost.XGBRegressor(n_estimators=10, random_state=0).fit(features, target)
    log_model(client, run_id, regressor, "regressor", input_example=features.head())
    shuffled = features[list(reversed(features.columns))]  # by name, not by position
    np.testing.assert_allclose(load_model_from_run(client, run_id, "regressor").predict(shuffled),
                               regressor.predict(features), rtol=1e-6)  # fmt: skip


def test_lightgbm_classifier_answers_labels_and_probabilities(client: TrackingClient, run_id: str, iris: Iris) -> None:
    import lightgbm

    features, target = iris
    labels = target.map({0: "setosa", 1: "versicolor", 2: "virginica"})  # string classes come back as strings
    model = lightgbm.LGBMClassifier(n_estimators=20, random_state=0, verbose=-1).fit(features, labels)
    assert flavor_for(model).name == "lightgbm"
    info = log_model(client, run_id, model, "lgbm", input_example=features.head())
    assert info.manifest["flavor_config"]["file"] == "model.txt"
    _no_pickle(info)
    loaded = load_model_from_run(client, run_id, "lgbm")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features), rtol=1e-9)


def test_lightgbm_binary_and_regression(client: TrackingClient, run_id: str) -> None:
    import lightgbm
    from sklearn.datasets import load_breast_cancer, load_diabetes

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    binary = lightgbm.LGBMClassifier(n_estimators=15, random_state=0, verbose=-1).fit(features, target)
    log_model(client, run_id, binary, "binary", input_example=features.head())
    loaded = load_model_from_run(client, run_id, "binary")
    np.testing.assert_array_equal(loaded.predict(features), binary.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), binary.predict_proba(features), rtol=1e-9)
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    regressor = lightgbm.LGBMRegressor(n_estimators=15, random_state=0, verbose=-1).fit(features, target)
    log_model(client, run_id, regressor, "regressor", input_example=features.head())
    np.testing.assert_allclose(load_model_from_run(client, run_id, "regressor").predict(features),
                               regressor.predict(features), rtol=1e-9)  # fmt: skip


def _torch_net(width: int) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 3))


def _train(net: Any, features: pd.DataFrame, target: pd.Series) -> Any:
    import torch

    x = torch.tensor(features.to_numpy(dtype=np.float32))
    y = torch.tensor(target.to_numpy())
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
    return net.eval()


def test_torch_module_is_an_exported_program_with_safetensors_weights(
    client: TrackingClient, run_id: str, iris: Iris, tmp_path: Path
) -> None:
    import torch

    features, target = iris
    net = _train(_torch_net(features.shape[1]), features, target)
    assert flavor_for(net).name == "torch"
    info = log_model(client, run_id, net, "net", input_example=features.head())
    assert set(info.manifest["files"]) >= {"program.pt2", "weights.safetensors"}
    _no_pickle(info)
    loaded = load_model_from_run(client, run_id, "net")
    with torch.no_grad():
        expected = net(torch.tensor(features.to_numpy(dtype=np.float32))).numpy()
    np.testing.assert_allclose(loaded.predict(features), expected, rtol=1e-5, atol=1e-6)
    one = loaded.predict(features.iloc[[3]])  # a batch of one: the batch dimension stayed dynamic
    np.testing.assert_allclose(one, expected[[3]], rtol=1e-5, atol=1e-6)

    # the weights are what the safetensors file says: a package whose weights do not fit is refused
    from loopml.models.flavors.torch import TorchFlavor

    folder = tmp_path / "package"
    folder.mkdir()
    config = TorchFlavor().save(net, folder, example=features.head())
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "weights.safetensors"))
    weights["0.weight"] = torch.zeros(2, 2)
    save_file(weights, str(folder / "weights.safetensors"))
    with pytest.raises(ModelIntegrityError, match="sha256 differs"):  # the file's digest is in the config
        TorchFlavor().load(folder, config, trusted=None)
    undigested = {key: value for key, value in config.items() if key != "sha256"}  # a package from before digests
    with pytest.raises(ModelIntegrityError, match="do not fit"):
        TorchFlavor().load(folder, undigested, trusted=None)


def test_torch_needs_an_input_example(client: TrackingClient, run_id: str, iris: Iris) -> None:
    net = _torch_net(iris[0].shape[1])
    with pytest.raises(InvalidValueError, match="input_example"):
        log_model(client, run_id, net, "net", signature=None)
    assert client.list_artifacts(run_id, "net") == []  # nothing half-logged


def test_each_flavor_serves_over_http(asgi_client: Any, tmp_path: Path, iris: Iris) -> None:
    """Registered and deployed, each model answers v1 and v2 requests with its own predictions."""
    import lightgbm
    import torch
    import xgboost

    from loopml.registry.client import RegistryClient
    from loopml.serving.app import create_serving_app
    from loopml.serving.client import ServingClient
    from loopml.store import open_store
    from loopml.tracking.runs import ActiveRun

    features, target = iris
    store = open_store(f"sqlite:///{tmp_path}/serve.db", artifacts_url=str(tmp_path / "artifacts"))
    tracking = TrackingClient(store)
    registry = RegistryClient(tracking)
    models = {
        "xgb": xgboost.XGBClassifier(n_estimators=10, max_depth=2, random_state=0).fit(features, target),
        "lgbm": lightgbm.LGBMClassifier(n_estimators=10, random_state=0, verbose=-1).fit(features, target),
        "net": _train(_torch_net(features.shape[1]), features, target),
    }
    for name, model in models.items():
        run = tracking.create_run("flavors", capture=False)
        info = ActiveRun(tracking, run).log_model(model, "model", input_example=features.head())
        registry.register_model(info.uri, name)
        ServingClient(tracking).deploy(name, 1, reason="flavor test")
    rows = features.iloc[[0, 55, 140]]
    with torch.no_grad():
        net_expected = models["net"](torch.tensor(rows.to_numpy(dtype=np.float32))).numpy()
    try:
        with asgi_client(create_serving_app(store, poll_interval_s=60.0)) as api:
            for name, model in models.items():
                answer = api.post(f"/v1/models/{name}/predict", json={"records": rows.to_dict(orient="records")})
                assert answer.status_code == 200, answer.text
                tensor = {"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.to_numpy().tolist()}
                v2 = api.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
                assert v2.status_code == 200, v2.text
                if name == "net":
                    np.testing.assert_allclose(answer.json()["predictions"], net_expected, rtol=1e-5, atol=1e-6)
                    assert v2.json()["outputs"][0]["shape"] == [3, 3]
                else:
                    assert answer.json()["predictions"] == model.predict(rows).tolist(), name
                    assert v2.json()["outputs"][0]["data"] == model.predict(rows).tolist(), name
                metadata = api.get(f"/v2/models/{name}").json()
                assert metadata["platform"] == f"loopml-{ {'xgb': 'xgboost', 'lgbm': 'lightgbm'}.get(name, 'torch')}"
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_boosted_trees_convert_to_onnx(kind: str, client: TrackingClient, run_id: str, iris: Iris) -> None:
    import lightgbm
    import xgboost

    from loopml.models import infer_signature, to_onnx

    features, target = iris
    if kind == "xgboost":
        model: Any = xgboost.XGBClassifier(n_estimators=10, max_depth=2, random_state=0).fit(features, target)
    else:
        model = lightgbm.LGBMClassifier(n_estimators=10, random_state=0, verbose=-1).fit(features, target)
    proto = to_onnx(model, infer_signature(features))
    log_model(client, run_id, proto, "onnx", input_example=features.head())
    loaded = load_model_from_run(client, run_id, "onnx")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features), atol=1e-5)
    assert json.loads(json.dumps(loaded.metadata["flavor_config"]))  # a plain, JSON-safe config
