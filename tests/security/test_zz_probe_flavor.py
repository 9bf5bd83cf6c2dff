import json, os, shutil
from pathlib import Path
import numpy as np
import pytest

def corruptions(path: Path):
    data = path.read_bytes()
    yield "half", lambda: path.write_bytes(data[: len(data) // 2])
    yield "empty", lambda: path.write_bytes(b"")
    yield "random", lambda: path.write_bytes(os.urandom(len(data)))
    yield "flip", lambda: path.write_bytes(data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1 :])
    yield "json", lambda: path.write_bytes(b'{"learner": 5}')
    yield "json2", lambda: path.write_bytes(b'{"version": [2,0,0], "learner": {"attributes": {}, "feature_names": [], "feature_types": [], "gradient_booster": {"name": "gbtree", "model": {}}, "learner_model_param": {}, "objective": {"name": "reg:squarederror"}}}')
    yield "deleted", lambda: path.unlink()
    yield "dir", lambda: (path.unlink(), path.mkdir())

def probe(flavor, model, tmp_path, files, example=None):
    for file in files:
        for name, corrupt in corruptions_list(tmp_path, flavor, model, file, example):
            pass

def corruptions_list(tmp_path, flavor, model, file, example):
    import uuid; tag = uuid.uuid4().hex[:6]; base = tmp_path / f"base{tag}"
    if base.exists(): shutil.rmtree(base)
    base.mkdir()
    config = flavor.save(model, base, example=example)
    for name, _ in corruptions(base / file):
        folder = tmp_path / f"c{tag}-{file}-{name}"
        shutil.copytree(base, folder)
        dict(corruptions(folder / file))[name]()
        try:
            loaded = flavor.load(folder, config, trusted=None)
            try:
                out = flavor.predict(loaded, example)
                print("LOADED", type(flavor).__name__, file, name, "predict ok", np.asarray(out).ravel()[:3])
            except Exception as e:
                print("LOADED", type(flavor).__name__, file, name, "predict raised", type(e).__name__, str(e)[:200])
        except Exception as e:
            print("RAISED", type(flavor).__name__, file, name, type(e).__name__, str(e)[:300].replace("\n", " | "))
    return []

def test_probe(tmp_path, iris):
    import xgboost, lightgbm
    from loopml.models.flavors.xgboost import XGBoostFlavor
    from loopml.models.flavors.lightgbm import LightGBMFlavor
    from loopml.models.flavors.torch import TorchFlavor
    from tests.models.test_more_flavors import _torch_net
    X, y = iris
    ex = X.head()
    corruptions_list(tmp_path, XGBoostFlavor(), xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y), "model.json", ex)
    corruptions_list(tmp_path, XGBoostFlavor(), xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=y), num_boost_round=3), "model.json", ex)
    pass  # corruptions_list(tmp_path, LightGBMFlavor(), lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y), "model.txt", ex)
    net = _torch_net(4)
    corruptions_list(tmp_path, TorchFlavor(), net, "program.pt2", ex)
    corruptions_list(tmp_path, TorchFlavor(), net, "weights.safetensors", ex)
