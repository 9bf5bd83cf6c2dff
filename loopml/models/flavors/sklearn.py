"""scikit-learn models, saved with skops so that loading never runs arbitrary code.

skops stores an estimator as data and, on load, rebuilds only types it trusts;
anything else (a custom transformer, ``functools.partial``) must be named by
the caller in ``trusted=[...]``. Types defined by scikit-learn itself (such as
``sklearn.tree._tree.Tree``, which every tree ensemble holds) are trusted by
this flavor: the flavor exists to load scikit-learn models, and refusing the
library's own classes would make every random forest need ``trusted=``.
Pickle, which runs whatever the file says, is used only when the caller passes
``unsafe_pickle=True`` when logging, and again when loading.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidValueError, UnsupportedModelError, UntrustedTypeError
from loopml.models.flavors.base import ArtifactSources, Flavor, pinned

if TYPE_CHECKING:
    import pandas as pd

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.pkl"
SKLEARN_PREFIX = "sklearn."


class SklearnFlavor(Flavor):
    """Any scikit-learn estimator or pipeline (including user classes built on BaseEstimator)."""

    name = "sklearn"

    def save(
        self,
        model: Any,
        folder: Path,
        *,
        unsafe_pickle: bool = False,
        artifacts: ArtifactSources | None = None,
    ) -> dict[str, Any]:
        if artifacts:
            raise InvalidValueError(
                "artifacts= is only for PythonModel (pyfunc) models; a scikit-learn model carries its own state."
            )
        config: dict[str, Any] = {
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "has_predict_proba": hasattr(model, "predict_proba"),
        }
        if unsafe_pickle:
            (folder / PICKLE_FILE).write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
            return {**config, "serialization": "pickle", "file": PICKLE_FILE}
        import skops.io

        path = folder / SKOPS_FILE
        try:
            skops.io.dump(model, path)
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise UnsupportedModelError(
                f"skops cannot save {type(model).__name__}: {exc}. Wrap the model in a PythonModel, "
                "or pass unsafe_pickle=True if everyone who loads it trusts its source."
            ) from exc
        # Recorded for information only: load() asks skops again and never trusts this list.
        untrusted = sorted(skops.io.get_untrusted_types(file=path))
        return {**config, "serialization": "skops", "file": SKOPS_FILE, "untrusted_types": untrusted}

    def load(self, folder: Path, config: Mapping[str, Any], *, trusted: Sequence[str] | None) -> Any:
        serialization = config.get("serialization")
        if serialization == "pickle":
            return pickle.loads((folder / PICKLE_FILE).read_bytes())
        if serialization != "skops":
            raise UnsupportedModelError(
                f"Unknown sklearn serialization {serialization!r}; the model may come from a newer loopml."
            )
        import skops.io

        path = folder / SKOPS_FILE
        found = sorted(skops.io.get_untrusted_types(file=path))
        allowed = set(trusted or ())
        refused = [name for name in found if name not in allowed and not name.startswith(SKLEARN_PREFIX)]
        if refused:
            raise UntrustedTypeError(
                f"The model holds {len(refused)} type(s) that skops does not trust: {', '.join(refused)}. "
                "Loading them can run their code. If you trust where this model comes from, "
                f"load it with trusted={refused!r}.",
                untrusted=refused,
            )
        return skops.io.load(path, trusted=found)

    def requirements(self) -> list[str]:
        return pinned("scikit-learn", "skops")

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        import numpy as np

        return np.asarray(model.predict(_features(model, frame)))

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        import numpy as np

        try:
            method = model.predict_proba
        except AttributeError:
            raise UnsupportedModelError(
                f"{type(model).__name__} has no predict_proba (it is not a probabilistic classifier); use predict()."
            ) from None
        return np.asarray(method(_features(model, frame)))


def _features(model: Any, frame: pd.DataFrame) -> Any:
    """What the estimator was fitted on: named columns in its order, or a plain matrix.

    An estimator fitted on a DataFrame checks the column names and warns on a
    matrix; one fitted on a matrix warns on named columns. Giving each what it
    saw keeps predictions quiet and the column order right. When the model
    says neither (a pipeline starting with a custom step), the frame goes as is.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        columns = [str(name) for name in names]
        return frame[columns] if set(columns) <= set(frame.columns) else frame
    if getattr(model, "n_features_in_", None) is not None:
        return frame.to_numpy()
    return frame
