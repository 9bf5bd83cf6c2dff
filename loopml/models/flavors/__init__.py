"""The flavors loopml can package, by name, imported only when used.

The table maps a flavor name to the dotted path of its class, so that
``import loopml.models`` never imports scikit-learn, skops or onnxruntime;
a flavor's module (and its library) loads the first time it is needed.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from loopml.errors import UnsupportedModelError, did_you_mean
from loopml.models.flavors.base import Flavor

FLAVORS: dict[str, str] = {
    "lightgbm": "loopml.models.flavors.lightgbm:LightGBMFlavor",
    "onnx": "loopml.models.flavors.onnx:OnnxFlavor",
    "pyfunc": "loopml.models.flavors.pyfunc:PyfuncFlavor",
    "sklearn": "loopml.models.flavors.sklearn:SklearnFlavor",
    "torch": "loopml.models.flavors.torch:TorchFlavor",
    "xgboost": "loopml.models.flavors.xgboost:XGBoostFlavor",
}

_SUPPORTED = (
    "scikit-learn estimators and pipelines (flavor 'sklearn', saved with skops), "
    "XGBoost and LightGBM estimators and Boosters ('xgboost', 'lightgbm', in their own formats), "
    "torch.nn.Module models ('torch', a torch.export program with safetensors weights), "
    "onnx.ModelProto objects or serialized ONNX bytes ('onnx'), "
    "and loopml.models.PythonModel subclasses ('pyfunc')"
)


def get_flavor(name: str) -> Flavor:
    """The flavor registered under ``name``; UnsupportedModelError listing the known ones."""
    if not isinstance(name, str) or name not in FLAVORS:
        raise UnsupportedModelError(
            f"Unknown model flavor {name!r}; loopml knows {', '.join(sorted(FLAVORS))}."
            + (did_you_mean(name, FLAVORS) if isinstance(name, str) else "")
        )
    return _instance(name)


@functools.cache
def _instance(name: str) -> Flavor:
    module_name, _, class_name = FLAVORS[name].partition(":")
    flavor_class = getattr(importlib.import_module(module_name), class_name)
    flavor: Flavor = flavor_class()
    return flavor


def flavor_for(model: Any) -> Flavor:
    """The flavor that packages ``model``, chosen from its type without importing model libraries.

    ONNX bytes or ``onnx.ModelProto`` -> onnx; a PythonModel -> pyfunc; XGBoost's and
    LightGBM's models -> xgboost / lightgbm (checked before scikit-learn: their
    estimators are built on its classes); a ``torch.nn.Module`` -> torch; anything
    else defined in scikit-learn or built on one of its classes -> sklearn.
    """
    from loopml.models.flavors.lightgbm import is_lightgbm
    from loopml.models.flavors.torch import is_torch_module
    from loopml.models.flavors.xgboost import is_xgboost
    from loopml.models.pyfunc import PythonModel

    if isinstance(model, (bytes, bytearray, memoryview)):
        return get_flavor("onnx")
    mro = type(model).__mro__
    if any(cls.__name__ == "ModelProto" and cls.__module__.split(".")[0] == "onnx" for cls in mro):
        return get_flavor("onnx")
    if isinstance(model, PythonModel):
        return get_flavor("pyfunc")
    if is_xgboost(model):
        return get_flavor("xgboost")
    if is_lightgbm(model):
        return get_flavor("lightgbm")
    if is_torch_module(model):
        return get_flavor("torch")
    if any(cls.__module__ == "sklearn" or cls.__module__.startswith("sklearn.") for cls in mro):
        return get_flavor("sklearn")
    raise UnsupportedModelError(
        f"loopml cannot package a {type(model).__module__}.{type(model).__qualname__}. "
        f"Supported: {_SUPPORTED}. Wrap other models in a PythonModel subclass."
    )


__all__ = ["FLAVORS", "Flavor", "flavor_for", "get_flavor"]
