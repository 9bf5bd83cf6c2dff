"""Attacks on the XGBoost, LightGBM and PyTorch flavors: a model file changed after it was logged.

Through ``load_model_from_run`` the manifest's sha256 list refuses any changed file before a flavor
runs. A flavor's own ``load`` refuses one too: each records its files' sha256 in its config at save
time and checks them before the library parses a byte (LightGBM aborts the whole process on some
truncated files; a flipped digit or weight would load silently). Whatever the damage, the answer is a
``ModelIntegrityError`` whose message holds no path, never a raw library exception.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import ModelIntegrityError
from loopml.models import load_model_from_run, log_model
from loopml.store import open_store
from loopml.tracking.client import TrackingClient

Iris = tuple[pd.DataFrame, pd.Series]


def _xgboost(features: pd.DataFrame, target: pd.Series) -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=3, max_depth=2, random_state=0).fit(features, target)


def _xgboost_booster(features: pd.DataFrame, target: pd.Series) -> Any:
    import xgboost

    return xgboost.train({"max_depth": 2, "seed": 0}, xgboost.DMatrix(features, label=target), num_boost_round=3)


def _lightgbm(features: pd.DataFrame, target: pd.Series) -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=3, random_state=0, verbose=-1).fit(features, target)


def _torch(features: pd.DataFrame, target: pd.Series) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(features.shape[1], 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def _flavor(name: str) -> Any:
    from loopml.models.flavors.lightgbm import LightGBMFlavor
    from loopml.models.flavors.torch import TorchFlavor
    from loopml.models.flavors.xgboost import XGBoostFlavor

    return {"xgboost": XGBoostFlavor, "lightgbm": LightGBMFlavor, "torch": TorchFlavor}[name]()


#: (flavor, model maker, a file of its package)
CASES = [
    ("xgboost", _xgboost, "model.json"),
    ("xgboost", _xgboost_booster, "model.json"),
    ("lightgbm", _lightgbm, "model.txt"),
    ("torch", _torch, "program.pt2"),
    ("torch", _torch, "weights.safetensors"),
]
IDS = ["xgboost", "xgboost-booster", "lightgbm", "torch-program", "torch-weights"]


def _middle(data: bytes) -> int:
    return len(data) // 2


#: Ways to damage a file: each takes its path and changes it in place.
DAMAGE: dict[str, Callable[[Path], Any]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: _middle(p.read_bytes())]),
    "empty": lambda p: p.write_bytes(b""),
    "random": lambda p: p.write_bytes(os.urandom(max(len(p.read_bytes()), 8))),
    "one-bit": lambda p: p.write_bytes(
        (lambda d: d[: _middle(d)] + bytes([d[_middle(d)] ^ 0x01]) + d[_middle(d) + 1 :])(p.read_bytes())
    ),
    "json": lambda p: p.write_bytes(b'{"learner": 5}'),
    "deleted": lambda p: p.unlink(),
    "a-folder": lambda p: (p.unlink(), p.mkdir()),
}


def _no_path(message: str, folder: Path) -> None:
    assert str(folder) not in message and "/tmp" not in message and "Traceback" not in message, message
    assert "workspace/src" not in message and ".cc:" not in message, message  # no library source locations


@pytest.fixture
def client(tmp_path: Path) -> Any:
    opened = TrackingClient(open_store(f"sqlite:///{tmp_path}/t.db", artifacts_url=str(tmp_path / "artifacts")))
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.parametrize(("flavor", "make", "file"), CASES, ids=IDS)
def test_a_file_changed_after_logging_is_refused_by_the_manifest(client, tmp_path, iris: Iris, flavor, make, file):
    features, target = iris
    model = make(features, target)
    run_id = client.create_run("tamper", capture=False).run_id
    info = log_model(client, run_id, model, "m", input_example=features.head())
    assert info.flavor == flavor and f"{file}" in info.manifest["files"]
    expected = load_model_from_run(client, run_id, "m").predict(features.head())
    client.log_artifact_bytes(run_id, {f"m/{file}": b"replaced after logging"})
    with pytest.raises(ModelIntegrityError, match=file.replace(".", r"\.")) as refused:
        load_model_from_run(client, run_id, "m")
    _no_path(str(refused.value), tmp_path)
    assert np.asarray(expected).shape[0] == 5  # the package answered before it was changed


@pytest.mark.parametrize(("flavor", "make", "file"), CASES, ids=IDS)
def test_a_flavor_refuses_a_damaged_file_with_a_model_integrity_error(tmp_path, iris: Iris, flavor, make, file):
    features, target = iris
    handler = _flavor(flavor)
    saved = tmp_path / "saved"
    saved.mkdir()
    config = handler.save(make(features, target), saved, example=features.head())
    assert file in config["sha256"]
    expected = handler.predict(handler.load(saved, config, trusted=None), features.head())
    for name, damage in DAMAGE.items():
        folder = tmp_path / name
        shutil.copytree(saved, folder)
        damage(folder / file)
        with pytest.raises(ModelIntegrityError) as refused:
            handler.load(folder, config, trusted=None)
        _no_path(str(refused.value), folder)
        assert file in str(refused.value), (name, str(refused.value))
    # the undamaged package still loads and answers as before
    np.testing.assert_allclose(handler.predict(handler.load(saved, config, trusted=None), features.head()), expected)


@pytest.mark.parametrize(
    ("flavor", "make", "file"), [CASES[0], CASES[3], CASES[4]], ids=["xgboost", "torch-program", "torch-weights"]
)
def test_a_package_without_digests_still_gets_a_clean_error(tmp_path, iris: Iris, flavor, make, file):
    """Packages saved before digests were recorded: damage is still a ModelIntegrityError without a path."""
    features, target = iris
    handler = _flavor(flavor)
    saved = tmp_path / "saved"
    saved.mkdir()
    config = {k: v for k, v in handler.save(make(features, target), saved, example=features.head()).items()
              if k != "sha256"}  # fmt: skip
    for name in ("random", "empty", "deleted", "a-folder"):
        folder = tmp_path / name
        shutil.copytree(saved, folder)
        DAMAGE[name](folder / file)
        with pytest.raises(ModelIntegrityError) as refused:
            handler.load(folder, config, trusted=None)
        _no_path(str(refused.value), folder)


@pytest.mark.parametrize("digests", [None, "abc", {"model.json": 5}, {"other": "00"}])
def test_a_config_with_malformed_digests_is_refused(tmp_path, iris: Iris, digests):
    handler = _flavor("xgboost")
    config = handler.save(_xgboost(*iris), tmp_path, example=iris[0].head())
    with pytest.raises(ModelIntegrityError, match="sha256"):
        handler.load(tmp_path, {**config, "sha256": digests or {"model.json": "0" * 64}}, trusted=None)
