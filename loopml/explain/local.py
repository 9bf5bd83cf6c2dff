"""Per-prediction explanations: one cached explainer per loaded model, and the background it is built on.

:func:`explainer_for` builds a model's :class:`~loopml.explain.explainers.Explainer`
once and keeps it as long as the model object lives (a weak-keyed cache), so
the prediction service and ``LoadedModel.explain`` pay the construction cost
(a tree explainer walks every tree) only on the first explanation. The
background rows of linear and kernel explainers come from, in order: the
caller, the version's stored global explanation (``explain_model`` keeps
:data:`~loopml.explain.explainers.MAX_BACKGROUND` rows of the data it was
given), then the input example logged with the model.
"""

from __future__ import annotations

import contextlib
import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.explain.explainers import Attributions, Explainer, Method

_CACHE: weakref.WeakKeyDictionary[Any, Explainer] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def example_rows(model: Any) -> list[dict[str, Any]] | None:
    """The input example logged with a ``LoadedModel`` (a few rows), or None."""
    path = getattr(model, "path", None)
    metadata = getattr(model, "metadata", None)
    if path is None or not isinstance(metadata, Mapping) or not metadata.get("input_example"):
        return None
    try:
        rows = json.loads((path / str(metadata["input_example"])).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rows if isinstance(rows, list) and rows else None


def stored_background(evidence: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The background rows a version's global explanation kept, or None."""
    found = evidence.get("explanations")
    rows = found.get("background") if isinstance(found, Mapping) else None
    return rows if isinstance(rows, list) and rows else None


def explainer_for(model: Any, background: Any = None, *, method: Method = "auto") -> Explainer:
    """The model's cached explainer, built on first use (``background``: see the module docstring).

    ``background`` may be a function returning the rows (or None): it is called only to build.
    """
    with _LOCK:
        found = _CACHE.get(model)
    if found is not None and (method == "auto" or found.method == method):
        return found
    rows = background() if callable(background) else background
    if rows is None:
        rows = example_rows(model)
    built = Explainer(model, rows, method=method)
    with _LOCK, contextlib.suppress(TypeError):  # a model that cannot be weakly referenced is explained uncached
        _CACHE[model] = built
    return built


def explain(model: Any, data: Any, *, background: Any = None, method: Method = "auto") -> Attributions:
    """SHAP attributions of each row of ``data`` for ``model`` (a LoadedModel or a fitted estimator).

    Each row's attributions sum to its output minus the expected value (``Attributions.additive``).
    """
    return explainer_for(model, background, method=method).explain(data)


def explain_records(model: Any, data: Any, *, background: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """:func:`explain` as JSON-ready dicts, one per row (what ``?explain=true`` answers)."""
    return explain(model, data, background=background).to_records()
