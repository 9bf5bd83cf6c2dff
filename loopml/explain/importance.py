"""Global explanations of a model version: permutation importance and mean absolute SHAP values, as evidence.

:func:`global_explanation` computes, on a holdout,

* scikit-learn's permutation importance (the drop of a score when one
  column is shuffled; needs the labels), and
* where shap is installed, the mean absolute SHAP value of each column
  with the explainer that fits the model (see ``explainers.py``), on at
  most ``max_rows`` rows;

and :func:`explain_model` stores the result on a model version under the
evidence key ``"explanations"`` (keeping the version's other evidence),
with :data:`~loopml.explain.explainers.MAX_BACKGROUND` rows of the data as
the background that per-prediction explanations of that version start from.
A part that cannot be computed (no labels, a model no explainer fits) is
noted in the evidence, not raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidValueError, LoopMLError
from loopml.explain.explainers import MAX_BACKGROUND, Method, view

if TYPE_CHECKING:
    import pandas as pd

    from loopml.entities.registry import ModelVersion
    from loopml.registry.client import RegistryClient

EVIDENCE_KEY = "explanations"
DEFAULT_MAX_ROWS = 500


@dataclass(frozen=True)
class GlobalExplanation:
    """Permutation importance and SHAP importance per column, with what they were computed on."""

    n_rows: int
    permutation: dict[str, Any] | None
    shap: dict[str, Any] | None
    background: list[dict[str, Any]]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def ranking(self) -> list[str]:
        """Columns from most to least important (SHAP where computed, else permutation)."""
        if self.shap is not None:
            return [row["feature"] for row in self.shap["mean_abs"]]
        if self.permutation is not None:
            return [row["feature"] for row in self.permutation["importances"]]
        return []

    def to_evidence(self) -> dict[str, Any]:
        return {
            "kind": "explanations",
            "n_rows": self.n_rows,
            "permutation": self.permutation,
            "shap": self.shap,
            "background": self.background,
            "notes": list(self.notes),
        }


def _default_scoring(raw: Any) -> str:
    return "accuracy" if hasattr(raw, "classes_") else "r2"


class _Adapter:
    """What sklearn's permutation_importance needs from a model that is not an sklearn estimator."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, *_args: Any) -> _Adapter:  # pragma: no cover - never called: the model is fitted
        return self

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)


def _permutation(
    raw: Any, frame: pd.DataFrame, y: np.ndarray, scoring: str | None, n_repeats: int, seed: int
) -> dict[str, Any]:
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, get_scorer, r2_score

    chosen = scoring or _default_scoring(raw)
    if hasattr(raw, "fit") and hasattr(raw, "get_params"):
        estimator: Any = raw
        scorer: Any = get_scorer(chosen)
    else:  # a pyfunc or ONNX model: score its predictions directly
        estimator = _Adapter(raw)
        plain = accuracy_score if chosen == "accuracy" else r2_score
        if chosen not in ("accuracy", "r2"):
            raise InvalidValueError(f"scoring={chosen!r} needs a scikit-learn model; use 'accuracy' or 'r2'.")

        def scorer(model: Any, X: Any, y_true: Any) -> float:
            return float(plain(y_true, np.asarray(model.predict(X))))

    result = permutation_importance(estimator, frame, y, scoring=scorer, n_repeats=n_repeats, random_state=seed)
    rows: list[dict[str, Any]] = [
        {"feature": str(c), "mean": float(m), "std": float(s)}
        for c, m, s in zip(frame.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    rows.sort(key=lambda r: -r["mean"])
    return {"scoring": chosen, "n_repeats": n_repeats, "importances": rows}


def global_explanation(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    scoring: str | None = None,
    n_repeats: int = 5,
    max_rows: int = DEFAULT_MAX_ROWS,
    method: Method = "auto",
    shap_values: bool = True,
    seed: int = 0,
) -> GlobalExplanation:
    """Permutation importance (when ``y`` is given) and mean |SHAP| per column of ``model`` on ``X``."""
    from loopml.explain.explainers import Explainer, import_shap

    seen = view(model)
    frame = seen.prepare(X)
    if not len(frame):
        raise InvalidValueError("A global explanation needs at least one row of data.")
    if len(frame) > max_rows:
        keep = np.random.default_rng(seed).choice(len(frame), max_rows, replace=False)
        keep.sort()
    else:
        keep = np.arange(len(frame))
    sample = frame.iloc[keep]
    notes: list[str] = []
    permutation = None
    if y is None:
        notes.append("no labels given: permutation importance was skipped")
    else:
        labels = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        if labels.shape != (len(frame),):
            raise InvalidValueError(f"y has shape {labels.shape}; it needs one label per row of X ({len(frame)}).")
        permutation = _permutation(seen.raw, sample, labels[keep], scoring, n_repeats, seed)
    shap_part = None
    if shap_values:
        try:
            import_shap()
            explainer = Explainer(model, sample, method=method, seed=seed)
            rows = sample if explainer.method != "kernel" else sample.iloc[: min(len(sample), 100)]
            found = explainer.explain(rows)
            ranked = sorted(found.mean_abs().items(), key=lambda kv: -kv[1])
            shap_part = {
                "method": found.method,
                "output": found.output,
                "expected_value": found.expected_value,
                "n_rows": len(rows),
                "mean_abs": [{"feature": c, "value": v} for c, v in ranked],
            }
        except LoopMLError as exc:
            notes.append(f"SHAP values skipped: {exc.message}")
    background = frame.sample(min(MAX_BACKGROUND, len(frame)), random_state=seed)
    return GlobalExplanation(len(sample), permutation, shap_part, _records(background), tuple(notes))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (numpy scalars to Python ones)."""
    import json

    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def explain_model(
    model: str | ModelVersion,
    data: Any,
    *,
    target: str | None = None,
    y: Any = None,
    client: RegistryClient | None = None,
    actor: str | None = None,
    **options: Any,
) -> GlobalExplanation:
    """Explain a registered version (``models:/name/3``, ``models:/name@alias`` or a ModelVersion) on ``data``.

    ``data`` holds the model's input columns, and the labels in ``target`` (or give ``y``);
    the result is stored on the version as evidence ``"explanations"`` and returned.
    Options go to :func:`global_explanation` (``scoring``, ``n_repeats``, ``max_rows``, ``method``).
    """
    from loopml.entities.registry import ModelVersion
    from loopml.registry.fluent import get_registry_client

    registry = client or get_registry_client()
    if isinstance(model, ModelVersion):
        version = model
    elif isinstance(model, str):
        version = registry.resolve(model)
    else:
        raise InvalidValueError(
            f"explain_model takes a model URI such as 'models:/churn/3' or a ModelVersion, got {type(model).__name__}."
        )
    X = data
    if target is not None:
        columns = getattr(data, "columns", None)
        if columns is None or target not in columns:
            raise InvalidValueError(f"target={target!r} names no column of data.")
        X, y = data.drop(columns=[target]), data[target]
    loaded = registry.load_model(f"models:/{version.name}/{version.version}")
    found = global_explanation(loaded, X, y, **options)
    evidence: dict[str, Any] = dict(registry.get_model_version(version.name, version.version).evidence)
    evidence[EVIDENCE_KEY] = found.to_evidence()
    registry.set_evidence(version.name, version.version, evidence, actor=actor)
    return found


def importance_of(evidence: Mapping[str, Any]) -> dict[str, float] | None:
    """The stored mean |SHAP| per column of a version's evidence, or None."""
    found = evidence.get(EVIDENCE_KEY)
    shap_part = found.get("shap") if isinstance(found, Mapping) else None
    if not isinstance(shap_part, Mapping):
        return None
    return {row["feature"]: float(row["value"]) for row in shap_part.get("mean_abs", [])}
