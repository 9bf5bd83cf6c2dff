"""Attacks on the Open Inference Protocol's binary tensor extension (``loopml.serving.binary``).

Hypothesis sends hostile binary requests to a live serving app (in-process): garbage after a JSON
header, ``Inference-Header-Content-Length`` values of every sort, ``binary_data_size`` that lies,
``BYTES`` elements that run past their tensor or are not UTF-8, every fixed-size type with random
bytes and shapes, ``outputs`` and ``parameters`` of the wrong kind. Every answer must be a 4xx in the
protocol's error shape ``{"error": "<string>"}`` (naming the tensor where one is at fault), never a
5xx, and the service must keep answering valid requests. For valid float matrices, binary and JSON
requests must give the same predictions.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from loopml.serving.client import ServingClient
from tests.serving.conftest import Registered, registered, serve, sql_store, template  # noqa: F401

# derandomized: the same examples on every run (a CI failure reproduces), still 60 hostile requests per test
FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
INFER = "/v2/models/iris/infer"
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
FIXED = {"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1, "INT16": 2, "INT32": 4,
         "INT64": 8, "FP16": 2, "FP32": 4, "FP64": 8, "BF16": 2}  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture
def api(serve: Any, registered: Registered) -> Any:  # noqa: F811
    ServingClient(registered.tracking).deploy("iris", "champion")
    return serve()


def tensor(name: str, datatype: str, shape: list[Any], size: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": size}}


def send(api: Any, header: Any, tail: bytes = b"", length: Any = None, path: str = INFER) -> Any:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    declared = str(len(head)) if length is None else length
    return api.post(path, content=head + tail, headers={"Inference-Header-Content-Length": declared})


def refused(answer: Any, *names: str) -> str:
    """Assert a 4xx in the protocol's error shape (naming one of ``names`` when given); the message."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    assert "Traceback" not in body["error"] and "/tmp" not in body["error"] and ".py" not in body["error"]
    if names:
        assert any(name in body["error"] for name in names), (names, body["error"])
    return str(body["error"])


def not_a_fault(answer: Any) -> None:
    """A 200, or a 4xx in the protocol's shape: never a 5xx."""
    if answer.status_code != 200:
        refused(answer)


def still_serves(api: Any) -> None:
    raw = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]).tobytes()
    answer = send(api, {"inputs": [tensor("x", "FP64", [2, 4], len(raw))]}, raw)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [0, 2]


def matrix_header(n: int, size: int | None = None, datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [tensor("x", datatype, [n, 4], n * 4 * FIXED[datatype] if size is None else size)]}


# -- the header and its length --------------------------------------------------------------------

HEADERS = st.one_of(
    st.builds(lambda n: json.dumps(matrix_header(n)).encode(), st.integers(0, 4)),
    st.binary(max_size=64),
    st.just(b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "parameters": {"binary_data_size": 32}}]'),
)
LENGTHS = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6).map(str),
    st.integers(0, 400).map(str),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
    st.sampled_from(["", "0", "-0", "+5", "1e3", "0x10", " 12", "9" * 5000, "0" * 5000 + "7", "18446744073709551617"]),
)


@FUZZ
@given(header=HEADERS, tail=st.binary(max_size=200), length=LENGTHS)
def test_garbage_after_a_header_and_any_header_length_is_never_a_server_error(api, header, tail, length):
    not_a_fault(send(api, header, tail, length))
    still_serves(api)


@pytest.mark.parametrize(
    ("length", "named"),
    [("9" * 5000, "digits"), ("12345678901234567890123", "digits"), ("0" * 5000 + "1", "not valid JSON")],
)
def test_a_header_length_with_thousands_of_digits_is_a_400_not_a_500(api, length, named):
    """``int()`` refuses strings past 4300 digits with a ValueError: that was a 500 (and a logged traceback)."""
    assert named in refused(send(api, matrix_header(1), bytes(32), length))
    still_serves(api)


@pytest.mark.parametrize("length", ["0", "-1", "abc", "\u00b2", "1000000"])
def test_a_header_length_that_is_zero_negative_not_a_number_or_past_the_body_is_refused(api, length):
    refused(send(api, matrix_header(1), bytes(32), length.encode("utf-8")))


def test_a_declared_content_length_with_thousands_of_digits_is_refused_on_both_paths(asgi_client, api, sql_store):  # noqa: F811
    """The lane and the FastAPI routes behind it check Content-Length before ``int()``: 413, not a 500."""
    from loopml.serving.app import create_serving_app
    from loopml.serving.lane import PredictLane

    bypassed = create_serving_app(sql_store, poll_interval_s=60.0)
    bypassed.user_middleware = [m for m in bypassed.user_middleware if m.cls is not PredictLane]
    with asgi_client(bypassed, raise_server_exceptions=False) as routes:
        for client in (api, routes):
            for declared, status in (("9" * 5000, 413), ("0" * 5000, 413), ("\u00b2", 400)):
                answer = client.post(INFER, content=b"{}", headers={"Content-Length": declared.encode("utf-8")})
                assert answer.status_code in (status, 400), (declared, answer.status_code, answer.text)
                refused(answer)


# -- binary_data_size that lies -------------------------------------------------------------------

SIZES = st.one_of(
    st.integers(-100, 200),
    st.integers(2**31, 2**70),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@FUZZ
@given(n=st.integers(1, 3), size=SIZES, padding=st.binary(max_size=16))
def test_a_binary_data_size_that_lies_is_refused_naming_the_tensor(api, n, size, padding):
    raw = np.tile([5.1, 3.5, 1.4, 0.2], n).tobytes()
    answer = send(api, {"inputs": [tensor("x", "FP64", [n, 4], size)]}, raw + padding)
    if size == len(raw) and type(size) is int and not padding:
        assert answer.status_code == 200, answer.text
    else:
        refused(answer, "'x'", "inputs[0]")
    still_serves(api)


def test_a_tensor_with_both_data_and_binary_data_size_is_refused(api):
    both = {**tensor("x", "FP64", [1, 4], 32), "data": [5.1, 3.5, 1.4, 0.2]}
    assert "both" in refused(send(api, {"inputs": [both]}, bytes(32)), "'x'")
    assert "binary_data_size" in refused(send(api, {"inputs": [both]}, b"", None), "'x'")


# -- BYTES elements ---------------------------------------------------------------------------------

ELEMENTS = st.lists(
    st.tuples(st.integers(0, 2**32 - 1) | st.integers(0, 8) | st.none(), st.binary(max_size=6)), max_size=6
)


@FUZZ
@given(elements=ELEMENTS, cut=st.integers(0, 3), n=st.integers(0, 2))
def test_bytes_elements_past_the_end_or_not_utf8_are_refused_naming_the_tensor(api, elements, cut, n):
    raw = b"".join(struct.pack("<I", len(data) if length is None else length) + data for length, data in elements)
    raw = raw[: len(raw) - cut] if cut and raw else raw
    answer = send(api, {"inputs": [tensor("x", "BYTES", [n, 4], len(raw))]}, raw)
    broken = any(length is not None and length != len(data) for length, data in elements) or (cut > 0 and raw)
    invalid = any(not _utf8(data) for _, data in elements)
    if broken or invalid:
        refused(answer, "'x'")
    else:  # well-formed text: the model takes numbers, strings are never converted
        refused(answer)
    still_serves(api)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- every fixed-size type, shapes that overflow or mismatch ----------------------------------------

SHAPES = st.one_of(
    st.lists(st.integers(0, 6), min_size=1, max_size=2),
    st.lists(st.sampled_from([2**31, 2**32, 2**62, 2**63, 2**64 + 1]), min_size=1, max_size=2),
    st.lists(st.integers(-3, 3) | st.floats(0, 4) | st.booleans() | st.text(max_size=2), min_size=0, max_size=3),
)


@FUZZ
@given(datatype=st.sampled_from(sorted(FIXED)), shape=SHAPES, raw=st.binary(max_size=160), name=st.text(max_size=6))
def test_fixed_size_tensors_of_any_type_and_shape_are_never_a_server_error(api, datatype, shape, raw, name):
    answer = send(api, {"inputs": [tensor(name, datatype, shape, len(raw))]}, raw)
    not_a_fault(answer)
    well_shaped = all(type(s) is int and s >= 0 for s in shape) and 1 <= len(shape) <= 2
    if well_shaped and int(np.prod(shape, dtype=object)) * FIXED[datatype] != len(raw):
        refused(answer, repr(name), "inputs[0]")  # the tensor whose bytes do not fill its shape (by name or place)
    if datatype == "BOOL" and well_shaped and raw and max(raw) > 1:
        refused(answer, repr(name), "inputs[0]")
    still_serves(api)


@pytest.mark.parametrize(
    ("datatype", "values", "named"),
    [
        ("BOOL", bytes([0, 1, 2, 0]), "BOOL bytes must be 0 or 1"),
        ("BF16", bytes(8), "BF16"),
    ],
)
def test_bool_bytes_past_one_and_bf16_are_refused(api, datatype, values, named):
    assert named in refused(send(api, {"inputs": [tensor("x", datatype, [1, 4], len(values))]}, values), "'x'")


def test_fp16_and_uint64_tensors_are_read_at_their_width(api):
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    for datatype, array in (("FP16", rows.astype("<f2")), ("UINT64", rows.round().astype("<u8"))):
        raw = array.tobytes()
        binary = send(api, {"inputs": [tensor("x", datatype, [2, 4], len(raw))]}, raw)
        plain = api.post(INFER, json={"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                                                  "data": array.astype(float).ravel().tolist()}]})  # fmt: skip
        assert binary.status_code == plain.status_code == 200, (datatype, binary.text, plain.text)
        assert binary.json()["outputs"][0]["data"] == plain.json()["outputs"][0]["data"], datatype
    huge = np.full(4, 2**64 - 1, "<u8").tobytes()
    not_a_fault(send(api, {"inputs": [tensor("x", "UINT64", [1, 4], 32)]}, huge))
    still_serves(api)


# -- outputs and parameters -------------------------------------------------------------------------

OUTPUTS = st.one_of(
    st.none(),
    JSON_VALUES,
    st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["predict", "probabilities", ""]) | JSON_VALUES},
            optional={"parameters": st.fixed_dictionaries({}, optional={"binary_data": JSON_VALUES}) | JSON_VALUES},
        ),
        max_size=3,
    ),
)
PARAMETERS = st.one_of(
    st.none(), JSON_VALUES, st.fixed_dictionaries({}, optional={"binary_data_output": JSON_VALUES | st.booleans()})
)


@FUZZ
@given(outputs=OUTPUTS, parameters=PARAMETERS, tensor_parameters=JSON_VALUES)
def test_outputs_and_parameters_of_the_wrong_kind_are_refused(api, outputs, parameters, tensor_parameters):
    raw = np.array([5.1, 3.5, 1.4, 0.2]).tobytes()
    header: dict[str, Any] = matrix_header(1)
    if outputs is not None:
        header["outputs"] = outputs
    if parameters is not None:
        header["parameters"] = parameters
    answer = send(api, header, raw)
    if answer.status_code == 200:  # then every part of it was well-formed
        assert outputs is None or all(o["name"] == "predict" for o in outputs), outputs
        for flag in _flags(parameters, outputs):
            assert isinstance(flag, bool), (parameters, outputs)
    else:
        refused(answer)
    # a tensor's own parameters of the wrong kind
    plain = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
    not_a_fault(api.post(INFER, json={"inputs": [{**plain, "parameters": tensor_parameters}]}))
    still_serves(api)


def _flags(parameters: Any, outputs: Any) -> list[Any]:
    found = []
    if isinstance(parameters, dict) and "binary_data_output" in parameters:
        found.append(parameters["binary_data_output"])
    for output in outputs or []:
        wanted = output.get("parameters")
        if isinstance(wanted, dict) and "binary_data" in wanted:
            found.append(wanted["binary_data"])
    return found


@pytest.mark.parametrize(
    ("part", "where"),
    [
        ({"parameters": {"binary_data_output": "false"}}, "parameters.binary_data_output"),
        ({"parameters": {"binary_data_output": 1}}, "parameters.binary_data_output"),
        ({"outputs": [{"name": "predict", "parameters": {"binary_data": "no"}}]}, "outputs[0].parameters.binary_data"),
        ({"outputs": [{"name": "predict", "parameters": []}]}, "outputs[0].parameters"),
        ({"outputs": [{"name": "predict", "parameters": 0}]}, "outputs[0].parameters"),
        ({"outputs": [{"name": "probabilities"}]}, "'probabilities'"),
    ],
)
def test_a_wrongly_typed_output_flag_is_refused_not_guessed(api, part, where):
    """``bool("false")`` is True: a string flag once turned the answer binary. It is refused, naming it."""
    raw = np.array([5.1, 3.5, 1.4, 0.2]).tobytes()
    refused(send(api, {**matrix_header(1), **part}, raw), where)


# -- binary and JSON agree --------------------------------------------------------------------------

MATRICES = st.integers(1, 12).flatmap(
    lambda n: hnp.arrays(np.float64, (n, 4), elements=st.floats(-50, 50, allow_nan=False, width=64))
)


@FUZZ
@given(rows=MATRICES, binary_output=st.booleans(), by_column=st.booleans())
def test_binary_and_json_requests_give_identical_predictions(api, rows, binary_output, by_column):
    n = len(rows)
    if by_column:
        columns = np.ascontiguousarray(rows.T)
        header = {"inputs": [tensor(c, "FP64", [n], 8 * n) for c in COLUMNS]}
        raw = columns.tobytes()
        plain = [{"name": c, "shape": [n], "datatype": "FP64", "data": v.tolist()}
                 for c, v in zip(COLUMNS, columns, strict=True)]  # fmt: skip
    else:
        header, raw = matrix_header(n), rows.tobytes()
        plain = [{"name": "x", "shape": [n, 4], "datatype": "FP64", "data": rows.ravel().tolist()}]
    if binary_output:
        header["parameters"] = {"binary_data_output": True}
    binary = send(api, header, raw)
    expected = api.post(INFER, json={"inputs": plain})
    assert binary.status_code == expected.status_code == 200, (binary.text, expected.text)
    want = expected.json()["outputs"][0]
    if binary_output:
        length = int(binary.headers["inference-header-content-length"])
        head = json.loads(binary.content[:length])
        output = head["outputs"][0]
        assert (output["datatype"], output["shape"]) == (want["datatype"], want["shape"])
        got = np.frombuffer(binary.content[length:], dtype="<i8").tolist()
    else:
        got = binary.json()["outputs"][0]["data"]
    assert got == want["data"]
