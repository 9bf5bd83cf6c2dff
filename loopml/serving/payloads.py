"""Request bodies in, response bodies out: the three v1 shapes and the Open Inference Protocol (KServe v2).

Bodies are parsed with ``json.loads`` into plain lists and dicts, never into
a pydantic model per record: the predictor builds its numpy array straight
from them. Responses are assembled from pre-encoded pieces. Every malformed
body raises InvalidInputError (422) naming what is wrong; nothing here can
answer 500 to a client's mistake.

v1 bodies (exactly one of ``records``, ``columns``, ``inputs``; ``key`` is
the optional routing key that keeps a caller on one side of a canary)::

    {"records": [{"age": 41, "income": 5.2}, ...]}
    {"columns": {"age": [41, 37], "income": [5.2, 3.1]}}
    {"inputs": {"age": 41, "income": 5.2}}

v2 bodies: one tensor per column (``name`` = column), or a single 2-D
tensor whose columns are the signature's, in order::

    {"id": "r1", "inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [41, 37]}, ...]}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.errors import InvalidInputError, InvalidValueError
from loopml.serving import binary
from loopml.store.serving import check_request_id

try:  # several times faster than the stdlib on request bodies; optional, the stdlib does the same job
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    orjson = None  # type: ignore[assignment]

#: JSON literals of booleans, which numpy would silently read as 1 and 0 among numbers. (A null makes an
#: object array and a NaN is seen by ``np.isnan``, so the fast path notices those by itself.)
_BOOLEANS = (b"true", b"false")
_V1_SHAPES = ("records", "columns", "inputs")
_V1_KEYS = frozenset({*_V1_SHAPES, "key"})
#: ``model_name`` and ``model_version`` are not in the protocol's request, but KServe's SDK sends them in
#: every ``InferRequest``; they are accepted when they agree with the path (see ``parse_v2``).
_V2_KEYS = frozenset({"id", "inputs", "outputs", "parameters", "model_name", "model_version"})
_V2_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
#: The tensor data types of the Open Inference Protocol.
_V2_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BF16",
     "BYTES"}
)  # fmt: skip
_V1_EXAMPLE = '{"records": [{...}, ...]}, {"columns": {"name": [...], ...}} or {"inputs": {...}}'


@dataclass(slots=True)
class Payload:
    """One parsed request: exactly one of ``records``, ``columns`` or ``matrix`` is set.

    ``matrix`` (a v2 single tensor) holds rows whose values follow the
    signature's column order. ``body`` is the raw request, kept to answer
    ``no_booleans`` (only asked, and then once, by numeric fast paths).
    """

    records: list[Any] | None = None
    columns: dict[str, Any] | None = None
    matrix: list[Any] | np.ndarray | None = None
    tensors: list[dict[str, Any]] | None = None
    key: str | None = None
    request_id: str | None = None
    body: bytes | None = None
    plain: bool | None = None
    binary: bool = False  # tensors came as binary data (numpy arrays in their "data")
    binary_output: bool = False  # the answer's output goes as binary data

    def no_booleans(self) -> bool:
        """True when no ``true``/``false`` literal appears in the body, so none can hide among numbers."""
        if self.plain is None:
            body = self.body
            self.plain = body is None or not any(literal in body for literal in _BOOLEANS)
        return self.plain

    @property
    def n_rows(self) -> int:
        if self.records is not None:
            return len(self.records)
        if self.matrix is not None:
            return len(self.matrix)
        if self.columns:
            first = next(iter(self.columns.values()))
            return len(first) if isinstance(first, list | np.ndarray) else 1
        if self.tensors:  # not bound to the signature yet: the first tensor's rows
            shape = self.tensors[0].get("shape")
            return shape[0] if isinstance(shape, list) and shape and isinstance(shape[0], int) else 0
        return 0

    def as_records(self, names: Sequence[str] | None) -> Any:
        """The rows in a form ``coerce_input`` accepts (records or columns), for the checked slow path."""
        if self.records is not None:
            return self.records
        if self.columns is not None:
            return self.columns
        rows = self.matrix if self.matrix is not None else []
        width = len(names or ())
        if isinstance(rows, np.ndarray) and names and rows.ndim == 2 and rows.shape[1] == width:
            return {name: rows[:, i] for i, name in enumerate(names)}
        if not names or any(not isinstance(row, list) or len(row) != width for row in rows):
            raise InvalidInputError(
                f"A single v2 tensor must have shape [n, {width}]: one value per signature column "
                f"({', '.join(names or ())}), in that order."
            )
        return [dict(zip(names, row, strict=True)) for row in rows]


def loads(body: bytes) -> Any:
    """The JSON value of a request body; InvalidInputError (422) when it is not JSON."""
    if not body:
        raise InvalidInputError("The request body is empty; send a JSON object.")
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN/Infinity literals, integers past 64 bits, UTF-16: the stdlib reads those, or says what is wrong
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidInputError(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise InvalidInputError("The request body nests too deeply.") from None


def parse_v1(body: bytes) -> Payload:
    """A v1 prediction body: ``records``, ``columns`` or ``inputs`` (a single record), plus an optional ``key``."""
    data = loads(body)
    if not isinstance(data, dict):
        raise InvalidInputError(f"The request body must be a JSON object: {_V1_EXAMPLE}.")
    shapes = [shape for shape in _V1_SHAPES if shape in data]
    unknown = sorted(set(data) - _V1_KEYS)
    if unknown:
        raise InvalidInputError(
            f"Unknown field(s) {', '.join(map(repr, unknown))} in the request body; send {_V1_EXAMPLE}."
        )
    if len(shapes) != 1:
        raise InvalidInputError(f"Send exactly one of 'records', 'columns' or 'inputs': {_V1_EXAMPLE}.")
    key = data.get("key")
    if key is not None and (isinstance(key, bool) or not isinstance(key, str | int)):
        raise InvalidInputError(f"'key' must be a string or a whole number, got {type(key).__name__}.")
    payload = Payload(key=None if key is None else str(key), body=body)
    value = data[shapes[0]]
    if shapes[0] == "records":
        if not isinstance(value, list) or not value:
            raise InvalidInputError("'records' must be a non-empty list of objects, one per row.")
        payload.records = value
    elif shapes[0] == "columns":
        if not isinstance(value, dict) or not value:
            raise InvalidInputError("'columns' must be a non-empty object mapping each column to a list of values.")
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if -1 in lengths or 0 in lengths:
            raise InvalidInputError("Every value of 'columns' must be a non-empty list (one value per row).")
        if len(lengths) != 1:
            raise InvalidInputError(f"The lists in 'columns' have different lengths: {sorted(lengths)}.")
        payload.columns = value
    else:
        if not isinstance(value, dict) or not value:
            raise InvalidInputError("'inputs' must be a non-empty object: one record, column name -> value.")
        payload.records = [value]
    return payload


def parse_v2(body: bytes, header_length: int | None = None, *, model: str | None = None) -> Payload:
    """An Open Inference Protocol request; the tensors are matched to the signature by the predictor.

    With ``header_length`` (the ``Inference-Header-Content-Length`` header), the body is that many bytes
    of JSON followed by binary tensor data (``loopml.serving.binary``), decoded here into numpy arrays.
    A ``model_name`` in the body (KServe's SDK sends one) must be ``model``, the model the path names.
    """
    header, tail = (body, None) if header_length is None else binary.split(body, header_length)
    data = loads(header)
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list) or not data["inputs"]:
        raise InvalidInputError('An inference request is {"inputs": [{"name", "shape", "datatype", "data"}, ...]}.')
    unknown = sorted(set(data) - _V2_KEYS)
    if unknown:
        raise InvalidInputError(f"Unknown field(s) {', '.join(map(repr, unknown))} in the inference request.")
    named = data.get("model_name")
    if named is not None and (not isinstance(named, str) or (model is not None and named != model)):
        raise InvalidInputError(
            f"model_name {named!r} in the inference request does not match the model the path names ({model!r})."
        )
    tensors = data["inputs"]
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype"} <= set(tensor):
            raise InvalidInputError(f"inputs[{index}] must have 'name', 'shape', 'datatype' and 'data'.")
        extra = sorted(set(tensor) - _V2_TENSOR_KEYS)
        if extra:
            raise InvalidInputError(f"inputs[{index}] has unknown field(s) {', '.join(map(repr, extra))}.")
        shape = tensor["shape"]
        if (
            not isinstance(tensor["name"], str)
            or not isinstance(shape, list)
            or not 1 <= len(shape) <= 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        ):
            raise InvalidInputError(f"inputs[{index}] needs a string 'name' and a 'shape' of one or two sizes.")
        if not isinstance(tensor["datatype"], str) or tensor["datatype"] not in _V2_DATATYPES:
            raise InvalidInputError(
                f"inputs[{index}].datatype {tensor['datatype']!r} is not a tensor data type of the protocol "
                f"({', '.join(sorted(_V2_DATATYPES))})."
            )
        if binary.binary_size(tensor, index) is None and not isinstance(tensor.get("data"), list):
            raise InvalidInputError(f"inputs[{index}].data must be a list (or the tensor's bytes binary data).")
    booleans = binary.attach(tensors, tail)
    request_id = data.get("id")
    if request_id is not None:
        # the protocol returns the request's id in the answer, and it is the id of the logged prediction
        try:
            check_request_id(request_id)
        except InvalidValueError as exc:
            raise InvalidInputError(f"'id': {exc.message}") from None
    payload = Payload(
        tensors=tensors, request_id=request_id, body=header, binary_output=binary.wants_binary_output(data)
    )
    if tail is not None:
        payload.binary = True
        if all(isinstance(tensor["data"], np.ndarray) for tensor in tensors):
            # no JSON values to hide a boolean among numbers (the header's own true/false are parameters)
            payload.plain = not booleans
        else:
            payload.plain = not booleans and not any(literal in header for literal in _BOOLEANS)
    return payload


def bind_v2(payload: Payload, names: Sequence[str] | None) -> Payload:
    """Turn v2 tensors into columns (one tensor per signature column) or a matrix (one [n, k] tensor)."""
    tensors = payload.tensors or []
    if names is not None and len(tensors) == 1 and tensors[0]["name"] not in names and len(tensors[0]["shape"]) == 2:
        payload.matrix = _rows(tensors[0])
        return payload
    columns: dict[str, Any] = {}
    for tensor in tensors:
        shape, data = tensor["shape"], tensor["data"]
        if len(shape) == 2 and shape[1] != 1:
            raise InvalidInputError(
                f"Tensor {tensor['name']!r} has shape {shape}: send one tensor of shape [n] per column, "
                f"or a single tensor of shape [n, {len(names or ())}] with the columns in signature order."
            )
        if isinstance(data, np.ndarray):  # binary data: decoded flat, checked against the shape already
            flat: Any = data
        else:
            flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]
        if len(flat) != shape[0]:
            raise InvalidInputError(f"Tensor {tensor['name']!r} has {len(flat)} values but shape {shape}.")
        if tensor["name"] in columns:
            raise InvalidInputError(f"Tensor {tensor['name']!r} appears twice.")
        columns[tensor["name"]] = flat
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise InvalidInputError(f"Every tensor must hold the same, non-zero number of rows; got {sorted(lengths)}.")
    payload.columns = columns
    return payload


def _rows(tensor: dict[str, Any]) -> list[Any] | np.ndarray:
    n, k = tensor["shape"]
    data = tensor["data"]
    if isinstance(data, np.ndarray):  # binary data: its size matched n * k when it was decoded
        if n == 0:
            raise InvalidInputError(f"Tensor {tensor['name']!r} holds no rows.")
        return data.reshape(n, k)
    rows: list[Any]
    if len(data) == n and all(isinstance(row, list) for row in data):
        rows = data
    elif len(data) == n * k and not any(isinstance(v, list) for v in data):
        rows = [data[i * k : (i + 1) * k] for i in range(n)]
    else:
        raise InvalidInputError(f"Tensor {tensor['name']!r} has shape {tensor['shape']} but {len(data)} values.")
    if any(len(row) != k for row in rows):
        raise InvalidInputError(f"Tensor {tensor['name']!r}: every row must hold {k} values.")
    if n == 0:
        raise InvalidInputError(f"Tensor {tensor['name']!r} holds no rows.")
    return rows


# -- responses -------------------------------------------------------------------------------------

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode


def encode_predictions(values: list[Any]) -> str:
    """The JSON text of a list of predictions (numpy ``tolist()`` output); NaN becomes null with orjson."""
    if orjson is not None:
        try:
            return orjson.dumps(values).decode()
        except TypeError:  # a type orjson does not know (the stdlib may, or says so)
            pass
    return _encode(values)


def v1_response(
    predictions_json: str, name_json: str, version: int, request_id: str, replaced: str | None = None
) -> bytes:
    """``{"predictions": [...], "model": name, "version": v, "request_id": id}`` from pre-encoded parts.

    With ``replaced`` (the caller's id, answered already), ``"request_id_rewritten_from": replaced`` follows.
    Ids are checked request ids (letters, digits, ``._:-``): nothing in them needs escaping.
    """
    extra = "" if replaced is None else f',"request_id_rewritten_from":"{replaced}"'
    return (
        f'{{"predictions":{predictions_json},"model":{name_json},"version":{version},"request_id":"{request_id}"'
        f"{extra}}}"
    ).encode()


def v2_response(
    predictions_json: str,
    datatype: str,
    n: int,
    name_json: str,
    version: int,
    request_id: str,
    width: int = 0,
    replaced: str | None = None,
) -> bytes:
    """An inference response with one output tensor ``predict`` (of shape [n] or [n, width]).

    ``id`` is the id the request was logged under; with ``replaced`` (the caller's ``id``, answered
    already), ``"parameters": {"request_id_rewritten_from": replaced}`` says so.
    """
    shape = f"[{n},{width}]" if width else f"[{n}]"
    return (
        f"{_v2_head(name_json, version, request_id, replaced)}"
        f'"outputs":[{{"name":"predict","datatype":"{datatype}","shape":{shape},"data":{predictions_json}}}]}}'
    ).encode()


def binary_response(
    result: np.ndarray, name_json: str, version: int, request_id: str, replaced: str | None = None
) -> tuple[bytes, int]:
    """(body, JSON header length) of an inference response whose ``predict`` output is binary data."""
    datatype, data = binary.encode_output(result)
    shape = json.dumps(list(result.shape), separators=(",", ":"))
    header = (
        f"{_v2_head(name_json, version, request_id, replaced)}"
        f'"outputs":[{{"name":"predict","datatype":"{datatype}","shape":{shape},'
        f'"parameters":{{"binary_data_size":{len(data)}}}}}]}}'
    ).encode()
    return header + data, len(header)


def _v2_head(name_json: str, version: int, request_id: str, replaced: str | None) -> str:
    extra = "" if replaced is None else f',"parameters":{{"request_id_rewritten_from":"{replaced}"}}'
    return f'{{"model_name":{name_json},"model_version":"{version}","id":"{request_id}"{extra},'
