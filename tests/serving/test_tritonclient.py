"""The real ``tritonclient.http`` against ``loopml serve``: the Open Inference Protocol as Triton's users speak it.

The client lives in its own virtualenv (its pins are not ours), created once and
cached under ``~/.cache/loopml-test-venvs/tritonclient``; a script run with that
venv's Python drives a real ``loopml serve`` process on 127.0.0.1 with the
client's defaults (binary tensors in, binary outputs back) and with JSON, and
prints what it saw as JSON. The test checks every answer against the model's
own predictions and the prediction log in the store.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.serving.test_e2e import Serve, home, wait_until  # noqa: F401  (home: a fixture)
from tests.venvs import cached_venv, run_client

CLIENT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    cfg = json.load(open(sys.argv[1]))
    client = http.InferenceServerClient(url=cfg["url"])
    seen = {}
    seen["live"], seen["ready"] = client.is_server_live(), client.is_server_ready()
    seen["server"] = client.get_server_metadata()
    seen["iris_metadata"] = client.get_model_metadata("iris")
    seen["mixed_metadata"] = client.get_model_metadata("mixed")
    seen["iris_ready"] = client.is_model_ready("iris")


    def infer(model, inputs, binary_out=None, request_id=""):
        outputs = None if binary_out is None else [http.InferRequestedOutput("predict", binary_data=binary_out)]
        answer = client.infer(model, inputs, outputs=outputs, request_id=request_id)
        return {"data": answer.as_numpy("predict").tolist(), "dtype": str(answer.as_numpy("predict").dtype),
                "response": answer.get_response()}


    def tensor(name, array, datatype, binary=True):
        found = http.InferInput(name, list(array.shape), datatype)
        found.set_data_from_numpy(array, binary_data=binary)
        return found


    X = np.array(cfg["iris"], dtype=np.float64)
    # the client's defaults: one [n, k] tensor as binary data, the output asked for as binary data
    seen["matrix_binary"] = infer("iris", [tensor("x", X, "FP64")], request_id="triton-1")
    # all JSON: data in the body, the output as a JSON list
    seen["matrix_json"] = infer("iris", [tensor("x", X, "FP64", binary=False)], binary_out=False)
    # binary in, JSON out; and one FP32 tensor per column
    columns = [tensor(name, X[:, i].astype(np.float32), "FP32") for i, name in enumerate(cfg["iris_columns"])]
    seen["columns_fp32"] = infer("iris", columns, binary_out=False)

    mixed = cfg["mixed"]
    types = {"f32": (np.float32, "FP32"), "f64": (np.float64, "FP64"), "count": (np.int64, "INT64"),
             "flag": (bool, "BOOL"), "city": (object, "BYTES")}
    for binary in (True, False):
        inputs = [tensor(name, np.array(mixed[name], dtype=dtype), datatype, binary=binary)
                  for name, (dtype, datatype) in types.items()]
        seen["mixed_binary" if binary else "mixed_json"] = infer("mixed", inputs)


    def error(call):
        try:
            call()
        except InferenceServerException as exc:
            return [exc.status(), exc.message()]
        return None


    seen["unknown_model"] = error(lambda: client.infer("nope", [tensor("x", X, "FP64")]))
    short = tensor("x", X[:3], "FP64")
    short.set_shape([4, 4])  # the header says 4 rows, the bytes hold 3
    seen["size_mismatch"] = error(lambda: client.infer("iris", [short]))
    wrong = tensor("x", X[:3].astype(np.float32), "FP32")
    wrong._datatype = "FP64"  # 12 FP32 values' bytes announced as FP64
    seen["wrong_datatype"] = error(lambda: client.infer("iris", [wrong]))
    seen["unknown_output"] = error(lambda: client.infer("iris", [tensor("x", X, "FP64")],
                                                        outputs=[http.InferRequestedOutput("proba")]))
    print(json.dumps(seen))
    """
)


@pytest.fixture(scope="session")
def triton_python() -> Path:
    """The Python of a venv holding ``tritonclient[http]``, created once (from the package registry)."""
    return cached_venv("tritonclient", ("tritonclient[http]", "numpy"))


def _mixed_frame(rows: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    generator = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "f32": generator.normal(size=rows).astype(np.float32),
            "f64": generator.normal(size=rows),
            "count": generator.integers(0, 20, size=rows),
            "flag": generator.random(rows) < 0.5,
            "city": generator.choice(["Zürich", "Lyon", "Oslo"], size=rows),
        }
    )
    target = frame["f64"] * 2 + frame["count"] * 0.5 + frame["flag"] * 3 + (frame["city"] == "Lyon") * 1.5
    return frame, target.to_numpy()


def _register_mixed(folder: Path) -> tuple[Any, pd.DataFrame]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from tests.serving.conftest import Registered, open_sqlite

    frame, target = _mixed_frame()
    model = make_pipeline(
        ColumnTransformer([("city", OneHotEncoder(handle_unknown="ignore"), ["city"])], remainder="passthrough"),
        LinearRegression(),
    ).fit(frame, target)
    store = open_sqlite(folder)
    try:
        from loopml.registry.client import RegistryClient
        from loopml.serving.client import ServingClient
        from loopml.tracking.client import TrackingClient

        tracking = TrackingClient(store)
        registered = Registered(store, tracking, RegistryClient(tracking), frame, {})
        version = registered.register(model, name="mixed", example=frame.head())
        ServingClient(tracking).deploy("mixed", version, reason="tritonclient test")
        ServingClient(tracking).deploy("iris", 1, reason="tritonclient test")
    finally:
        store.close()
    return model, frame


@pytest.mark.slow
def test_tritonclient_speaks_to_loopml_serve_with_its_defaults(home, template, iris, triton_python, tmp_path):  # noqa: F811
    from loopml.serving.client import ServingClient
    from loopml.tracking.client import TrackingClient
    from tests.serving.conftest import open_sqlite

    X, _ = iris
    rows = X.iloc[[0, 60, 120, 10, 75]]
    iris_model = template[1][1]
    mixed_model, mixed = _register_mixed(home)
    sample = mixed.iloc[:6]
    server = Serve(home, "-m", "iris", "-m", "mixed")
    try:
        config = {
            "url": f"127.0.0.1:{server.port}",
            "iris": rows.to_numpy().tolist(),
            "iris_columns": list(X.columns),
            "mixed": {column: sample[column].tolist() for column in sample.columns},
        }
        seen = run_client(triton_python, CLIENT, config, tmp_path)
    finally:
        server.stop()

    # health and metadata: the extension is listed, the output is declared as the model really answers
    assert seen["live"] and seen["ready"] and seen["iris_ready"]
    assert "binary_tensor_data" in seen["server"]["extensions"]
    assert seen["iris_metadata"]["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
    assert seen["mixed_metadata"]["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    declared = {i["name"]: i["datatype"] for i in seen["mixed_metadata"]["inputs"]}
    assert declared == {"f32": "FP64", "f64": "FP64", "count": "INT64", "flag": "BOOL", "city": "BYTES"}

    # every shape of request answers the model's own predictions, in the datatype the metadata declared
    expected = iris_model.predict(rows).tolist()
    for case in ("matrix_binary", "matrix_json"):
        assert seen[case]["data"] == expected and seen[case]["dtype"] == "int64", case
    assert seen["matrix_binary"]["response"]["outputs"][0]["parameters"]["binary_data_size"] == 8 * len(rows)
    assert seen["matrix_binary"]["response"]["id"] == "triton-1"
    as_fp32 = pd.DataFrame(rows.to_numpy().astype(np.float32).astype(np.float64), columns=X.columns)
    assert seen["columns_fp32"]["data"] == iris_model.predict(as_fp32).tolist()
    mixed_expected = mixed_model.predict(sample)
    for case in ("mixed_binary", "mixed_json"):
        assert seen[case]["dtype"] == "float64", case
        np.testing.assert_allclose(seen[case]["data"], mixed_expected, rtol=1e-12, err_msg=case)

    # errors: the protocol's shape, read by the client, naming what is wrong
    status, message = seen["unknown_model"]
    assert status == "404" and "nope" in message
    status, message = seen["size_mismatch"]
    assert status == "400" and "'x'" in message and "binary_data_size" in message
    status, message = seen["wrong_datatype"]
    assert status == "400" and "'x'" in message and "FP64" in message
    status, message = seen["unknown_output"]
    assert status == "400" and "'proba'" in message

    # the binary request is in the prediction log under the client's id, its tensors kept as JSON values
    store = open_sqlite(home)
    try:
        log = ServingClient(TrackingClient(store))
        wait_until(lambda: "triton-1" in set(log.search_predictions("iris")["request_id"]), "the logged request")
        frame = log.search_predictions("iris")
        logged = frame[frame["request_id"] == "triton-1"].iloc[0]
        assert [list(row.values()) for row in logged["inputs"]] == rows.to_numpy().tolist()
        assert logged["outputs"] == expected
    finally:
        store.close()
