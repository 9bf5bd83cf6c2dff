"""ONNX models, run with onnxruntime on the CPU.

An ONNX file is a graph of standard operators, so loading it runs no user code
and needs neither the training library nor a trust list. The frame is fed the
way converters lay inputs out: a model with one input gets all columns as one
2-D matrix (in signature order); a model with one input per column gets each
column by name as an ``(n, 1)`` tensor.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidValueError, SchemaError, UnsupportedModelError
from loopml.models.flavors.base import ArtifactSources, Flavor, pinned, refuse_options, require

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime
    import pandas as pd

ONNX_FILE = "model.onnx"
PROBABILITY_OUTPUTS = ("probabilities", "output_probability")


class OnnxFlavor(Flavor):
    """An ``onnx.ModelProto`` or its serialized bytes."""

    name = "onnx"

    def save(
        self,
        model: Any,
        folder: Path,
        *,
        unsafe_pickle: bool = False,
        artifacts: ArtifactSources | None = None,
        example: pd.DataFrame | None = None,
    ) -> dict[str, Any]:
        refuse_options(self.name, unsafe_pickle=unsafe_pickle, artifacts=artifacts)
        data = _model_bytes(model)
        session = _session(data)  # refuses bytes that are not a runnable model before anything is stored
        (folder / ONNX_FILE).write_bytes(data)
        return {
            "file": ONNX_FILE,
            "inputs": [_describe(node) for node in session.get_inputs()],
            "outputs": [_describe(node) for node in session.get_outputs()],
        }

    def load(
        self, folder: Path, config: Mapping[str, Any], *, trusted: Sequence[str] | None
    ) -> onnxruntime.InferenceSession:
        return _session(str(folder / ONNX_FILE))

    def requirements(self) -> list[str]:
        return pinned("onnx", "onnxruntime")

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        return _run(model, model.get_outputs()[0].name, _feed(model, frame))

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        outputs = [node.name for node in model.get_outputs()]
        named = [name for name in outputs if name in PROBABILITY_OUTPUTS]
        if named:
            target = named[0]
        elif len(outputs) == 2:
            target = outputs[1]  # converters put (label, probabilities) in this order
        else:
            raise UnsupportedModelError(
                f"This ONNX model's outputs {outputs} include no probabilities output; use predict()."
            )
        return _run(model, target, _feed(model, frame))


def _model_bytes(model: Any) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        return bytes(serialize())
    raise UnsupportedModelError(f"The onnx flavor saves an onnx.ModelProto or its bytes, not {type(model).__name__}.")


def _session(source: bytes | str) -> onnxruntime.InferenceSession:
    onnxruntime = require("onnxruntime", "onnx")

    try:
        return onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    except _runtime_errors() as exc:
        raise UnsupportedModelError(f"onnxruntime cannot load this ONNX model: {exc}") from exc


def _run(session: Any, output: str, feed: dict[str, np.ndarray]) -> Any:
    try:
        return session.run([output], feed)[0]
    except _runtime_errors() as exc:
        raise InvalidValueError(f"onnxruntime cannot run the model on this input: {exc}") from exc


@functools.cache
def _runtime_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's exception classes, which derive from Exception directly rather than one base."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names: tuple[str, ...] = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError", "RuntimeException")
    names += ("InvalidProtobuf", "ModelLoaded", "NotImplemented", "InvalidGraph", "EPFail")
    found = (getattr(state, name, None) for name in names)
    return (RuntimeError, *(cls for cls in found if isinstance(cls, type) and issubclass(cls, Exception)))


def _describe(node: Any) -> dict[str, Any]:
    shape = [dim if isinstance(dim, int) else None for dim in node.shape]
    return {"name": node.name, "type": node.type, "shape": shape}


def _numpy_type(onnx_type: str) -> Any:
    import numpy as np

    types = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(bool)": np.bool_,
        "tensor(string)": object,
    }
    if onnx_type not in types:
        raise UnsupportedModelError(f"ONNX input type {onnx_type} is not supported; use one of {', '.join(types)}.")
    return types[onnx_type]


def _feed(session: Any, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    inputs = session.get_inputs()
    types = {node.name: _numpy_type(node.type) for node in inputs}
    if len(inputs) > 1:
        missing = [node.name for node in inputs if node.name not in frame.columns]
        if missing:
            problems = {name: "missing column (the ONNX model has an input of this name)" for name in missing}
            raise SchemaError(f"The ONNX model needs input columns {', '.join(map(repr, missing))}.", problems=problems)
    try:
        if len(inputs) == 1:
            return {inputs[0].name: frame.to_numpy(dtype=types[inputs[0].name])}
        feed = {}
        for node in inputs:
            column = frame[node.name].to_numpy(dtype=types[node.name])
            feed[node.name] = column if len(node.shape) == 1 else column.reshape(-1, 1)
        return feed
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(f"Cannot convert the input to the ONNX model's tensor types: {exc}") from exc
