"""scikit-learn models, saved with skops so that loading never runs arbitrary code.

skops stores an estimator as data and, on load, rebuilds only types it trusts;
anything else (a custom transformer, ``functools.partial``) must be named by
the caller in ``trusted=[...]``. Types defined by scikit-learn itself (such as
``sklearn.tree._tree.Tree``, which every tree ensemble holds) is the one
exception: skops refuses it because scikit-learn follows its node indices
without bounds checks, so a crafted file could crash ``predict`` or read
out-of-bounds memory. This flavor loads it and then checks every tree's node
arrays are in bounds before anyone can call the model, so random forests and
boosted trees load without ``trusted=`` and without that risk.
Pickle, which runs whatever the file says, is used only when the caller passes
``unsafe_pickle=True`` when logging, and again when loading.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidValueError, ModelIntegrityError, UnsupportedModelError, UntrustedTypeError
from loopml.models.flavors.base import ArtifactSources, Flavor, pinned

if TYPE_CHECKING:
    import pandas as pd

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.pkl"
TREE_TYPE = "sklearn.tree._tree.Tree"
_MAX_WALK = 100_000


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
        example: pd.DataFrame | None = None,
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
        except TypeError as exc:  # skops' answer to state it cannot serialise (generators, open files)
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
        from skops.io.exceptions import UntrustedTypesFoundException

        path = folder / SKOPS_FILE
        allowed = sorted({*(trusted or ()), TREE_TYPE})
        try:
            model = skops.io.load(path, trusted=allowed)  # skops itself refuses anything else
        except UntrustedTypesFoundException:
            refused = sorted(set(skops.io.get_untrusted_types(file=path)) - set(allowed))
            raise UntrustedTypeError(
                f"The model holds {len(refused)} type(s) that skops does not trust: {', '.join(refused)}. "
                "Loading them can run their code. If you trust where this model comes from, "
                f"load it with trusted={refused!r}.",
                untrusted=refused,
            ) from None
        check_tree_bounds(model)
        return model

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


def check_tree_bounds(model: Any) -> None:
    """Refuse a model whose decision trees hold out-of-range node or feature indices.

    Every ``sklearn.tree._tree.Tree`` reachable from the model must have child
    indices inside ``[-1, node_count)`` that point forward (a tree is stored in
    pre-order, so a child always comes after its parent), features inside
    ``[0, n_features)`` on split nodes, and value arrays of ``node_count`` rows.
    """
    import numpy as np
    from sklearn.tree._tree import Tree

    for tree in _reachable(model, Tree):
        n = int(tree.node_count)
        left, right, feature = tree.children_left, tree.children_right, tree.feature
        nodes = np.arange(n)
        leaf = left == -1
        problems = []
        if not (len(left) == len(right) == len(feature) == n and tree.value.shape[0] == n):
            problems.append("array lengths differ from node_count")
        elif n == 0:
            problems.append("the tree has no nodes")
        else:
            if not np.array_equal(leaf, right == -1):
                problems.append("a node has exactly one child")
            split = ~leaf
            if np.any(
                (left[split] <= nodes[split])
                | (left[split] >= n)
                | (right[split] <= nodes[split])
                | (right[split] >= n)
            ):
                problems.append("a child index is out of range")
            if np.any((feature[split] < 0) | (feature[split] >= int(tree.n_features))):
                problems.append("a split feature index is out of range")
        if problems:
            raise ModelIntegrityError(
                f"A decision tree in the model is malformed ({'; '.join(problems)}); refusing to load it."
            )


def _reachable(root: Any, kind: type) -> list[Any]:
    """Every instance of ``kind`` reachable through attributes, lists, tuples, dicts and object arrays."""
    import numpy as np

    found, seen, stack, steps = [], set(), [root], 0
    while stack and steps < _MAX_WALK:
        item = stack.pop()
        steps += 1
        if id(item) in seen or item is None or isinstance(item, str | bytes | int | float | bool):
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
        elif isinstance(item, np.ndarray):
            if item.dtype == object:
                stack.extend(item.ravel().tolist())
        elif hasattr(item, "__dict__"):
            stack.extend(vars(item).values())
    return found
