from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import loopml
import loopml.models
from loopml.errors import (
    AlreadyExistsError,
    ArtifactNotFoundError,
    ArtifactPathError,
    InvalidValueError,
    ModelIntegrityError,
    SchemaError,
    UnsupportedModelError,
)
from loopml.models import ColumnSpec, Signature, load_model_from_run, log_model
from loopml.models.flavors import get_flavor
from loopml.models.package import MANIFEST
from loopml.tracking.client import TrackingClient

Iris = tuple[pd.DataFrame, pd.Series]


@pytest.fixture
def model(iris: Iris) -> LogisticRegression:
    return LogisticRegression(max_iter=1000).fit(*iris)


def test_manifest_records_everything(
    client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression
) -> None:
    features, _ = iris
    info = log_model(client, run_id, model, "clf", input_example=features, extra="drop")
    stored = json.loads(client.read_artifact(run_id, f"clf/{MANIFEST}"))
    assert stored == info.manifest
    assert stored["format_version"] == 1
    assert stored["flavor"] == "sklearn"
    assert stored["name"] == "clf" and stored["run_id"] == run_id
    assert stored["requirements"] == [f"scikit-learn=={version('scikit-learn')}", f"skops=={version('skops')}"]
    assert stored["loopml_version"] == loopml.__version__
    assert stored["python_version"] == platform.python_version()
    assert stored["extra_columns"] == "drop"
    assert stored["signature_source"] == "inferred"
    assert Signature.from_dict(stored["signature"]) == info.signature
    assert isinstance(stored["created_at"], int)

    listed = {e.path for e in client.list_artifacts(run_id, "clf")}
    assert listed == {f"clf/{p}" for p in stored["files"]} | {f"clf/{MANIFEST}"}
    for relpath, digest in stored["files"].items():
        assert hashlib.sha256(client.read_artifact(run_id, f"clf/{relpath}")).hexdigest() == digest

    example = json.loads(client.read_artifact(run_id, "clf/input_example.json"))
    assert example == features.head(5).to_dict(orient="records")


def test_no_example_means_no_signature(
    client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression
) -> None:
    info = log_model(client, run_id, model)
    assert info.signature is None
    assert info.manifest["signature"] is None and info.manifest["signature_source"] == "none"
    assert info.manifest["input_example"] is None
    loaded = load_model_from_run(client, run_id)
    assert loaded.signature is None
    np.testing.assert_array_equal(loaded.predict(iris[0]), model.predict(iris[0]))


def test_given_signature_is_checked_against_the_example(
    client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression
) -> None:
    wrong = Signature((ColumnSpec("petal", "float"),))
    with pytest.raises(SchemaError, match="input example"):
        log_model(client, run_id, model, signature=wrong, input_example=iris[0])
    assert client.list_artifacts(run_id, "model") == []


def test_extra_column_policy_from_manifest_and_per_call(
    client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression
) -> None:
    features, _ = iris
    log_model(client, run_id, model, input_example=features)
    loaded = load_model_from_run(client, run_id)
    wider = features.head(3).assign(note="x")
    with pytest.raises(SchemaError) as caught:
        loaded.predict(wider)
    assert set(caught.value.problems) == {"note"}
    np.testing.assert_array_equal(loaded.predict(wider, extra="drop"), model.predict(features.head(3)))
    np.testing.assert_array_equal(loaded.predict(wider, extra="keep"), model.predict(features.head(3)))


def test_schema_errors_reach_the_caller(
    client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression
) -> None:
    features, _ = iris
    log_model(client, run_id, model, input_example=features)
    loaded = load_model_from_run(client, run_id)
    record = features.iloc[0].to_dict()
    record["sepal length (cm)"] = "abc"
    del record["petal width (cm)"]
    with pytest.raises(SchemaError) as caught:
        loaded.predict(record)
    assert set(caught.value.problems) == {"sepal length (cm)", "petal width (cm)"}


def test_tampered_file_is_detected(client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression) -> None:
    log_model(client, run_id, model, input_example=iris[0])
    client.log_artifact_bytes(run_id, {"model/model.skops": b"not the model"})
    with pytest.raises(ModelIntegrityError, match=r"model/model\.skops"):
        load_model_from_run(client, run_id)


def test_unlisted_file_is_detected(client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression) -> None:
    log_model(client, run_id, model)
    client.log_artifact_bytes(run_id, {"model/sneaky.py": b"print('hi')"})
    with pytest.raises(ModelIntegrityError, match=r"model/sneaky\.py"):
        load_model_from_run(client, run_id)


def test_damaged_cache_is_repaired(client: TrackingClient, run_id: str, iris: Iris, model: LogisticRegression) -> None:
    log_model(client, run_id, model)
    first = load_model_from_run(client, run_id)
    assert first.path is not None
    cached = first.path / "model.skops"
    cached.write_bytes(b"edited on disk")
    second = load_model_from_run(client, run_id)
    assert second.path == first.path
    np.testing.assert_array_equal(second.predict(iris[0]), model.predict(iris[0]))
    assert cached.read_bytes() != b"edited on disk"


def test_unknown_model_name_lists_the_models_there(
    client: TrackingClient, run_id: str, model: LogisticRegression
) -> None:
    with pytest.raises(ArtifactNotFoundError, match=r"'model'.*no logged models"):
        load_model_from_run(client, run_id)
    log_model(client, run_id, model, "classifier")
    log_model(client, run_id, model, "models/second")
    with pytest.raises(ArtifactNotFoundError) as caught:
        load_model_from_run(client, run_id, "clasifier")
    message = caught.value.message
    assert "'clasifier'" in message and run_id in message
    assert "'classifier'" in message and "'models/second'" in message
    assert "Did you mean 'classifier'?" in message


def test_a_name_is_logged_once(client: TrackingClient, run_id: str, model: LogisticRegression) -> None:
    log_model(client, run_id, model)
    with pytest.raises(AlreadyExistsError, match="another name"):
        log_model(client, run_id, model)


def test_names_are_artifact_paths(client: TrackingClient, run_id: str, model: LogisticRegression) -> None:
    with pytest.raises(ArtifactPathError):
        log_model(client, run_id, model, "../escape")
    with pytest.raises(InvalidValueError, match="extra"):
        log_model(client, run_id, model, extra="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="signature"):
        log_model(client, run_id, model, signature="guess")


def test_unsupported_models_and_flavors(client: TrackingClient, run_id: str) -> None:
    with pytest.raises(UnsupportedModelError, match=r"sklearn.*onnx.*PythonModel"):
        log_model(client, run_id, object())
    with pytest.raises(UnsupportedModelError, match="Did you mean 'sklearn'"):
        get_flavor("sklern")
    with pytest.raises(UnsupportedModelError, match="PythonModel"):
        log_model(client, run_id, object(), flavor="pyfunc")


def test_trusted_must_be_a_list(client: TrackingClient, run_id: str, model: LogisticRegression) -> None:
    log_model(client, run_id, model)
    with pytest.raises(InvalidValueError, match="list"):
        load_model_from_run(client, run_id, trusted="functools.partial")  # type: ignore[arg-type]


def test_public_names_are_sorted_and_resolve() -> None:
    assert loopml.models.__all__ == sorted(loopml.models.__all__)
    for name in loopml.models.__all__:
        assert getattr(loopml.models, name) is not None
    with pytest.raises(AttributeError):
        loopml.models.nope  # noqa: B018


def test_importing_loopml_models_is_cheap() -> None:
    code = (
        "import sys, loopml.models, loopml.models.flavors\n"
        "heavy = [m for m in ('sklearn', 'skops', 'onnx', 'onnxruntime', 'skl2onnx', 'pandas') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    assert result.stdout.strip() == ""
