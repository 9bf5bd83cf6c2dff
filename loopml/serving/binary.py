"""The Open Inference Protocol's binary tensor data extension: tensors as raw bytes after the JSON header.

A request with binary tensors carries an ``Inference-Header-Content-Length``
header: the first that many bytes of the body are the JSON inference
request, the rest the tensors' bytes, one after the other in the order of
``inputs``. A tensor sent that way names its byte count in
``parameters.binary_data_size`` and has no ``data``. Fixed-size types are
little-endian, row-major; ``BYTES`` elements are each a 4-byte little-endian
length followed by the bytes. Triton's clients (``tritonclient``) send every
input this way by default and ask for binary outputs unless told otherwise,
so this is the protocol's common case, not an option; it is also the fast
one, since numpy reads the bytes in place instead of parsing numbers.

The answer is binary when the request says ``"parameters":
{"binary_data_output": true}`` or asks for an output with
``"parameters": {"binary_data": true}``: the response then carries its own
``Inference-Header-Content-Length``, and each output's
``parameters.binary_data_size``. Every malformed tensor raises
``InvalidInputError`` naming it (a 400 on the v2 routes).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from loopml.errors import InvalidInputError

#: The fixed-size data types numpy reads straight from the bytes (little-endian).
FIXED_TYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
#: The extension's name in the server metadata (``GET /v2``).
EXTENSION = "binary_tensor_data"
#: The one output every loopml model has.
OUTPUT = "predict"
_LENGTH = struct.Struct("<I")
#: More digits than any body length has (an exabyte): longer header values are refused before ``int()``.
_MAX_DIGITS = 18


def header_length(value: str | bytes | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as a number (None when absent)."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not (text.isascii() and text.isdigit()):
        raise InvalidInputError(f"Inference-Header-Content-Length {text[:40]!r} is not a number of bytes.")
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS:  # int() refuses thousands of digits (a 500), and no body is that large
        raise InvalidInputError(f"Inference-Header-Content-Length has {len(digits)} digits; no body is that large.")
    return int(digits)


def split(body: bytes, length: int) -> tuple[bytes, memoryview]:
    """(the JSON header, the binary tensor bytes) of a request body."""
    if length > len(body):
        raise InvalidInputError(
            f"Inference-Header-Content-Length is {length} but the body holds only {len(body)} bytes."
        )
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def binary_size(tensor: dict[str, Any], index: int) -> int | None:
    """The tensor's ``parameters.binary_data_size``, checked; None for a tensor whose values are in ``data``."""
    parameters = tensor.get("parameters")
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise InvalidInputError(f"inputs[{index}].parameters must be an object.")
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInputError(f"Tensor {tensor.get('name')!r}: binary_data_size must be a whole number of bytes.")
    return size


def attach(tensors: Sequence[dict[str, Any]], tail: memoryview | None) -> bool:
    """Decode each binary tensor's bytes from ``tail`` into ``tensor["data"]`` (a flat numpy array).

    Returns True when any tensor, binary or not, is ``BOOL`` (the fast path then checks its values).
    Sizes must add up to the bytes sent: a short or long body, or a size that is not a whole number of
    elements of the declared type, is an error naming the tensor.
    """
    offset = 0
    booleans = False
    available = 0 if tail is None else len(tail)
    for index, tensor in enumerate(tensors):
        booleans = booleans or tensor["datatype"] == "BOOL"
        size = binary_size(tensor, index)
        if size is None:
            continue
        name = tensor["name"]
        if "data" in tensor:
            raise InvalidInputError(f"Tensor {name!r} has both 'data' and binary_data_size; send one of them.")
        if tail is None:
            raise InvalidInputError(
                f"Tensor {name!r} declares binary data but the request has no Inference-Header-Content-Length."
            )
        if offset + size > available:
            raise InvalidInputError(
                f"Tensor {name!r} declares {size} bytes but only {available - offset} bytes of binary data are left."
            )
        raw = tail[offset : offset + size]
        offset += size
        tensor["data"] = _decode(name, tensor["datatype"], tensor["shape"], raw)
    if offset != available:
        raise InvalidInputError(
            f"The body holds {available - offset} bytes of binary data that no tensor's binary_data_size declares."
        )
    return booleans


def _decode(name: str, datatype: str, shape: Sequence[int], raw: memoryview) -> np.ndarray:
    count = 1
    for size in shape:
        count *= size
    if datatype == "BYTES":
        values = _bytes_elements(name, raw)
        if len(values) != count:
            raise InvalidInputError(f"Tensor {name!r} has shape {list(shape)} but {len(values)} BYTES elements.")
        return np.array(values, dtype=object)
    dtype = FIXED_TYPES.get(datatype)
    if dtype is None:
        raise InvalidInputError(f"Tensor {name!r}: datatype {datatype} is not supported as binary data here.")
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(
            f"Tensor {name!r} has shape {list(shape)} of {datatype} ({count * dtype.itemsize} bytes) "
            f"but binary_data_size is {len(raw)}."
        )
    array = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL" and array.size and int(np.frombuffer(raw, dtype=np.uint8).max()) > 1:
        raise InvalidInputError(f"Tensor {name!r}: BOOL bytes must be 0 or 1.")
    return array.astype(dtype.newbyteorder("="), copy=False)


def _bytes_elements(name: str, raw: memoryview) -> list[str]:
    """BYTES elements (length-prefixed) as text; each must be UTF-8 (a column value, not a blob)."""
    values: list[str] = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise InvalidInputError(f"Tensor {name!r}: a BYTES element's 4-byte length is cut off.")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInputError(f"Tensor {name!r}: a BYTES element claims {length} bytes past the tensor's end.")
        try:
            values.append(bytes(raw[offset : offset + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInputError(f"Tensor {name!r}: BYTES elements must be UTF-8 text.") from None
        offset += length
    return values


def wants_binary_output(request: dict[str, Any]) -> bool:
    """Whether the answer's ``predict`` output goes as binary data; checks the request's ``outputs``."""
    parameters = request.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInputError("The inference request's 'parameters' must be an object.")
    binary = _flag((parameters or {}).get("binary_data_output", False), "parameters.binary_data_output")
    outputs = request.get("outputs")
    if outputs is None:
        return binary
    if not isinstance(outputs, list):
        raise InvalidInputError("'outputs' must be a list of {\"name\": ...} objects.")
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise InvalidInputError(f"outputs[{index}] must be an object with a string 'name'.")
        if output["name"] != OUTPUT:
            raise InvalidInputError(
                f"outputs[{index}]: this model has no output {output['name']!r}; it has {OUTPUT!r}."
            )
        wanted = output.get("parameters")
        if wanted is None:
            continue
        if not isinstance(wanted, dict):
            raise InvalidInputError(f"outputs[{index}].parameters must be an object.")
        if "binary_data" in wanted:
            binary = _flag(wanted["binary_data"], f"outputs[{index}].parameters.binary_data")
    return binary


def _flag(value: Any, where: str) -> bool:
    """A boolean parameter, strictly: ``bool("false")`` is True, so a string or number is refused, not guessed."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{where} must be true or false, not {type(value).__name__}.")
    return value


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol's name for what a model returned: integers as INT64, floats at their width, text as BYTES."""
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind == "i":
        return "INT64"
    if dtype.kind == "u":
        return "UINT64"
    if dtype.kind == "f":
        return {2: "FP16", 4: "FP32"}.get(dtype.itemsize, "FP64")
    return "BYTES"


def encode_output(result: np.ndarray) -> tuple[str, bytes]:
    """(datatype, bytes) of a prediction array, row-major, as the extension lays them out."""
    datatype = datatype_of(result.dtype)
    if datatype == "BYTES":
        parts: list[bytes] = []
        for value in result.ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts += (_LENGTH.pack(len(data)), data)
        return datatype, b"".join(parts)
    target = FIXED_TYPES[datatype]
    return datatype, np.ascontiguousarray(result, dtype=target).tobytes()


def json_body(tensors: Sequence[dict[str, Any]]) -> bytes:
    """The request as JSON (``{"inputs": [...]}``, values as lists): what the prediction log keeps of a binary one.

    orjson writes numeric arrays straight from their buffers, so this costs about what parsing the
    same request as JSON would have; text (``BYTES``) goes through Python lists.
    """
    listed = []
    for tensor in tensors:
        plain = {key: value for key, value in tensor.items() if key != "parameters"}
        data = plain["data"]
        if isinstance(data, np.ndarray) and (data.dtype.kind == "O" or data.dtype == np.float16):
            plain["data"] = data.tolist()
        listed.append(plain)
    return orjson.dumps({"inputs": listed}, option=orjson.OPT_SERIALIZE_NUMPY)
