"""Model packaging: save a model with its signature and requirements as run artifacts, load it back verified.

``log_model`` packages a scikit-learn estimator (via skops), an ONNX model or
a :class:`PythonModel` under a run; ``load_model_from_run`` verifies every file
against the manifest and returns a :class:`LoadedModel` whose ``predict``
checks input against the signature. Every name here is imported on first use,
so ``import loopml.models`` loads neither pandas nor any model library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ColumnSpec": "loopml.models.signature",
    "LoadedModel": "loopml.models.package",
    "ModelInfo": "loopml.models.package",
    "PythonModel": "loopml.models.pyfunc",
    "Signature": "loopml.models.signature",
    "infer_signature": "loopml.models.signature",
    "load_model_from_run": "loopml.models.package",
    "log_model": "loopml.models.package",
    "to_onnx": "loopml.models.convert",
}

__all__ = [
    "ColumnSpec",
    "LoadedModel",
    "ModelInfo",
    "PythonModel",
    "Signature",
    "infer_signature",
    "load_model_from_run",
    "log_model",
    "to_onnx",
]

if TYPE_CHECKING:
    from loopml.models.convert import to_onnx
    from loopml.models.package import LoadedModel, ModelInfo, load_model_from_run, log_model
    from loopml.models.pyfunc import PythonModel
    from loopml.models.signature import ColumnSpec, Signature, infer_signature


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
