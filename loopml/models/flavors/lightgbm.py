"""LightGBM models, saved in LightGBM's own text model format (never pickle).

A scikit-learn estimator (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``)
is saved as its fitted Booster's text file plus what the estimator adds on top:
the class labels and the column order it was fitted on. Loading builds a
``LightGBMModel`` over the Booster that answers ``predict`` and
``predict_proba`` as the estimator did (class labels, not probabilities, from
a classifier's ``predict``). A bare ``Booster`` (``lightgbm.train``) loads back
as a Booster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import UnsupportedModelError
from loopml.models.flavors.base import ArtifactSources, Flavor, pinned, refuse_options, require
from loopml.models.flavors.unreadable import digests, unreadable, verified_bytes

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.txt"
_ESTIMATORS = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")


def is_lightgbm(model: Any) -> bool:
    """Whether ``model`` is a LightGBM estimator or Booster (from its classes, without importing LightGBM)."""
    return any(cls.__module__.split(".")[0] == "lightgbm" for cls in type(model).__mro__)


class LightGBMModel:
    """A loaded LightGBM estimator: its Booster, class labels and fitted column order."""

    def __init__(self, booster: Any, kind: str, classes: list[Any] | None, feature_names: list[str] | None) -> None:
        self.booster = booster
        self.kind = kind
        self.classes_ = None if classes is None else np.asarray(classes)
        self.feature_names = feature_names

    def _matrix(self, frame: pd.DataFrame) -> Any:
        if self.feature_names is None:
            return frame.to_numpy()
        return frame[self.feature_names].to_numpy()

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order."""
        if self.kind != "LGBMClassifier":
            raise UnsupportedModelError(f"An {self.kind} gives no class probabilities; use predict().")
        raw = np.asarray(self.booster.predict(self._matrix(frame)))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Class labels for a classifier, the Booster's output otherwise."""
        if self.kind == "LGBMClassifier":
            assert self.classes_ is not None
            return np.asarray(self.classes_[np.argmax(self.predict_proba(frame), axis=1)])
        return np.asarray(self.booster.predict(self._matrix(frame)))


class LightGBMFlavor(Flavor):
    """LightGBM scikit-learn estimators and Boosters."""

    name = "lightgbm"

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
        lightgbm = require("lightgbm", "lightgbm")
        path = str(folder / MODEL_FILE)
        if isinstance(model, lightgbm.Booster):
            model.save_model(path)
            return {"api": "booster", "file": MODEL_FILE, "sha256": digests(folder, MODEL_FILE)}
        kind = type(model).__name__
        if kind not in _ESTIMATORS:
            raise UnsupportedModelError(f"The lightgbm flavor packages {', '.join(_ESTIMATORS)} and Booster, not {kind}.")
        booster = getattr(model, "_Booster", None)
        if booster is None:
            raise UnsupportedModelError(f"The {kind} is not fitted yet; fit it before logging it.")
        booster.save_model(path)
        fitted = getattr(model, "feature_names_in_", None)
        names = None if fitted is None else fitted_input_names(fitted, None if example is None else list(example.columns))
        classes = getattr(model, "classes_", None) if kind == "LGBMClassifier" else None
        return {
            "api": "sklearn",
            "class": kind,
            "file": MODEL_FILE,
            "classes": None if classes is None else np.asarray(classes).tolist(),
            "feature_names": names,
            "sha256": digests(folder, MODEL_FILE),  # checked before LightGBM parses it (see load)
        }

    def load(self, folder: Path, config: Mapping[str, Any], *, trusted: Sequence[str] | None) -> Any:
        lightgbm = require("lightgbm", "lightgbm")
        # LightGBM's parser aborts the process (no exception) on some truncated files: the bytes are checked first
        data = verified_bytes(folder, MODEL_FILE, config, "LightGBM cannot read the model file")
        try:
            booster = lightgbm.Booster(model_str=data.decode("utf-8"))
        except Exception as exc:  # LightGBMError, but also ValueError, OSError... for a damaged file
            raise unreadable("LightGBM cannot read the model file", exc) from None
        api, kind = config.get("api"), config.get("class")
        if api == "booster":
            return booster
        if api != "sklearn" or kind not in _ESTIMATORS:
            raise UnsupportedModelError(
                f"Unknown lightgbm package ({api!r}, {kind!r}); the model may come from a newer loopml."
            )
        return LightGBMModel(booster, str(kind), config.get("classes"), config.get("feature_names"))

    def requirements(self) -> list[str]:
        return pinned("lightgbm")

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        if isinstance(model, LightGBMModel):
            return model.predict(frame)
        return np.asarray(model.predict(frame.to_numpy()))

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        if isinstance(model, LightGBMModel):
            return model.predict_proba(frame)
        raise UnsupportedModelError("A LightGBM Booster's predict() gives what its objective outputs; use predict().")


def fitted_input_names(fitted: Sequence[Any], columns: Sequence[Any] | None) -> list[str]:
    """The input's column names in the order the model was fitted on.

    LightGBM rewrites the names it was fitted with (``"sepal length (cm)"`` becomes
    ``"sepal_length_(cm)"``), so each fitted name is matched to the input column that
    rewrites to it; without columns, or with an ambiguous match, the fitted names stand.
    """
    names = [str(name) for name in fitted]
    if columns is None:
        return names
    by_form: dict[str, list[str]] = {}
    for column in map(str, columns):
        by_form.setdefault(_lightgbm_form(column), []).append(column)
    matched = [by_form.get(_lightgbm_form(name), []) for name in names]
    if all(len(found) == 1 for found in matched):
        return [found[0] for found in matched]
    return names


def _lightgbm_form(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_()\-.]", "_", name.replace(" ", "_"))
