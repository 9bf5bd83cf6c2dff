"""The real KServe Python SDK's v2 REST client (``kserve.InferenceRESTClient``) against ``loopml serve``.

Like the tritonclient test: the SDK lives in its own virtualenv (its pins are
not ours), created once and cached under ``~/.cache/loopml-test-venvs/kserve``;
a script run with that venv's Python drives a real ``loopml serve`` process on
127.0.0.1 through the SDK's own request and response types, with binary and
with JSON tensors, and prints what it saw as JSON.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.serving.test_e2e import Serve, home  # noqa: F401  (home: a fixture)
from tests.venvs import cached_venv, run_client

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    import numpy as np
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    cfg = json.load(open(sys.argv[1]))
    base = cfg["url"]


    async def main():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=60))
        seen = {}
        seen["live"] = await client.is_server_live(base)
        seen["ready"] = await client.is_server_ready(base)
        seen["model_ready"] = await client.is_model_ready(base, "iris")
        X = np.array(cfg["rows"], dtype=np.float64)
        for binary in (True, False):
            tensor = InferInput("x", list(X.shape), "FP64")
            tensor.set_data_from_numpy(X, binary_data=binary)
            request = InferRequest(model_name="iris", infer_inputs=[tensor], request_id=f"kserve-{binary}")
            answer = await client.infer(base, request, model_name="iris")
            output = answer.outputs[0]
            seen["binary" if binary else "json"] = {
                "id": answer.id, "name": output.name, "datatype": output.datatype,
                "data": output.as_numpy().tolist(),
            }
        try:
            tensor = InferInput("x", list(X.shape), "FP64")
            tensor.set_data_from_numpy(X, binary_data=False)
            await client.infer(base, InferRequest(model_name="nope", infer_inputs=[tensor]), model_name="nope")
            seen["unknown_model"] = None
        except Exception as exc:  # the SDK raises httpx's HTTPStatusError for a 4xx
            response = getattr(exc, "response", None)
            seen["unknown_model"] = [getattr(response, "status_code", None), response.json() if response else str(exc)]
        await client.close()
        print(json.dumps(seen))


    asyncio.run(main())
    """
)


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """The Python of a venv holding the ``kserve`` SDK, created once (from the package registry)."""
    return cached_venv("kserve", ("kserve", "numpy"))


@pytest.mark.slow
def test_the_kserve_sdk_v2_client_speaks_to_loopml_serve(home, template, iris, kserve_python, tmp_path):  # noqa: F811
    from loopml.serving.client import ServingClient
    from loopml.tracking.client import TrackingClient
    from tests.serving.conftest import open_sqlite

    X, _ = iris
    rows = X.iloc[[0, 60, 120, 10, 75]]
    expected = template[1][1].predict(rows).tolist()
    store = open_sqlite(home)
    try:
        ServingClient(TrackingClient(store)).deploy("iris", 1, reason="kserve SDK test")
    finally:
        store.close()
    server = Serve(home, "-m", "iris")
    try:
        config = {"url": f"http://127.0.0.1:{server.port}", "rows": rows.to_numpy().tolist()}
        seen = run_client(kserve_python, CLIENT, config, tmp_path)
    finally:
        server.stop()

    assert seen["live"] and seen["ready"] and seen["model_ready"]
    for case, binary in (("binary", True), ("json", False)):
        answer = seen[case]
        assert answer["id"] == f"kserve-{binary}" and answer["name"] == "predict", case
        assert answer["datatype"] == "INT64" and answer["data"] == expected, case
    status, body = seen["unknown_model"]
    assert status == 404 and "nope" in body["error"]
