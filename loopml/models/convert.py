"""Convert fitted scikit-learn, XGBoost and LightGBM models to ONNX, for serving without their libraries.

The converted graph takes one float matrix named "input" whose columns are the
signature's inputs in order, which is exactly how the onnx flavor feeds it.
Classifiers are converted without skl2onnx's ZipMap, so probabilities come out
as a plain ``(n, n_classes)`` tensor rather than a list of dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidValueError, UnsupportedModelError
from loopml.models.flavors.base import require
from loopml.models.signature import Signature

if TYPE_CHECKING:
    import onnx

_NUMERIC = ("integer", "float")


def to_onnx(model: Any, signature: Signature, *, target_opset: int | None = None) -> onnx.ModelProto:
    """An ONNX graph equivalent to the fitted ``model`` for inputs matching ``signature``.

    Only all-numeric signatures convert (every input "integer" or "float");
    the inputs are cast to float32. ``target_opset`` defaults to skl2onnx's
    newest. Raises UnsupportedModelError for other signatures or models
    skl2onnx cannot convert.
    """
    if not isinstance(signature, Signature):
        raise InvalidValueError(f"to_onnx needs a Signature, got {type(signature).__name__}; see infer_signature().")
    if not signature.inputs:
        raise UnsupportedModelError("to_onnx needs a signature with at least one input column.")
    other = [f"{spec.name!r} ({spec.dtype})" for spec in signature.inputs if spec.dtype not in _NUMERIC]
    if other:
        raise UnsupportedModelError(
            f"to_onnx converts models with all-numeric inputs; these columns are not: {', '.join(other)}. "
            "Encode them inside a scikit-learn Pipeline and log that pipeline with the sklearn flavor instead."
        )
    from loopml.models.flavors.lightgbm import fitted_input_names, is_lightgbm
    from loopml.models.flavors.xgboost import is_xgboost

    fitted_names = getattr(model, "feature_names_in_", None)
    if is_lightgbm(model) and fitted_names is not None:  # LightGBM rewrote the names it was fitted with
        fitted_names = fitted_input_names(fitted_names, signature.input_names)
    if fitted_names is not None and [str(n) for n in fitted_names] != signature.input_names:
        raise InvalidValueError(
            f"The signature's columns {signature.input_names} are not the columns the model was fitted on, "
            f"in order: {[str(n) for n in fitted_names]}. Infer the signature from the training frame."
        )
    if is_xgboost(model) or is_lightgbm(model):
        return _boosted_to_onnx(model, len(signature.inputs), target_opset)
    convert_sklearn = require("skl2onnx", "onnx").convert_sklearn
    FloatTensorType = require("skl2onnx.common.data_types", "onnx").FloatTensorType
    from sklearn.base import is_classifier

    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    try:
        proto: onnx.ModelProto = convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, len(signature.inputs)]))],
            options=options,
            target_opset=target_opset,
        )
    except RuntimeError as exc:  # skl2onnx's MissingShapeCalculator/NotImplementedError for unsupported models
        raise UnsupportedModelError(f"skl2onnx cannot convert {type(model).__name__}: {exc}") from exc
    return proto


def _boosted_to_onnx(model: Any, width: int, target_opset: int | None) -> onnx.ModelProto:
    """XGBoost and LightGBM scikit-learn estimators through onnxmltools (probabilities as a plain tensor).

    onnxmltools reads XGBoost's trees by feature index: a copy without the fitted column names is
    converted (the graph takes the columns in the signature's order, which was checked above).
    """
    import copy

    onnxmltools = require("onnxmltools", "onnx")
    FloatTensorType = require("onnxmltools.convert.common.data_types", "onnx").FloatTensorType
    initial_types = [("input", FloatTensorType([None, width]))]
    try:
        if type(model).__module__.split(".")[0] == "xgboost":
            bare = copy.deepcopy(model)
            bare.get_booster().feature_names = None
            proto: onnx.ModelProto = onnxmltools.convert_xgboost(
                bare, initial_types=initial_types, target_opset=target_opset
            )
        else:
            proto = onnxmltools.convert_lightgbm(
                model, initial_types=initial_types, target_opset=target_opset, zipmap=False
            )
    except (RuntimeError, NotImplementedError, AttributeError, ValueError) as exc:
        raise UnsupportedModelError(f"onnxmltools cannot convert {type(model).__name__}: {exc}") from exc
    return proto
