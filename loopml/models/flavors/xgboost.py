"""XGBoost models, saved in XGBoost's own JSON model format (never pickle).

Both of XGBoost's APIs are packaged: its scikit-learn estimators
(``XGBClassifier``, ``XGBRegressor``, ...; loaded back as the same class, so
``predict`` and ``predict_proba`` answer as they did) and a bare ``Booster``
(``xgboost.train``). The JSON file holds the trees and the learner's
parameters, nothing executable; loading rebuilds only classes named in
``_ESTIMATORS``, whatever the manifest says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import UnsupportedModelError
from loopml.models.flavors.base import ArtifactSources, Flavor, pinned, refuse_options, require
from loopml.models.flavors.unreadable import digests, unreadable, verified_bytes

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.json"
#: The scikit-learn estimator classes of XGBoost this flavor rebuilds on load.
_ESTIMATORS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


def is_xgboost(model: Any) -> bool:
    """Whether ``model`` is an XGBoost estimator or Booster (judged from its classes, without importing XGBoost)."""
    return any(cls.__module__.split(".")[0] == "xgboost" for cls in type(model).__mro__)


class XGBoostFlavor(Flavor):
    """XGBoost scikit-learn estimators and Boosters."""

    name = "xgboost"

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
        xgboost = require("xgboost", "xgboost")
        if isinstance(model, xgboost.Booster):
            model.save_model(str(folder / MODEL_FILE))
            return {"api": "booster", "file": MODEL_FILE, "feature_names": model.feature_names,
                    "sha256": digests(folder, MODEL_FILE)}  # fmt: skip
        class_name = type(model).__name__
        if class_name not in _ESTIMATORS:
            raise UnsupportedModelError(
                f"The xgboost flavor packages {', '.join(_ESTIMATORS)} and Booster, not {class_name}."
            )
        try:
            model.get_booster()
        except Exception as exc:  # XGBoost's NotFittedError
            raise UnsupportedModelError(f"The {class_name} is not fitted yet; fit it before logging it.") from exc
        model.save_model(str(folder / MODEL_FILE))
        names = getattr(model, "feature_names_in_", None)
        return {
            "api": "sklearn",
            "class": class_name,
            "file": MODEL_FILE,
            "feature_names": None if names is None else [str(name) for name in names],
            "sha256": digests(folder, MODEL_FILE),  # checked before XGBoost parses it (see load)
        }

    def load(self, folder: Path, config: Mapping[str, Any], *, trusted: Sequence[str] | None) -> Any:
        xgboost = require("xgboost", "xgboost")
        # the file XGBoost parses is the file that was saved (a changed digit would load silently); it reads
        # the path, not these bytes: XGBoost aborts the process on some damaged in-memory buffers
        verified_bytes(folder, MODEL_FILE, config, "XGBoost cannot read the model file")
        path = str(folder / MODEL_FILE)
        api = config.get("api")
        try:
            if api == "booster":
                booster = xgboost.Booster()
                booster.load_model(path)
                return booster
            class_name = config.get("class")
            if api != "sklearn" or class_name not in _ESTIMATORS:
                raise UnsupportedModelError(
                    f"Unknown xgboost package ({api!r}, {class_name!r}); the model may come from a newer loopml."
                )
            model = getattr(xgboost, str(class_name))()
            model.load_model(path)
        except UnsupportedModelError:
            raise
        except Exception as exc:  # XGBoostError, but also UnicodeDecodeError, OSError... for a damaged file
            raise unreadable("XGBoost cannot read the model file", exc) from None
        return model

    def requirements(self) -> list[str]:
        return pinned("xgboost") or pinned("xgboost-cpu")

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        import numpy as np

        xgboost = require("xgboost", "xgboost")
        if isinstance(model, xgboost.Booster):
            return np.asarray(model.predict(xgboost.DMatrix(_ordered(frame, model.feature_names))))
        return np.asarray(model.predict(_ordered(frame, _fitted_names(model))))

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        import numpy as np

        method = getattr(model, "predict_proba", None)
        if method is None:
            raise UnsupportedModelError(
                f"{type(model).__name__} gives no class probabilities; use predict() (a Booster's predict gives "
                "what its objective outputs, probabilities for binary:logistic)."
            )
        return np.asarray(method(_ordered(frame, _fitted_names(model))))


def _fitted_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def _ordered(frame: pd.DataFrame, names: Sequence[str] | None) -> Any:
    """The frame's columns in the order the model was fitted on (a plain matrix when it saw no names)."""
    if names is None:
        return frame.to_numpy()
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise UnsupportedModelError(f"The model was fitted on columns the input lacks: {', '.join(missing)}.")
    return frame[list(names)]
