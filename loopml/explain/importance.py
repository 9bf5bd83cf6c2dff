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

``RegistryClient.register_model(..., holdout=frame, target="label")`` does the
same at registration: :func:`check_holdout` checks the holdout against the
packaged model *before* anything is registered (a bad holdout raises
InvalidValueError and leaves no version behind), and :func:`explain_new_version`
explains the new version and stores the evidence. A version is immutable and
already registered by then, so a model the explainers cannot handle does not
undo it: the evidence holds a note saying what failed (``"error"``) and a
warning is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidInputError, InvalidValueError, LoopMLError
from loopml.explain.explainers import MAX_BACKGROUND, Method, view

if TYPE_CHECKING:
    import pandas as pd

    from loopml.entities.registry import ModelVersion
    from loopml.registry.client import RegistryClient

EVIDENCE_KEY = "explanations"
DEFAULT_MAX_ROWS = 500
#: what ``explain_options`` of ``register_model`` may set (the keywords of :func:`global_explanation`)
OPTIONS = frozenset({"scoring", "n_repeats", "max_rows", "method", "shap_values", "seed"})

_log = logging.getLogger("loopml.explain")


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

    @classmethod
    def from_evidence(cls, record: Mapping[str, Any]) -> GlobalExplanation:
        """The explanation a version's evidence ``"explanations"`` holds (as :meth:`to_evidence` wrote it)."""
        return cls(
            int(record.get("n_rows", 0)),
            record.get("permutation"),
            record.get("shap"),
            list(record.get("background") or []),
            tuple(record.get("notes") or ()),
        )

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
    X, y = _split(data, target, y)
    loaded = registry.load_model(f"models:/{version.name}/{version.version}")
    found = global_explanation(loaded, X, y, **options)
    _store(registry, version, found.to_evidence(), actor)
    return found


def _split(data: Any, target: str | None, y: Any) -> tuple[Any, Any]:
    """(features, labels) from ``data`` with the labels in its column ``target``, or from ``data`` and ``y``."""
    if target is None:
        return data, y
    columns = getattr(data, "columns", None)
    if columns is None or target not in columns:
        raise InvalidValueError(f"target={target!r} names no column of data.")
    return data.drop(columns=[target]), data[target]


def _store(registry: RegistryClient, version: ModelVersion, record: dict[str, Any], actor: str | None) -> ModelVersion:
    """Put ``record`` under ``"explanations"`` in the version's evidence, keeping its other keys (an audited write)."""
    evidence: dict[str, Any] = dict(registry.get_model_version(version.name, version.version).evidence)
    evidence[EVIDENCE_KEY] = record
    return registry.set_evidence(version.name, version.version, evidence, actor=actor)


@dataclass(frozen=True)
class CheckedHoldout:
    """A holdout checked against a packaged model before its version is registered (see :func:`check_holdout`)."""

    X: pd.DataFrame
    y: Any
    options: dict[str, Any]
    model: Any = None  # the LoadedModel; None when it would not load (``problem`` says why)
    problem: str | None = None


def check_holdout(
    registry: RegistryClient,
    source: str,
    holdout: Any,
    *,
    target: str | None = None,
    y: Any = None,
    options: Mapping[str, Any] | None = None,
) -> CheckedHoldout:
    """Check ``holdout`` (and ``target``/``y``, ``options``) against the model at ``source`` (``runs:/id/path``).

    Raises InvalidValueError for a holdout that is not a non-empty DataFrame, a ``target`` that names
    no column of it, labels that do not match its rows, options :func:`global_explanation` does not
    take, and columns the model's signature needs that the holdout lacks. A model that will not load
    (an untrusted type, say) is not the holdout's fault: it is noted, for the evidence, not raised.
    """
    import pandas as pd

    chosen = dict(options or {})
    unknown = sorted(set(chosen) - OPTIONS)
    if unknown:
        raise InvalidValueError(
            f"explain_options takes {', '.join(sorted(OPTIONS))}; {', '.join(map(repr, unknown))} is not one of them."
        )
    for key in ("n_repeats", "max_rows"):
        value = chosen.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError(f"explain_options[{key!r}] must be a whole number from 1, got {value!r}.")
    if not isinstance(holdout, pd.DataFrame):
        raise InvalidValueError(
            f"holdout must be a pandas DataFrame of the model's input columns (and the labels), got {type(holdout).__name__}."
        )
    if target is not None and (not isinstance(target, str) or target not in holdout.columns):
        raise InvalidValueError(
            f"target={target!r} names no column of the holdout; its columns are {list(holdout.columns)}."
        )
    X, labels = _split(holdout, target, y)
    if not len(X):
        raise InvalidValueError("holdout has no rows: an explanation needs at least one.")
    if labels is not None:
        shape = np.shape(labels)
        if shape != (len(X),):
            raise InvalidValueError(f"y has shape {shape}; it needs one label per row of the holdout ({len(X)}).")
    try:
        model = registry.load_model(source)
    except Exception as exc:  # e.g. a type skops does not trust, a PythonModel class not importable here
        return CheckedHoldout(X, labels, chosen, problem=f"the model could not be loaded to explain it: {_reason(exc)}")
    try:
        view(model).prepare(X)
    except InvalidInputError as exc:
        raise InvalidValueError(f"holdout does not fit the model's input: {exc.message}") from exc
    return CheckedHoldout(X, labels, chosen, model)


def _reason(exc: Exception) -> str:
    message = exc.message if isinstance(exc, LoopMLError) else str(exc)
    return f"{type(exc).__name__}: {message[:500]}"


def explain_new_version(
    registry: RegistryClient, version: ModelVersion, checked: CheckedHoldout, *, actor: str | None = None
) -> ModelVersion:
    """Explain a just-registered version on its checked holdout and store the evidence; the version as stored.

    Whatever goes wrong while explaining is recorded, not raised: the version stands (it is
    registered and immutable), its evidence ``"explanations"`` holds the note and ``"error"``,
    and a warning is logged. An error storing the evidence is raised.
    """
    problem = checked.problem
    if problem is None:
        try:
            found = global_explanation(checked.model, checked.X, checked.y, **checked.options)
        except Exception as exc:  # the version is registered already: say what failed, never drop it
            problem = f"explaining failed: {_reason(exc)}"
        else:
            return _store(registry, version, found.to_evidence(), actor)
    _log.warning("%s is registered without its explanations: %s", version.uri, problem)
    record = GlobalExplanation(0, None, None, [], (problem,)).to_evidence()
    record["error"] = problem
    return _store(registry, version, record, actor)


def importance_of(evidence: Mapping[str, Any]) -> dict[str, float] | None:
    """The stored mean |SHAP| per column of a version's evidence, or None."""
    found = evidence.get(EVIDENCE_KEY)
    shap_part = found.get("shap") if isinstance(found, Mapping) else None
    if not isinstance(shap_part, Mapping):
        return None
    return {row["feature"]: float(row["value"]) for row in shap_part.get("mean_abs", [])}
