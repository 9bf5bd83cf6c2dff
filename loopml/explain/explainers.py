"""SHAP explainers that fit the model: exact tree SHAP, linear SHAP, or a sampled kernel explainer.

:func:`build_explainer` looks at the model once and picks

* ``tree``: scikit-learn tree ensembles, XGBoost and LightGBM (``shap.TreeExplainer``,
  path-dependent, so it needs no background data);
* ``linear``: scikit-learn linear models (``shap.LinearExplainer`` over a background);
* ``kernel``: anything else that predicts from numeric columns (``shap.KernelExplainer``
  over at most :data:`MAX_BACKGROUND` background rows and :data:`KERNEL_SAMPLES` coalitions).

All three satisfy SHAP's *local accuracy*: the attributions of a row sum to
the explained output minus the expected value, on the scale the explainer
works on (``Attributions.output``: a probability, log-odds or the predicted
value). Asking for an explainer that does not fit a model raises
:class:`~loopml.errors.UnsupportedModelError` naming the one that would.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.errors import InvalidValueError, UnsupportedModelError

if TYPE_CHECKING:
    import pandas as pd

Method = Literal["auto", "tree", "linear", "kernel"]
METHODS = ("auto", "tree", "linear", "kernel")
#: Background rows a linear or kernel explainer keeps (sampled with a fixed seed).
MAX_BACKGROUND = 50
#: Coalitions the kernel explainer evaluates per row.
KERNEL_SAMPLES = 256

_TREE_MODULES = ("xgboost", "lightgbm", "catboost")
_TREE_NAMES = ("Forest", "Tree", "GradientBoosting", "ExtraTrees")


@dataclass(frozen=True)
class Attributions:
    """Per-row, per-column attributions and what they add up to.

    ``values[i].sum() == outputs[i] - expected_value`` when ``additive`` (SHAP's local accuracy):
    ``outputs`` are the model's outputs on the scale named by ``output`` (``Explainer.model_output``
    gives them from the model itself; the tests hold the two equal).
    """

    columns: tuple[str, ...]
    values: np.ndarray
    expected_value: float
    outputs: np.ndarray
    output: str
    method: str
    additive: bool

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: ``attributions`` by column, ``expected_value`` and ``output_value``."""
        return [
            {
                "attributions": {c: float(v) for c, v in zip(self.columns, row, strict=True)},
                "expected_value": float(self.expected_value),
                "output_value": float(out),
                "output": self.output,
                "method": self.method,
                "additive": self.additive,
            }
            for row, out in zip(self.values, self.outputs, strict=True)
        ]

    def mean_abs(self) -> dict[str, float]:
        """Mean absolute attribution per column (the global importance of SHAP values)."""
        return {c: float(v) for c, v in zip(self.columns, np.abs(self.values).mean(axis=0), strict=True)}


@dataclass(frozen=True)
class ModelView:
    """A model seen the way explainers need it: the raw estimator, the input preparation and the output."""

    raw: Any
    flavor: str
    prepare: Callable[[Any], pd.DataFrame]
    columns: tuple[str, ...] | None


def view(model: Any) -> ModelView:
    """The raw estimator behind a ``LoadedModel`` (or the model itself), and how to shape its input."""
    from loopml.models.package import LoadedModel
    from loopml.models.signature import coerce_input

    if isinstance(model, LoadedModel):
        signature = model.signature
        extra = model.metadata.get("extra_columns", "error")

        def prepare(data: Any) -> pd.DataFrame:
            frame = coerce_input(data)
            return frame if signature is None else signature.enforce(frame, extra=extra)

        names = None if signature is None else tuple(signature.input_names)
        raw = model.raw if model.flavor == "sklearn" else model
        return ModelView(raw, model.flavor, prepare, names)
    if not hasattr(model, "predict"):
        raise UnsupportedModelError(f"{type(model).__name__} has no predict(): there is nothing to explain.")
    fitted = getattr(model, "feature_names_in_", None)
    names = None if fitted is None else tuple(str(c) for c in fitted)

    def prepare_plain(data: Any) -> pd.DataFrame:
        frame = coerce_input(data)
        return frame if names is None else frame[list(names)]

    return ModelView(model, "python", prepare_plain, names)


def family(raw: Any) -> str:
    """``tree``, ``linear`` or ``kernel``: the explainer that fits this estimator best."""
    cls = type(raw)
    module = cls.__module__.split(".")[0]
    if module in _TREE_MODULES:
        return "tree"
    if module == "sklearn":
        if cls.__module__.startswith("sklearn.linear_model"):
            return "linear"
        if cls.__module__.startswith(("sklearn.ensemble._forest", "sklearn.ensemble._gb", "sklearn.tree")) or any(
            part in cls.__name__ for part in _TREE_NAMES if "HistGradient" not in cls.__name__
        ):
            return "tree"
    return "kernel"


def _probabilistic(raw: Any) -> bool:
    return hasattr(raw, "predict_proba") and hasattr(raw, "classes_")


def import_shap() -> Any:
    """The shap module; UnsupportedModelError when it is not installed.

    Importing shap draws in its plotting module, whose matplotlib colour maps warn about
    deprecations of matplotlib's own API: nothing a loopml user can act on, so silenced here.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import shap  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - shap is in the test extra
        raise UnsupportedModelError("SHAP explanations need the shap package: pip install 'loopml[shap]'.") from None
    return shap


class Explainer:
    """One model's SHAP explainer, built once; ``explain(X)`` is safe to call from several threads."""

    def __init__(self, model: Any, background: Any = None, *, method: Method = "auto", seed: int = 0) -> None:
        if method not in METHODS:
            raise InvalidValueError(f"Unknown explanation method {method!r}; use one of {', '.join(METHODS)}.")
        shap = import_shap()
        self.view = view(model)
        self.model_name = type(self.view.raw).__name__
        fits = family(self.view.raw) if self.view.flavor in ("sklearn", "python") else "kernel"
        chosen = fits if method == "auto" else method
        if chosen != fits and chosen != "kernel":
            which = "the kernel explainer" if fits == "kernel" else f"the {fits} explainer (method={fits!r})"
            flavor = "" if self.view.flavor in ("sklearn", "python") else f" ({self.view.flavor} flavor)"
            raise UnsupportedModelError(
                f"The {chosen} explainer does not support {self.model_name}{flavor}; {which} would. "
                f"Tree SHAP needs a scikit-learn, XGBoost or LightGBM tree model and linear SHAP a "
                f"scikit-learn linear model, both logged with the sklearn flavor."
            )
        self.method = chosen
        self._lock = threading.Lock()
        self._shap = shap
        self._seed = seed
        frame = None if background is None else self.view.prepare(background)
        if frame is not None and len(frame) > MAX_BACKGROUND:
            frame = frame.sample(MAX_BACKGROUND, random_state=seed)
        if chosen != "tree" and (frame is None or not len(frame)):
            raise InvalidValueError(
                f"The {chosen} explainer of {self.model_name} needs background rows (typically part of the training "
                "data): pass background=..., or run loopml.explain_model(version, data) once, which stores them."
            )
        self.background = frame
        self.columns: tuple[str, ...] = tuple(
            str(c) for c in (frame.columns if frame is not None else self.view.columns or ())
        )
        self._class = self._positive_index()
        self.output = self._output_name()
        self._explainer = self._build()

    # -- construction ----------------------------------------------------------------------------------
    def _positive_index(self) -> int | None:
        raw = self.view.raw
        if not _probabilistic(raw):
            return None
        return len(raw.classes_) - 1  # binary: the second class; multi-class: the last one

    def _output_name(self) -> str:
        if self._class is None:
            return "prediction"
        label = self.view.raw.classes_[self._class]
        module = type(self.view.raw).__module__
        if self.method == "tree" and module.startswith("sklearn.") and "GradientBoosting" not in self.model_name:
            return f"probability of class {label}"
        if self.method in ("tree", "linear"):
            return f"log-odds of class {label}"
        return f"probability of class {label}"

    def _build(self) -> Any:
        shap = self._shap
        raw = self.view.raw
        if self.method == "tree":
            return shap.TreeExplainer(raw)
        if self.method == "linear":
            return shap.LinearExplainer(raw, self.background.to_numpy(dtype=np.float64))  # type: ignore[union-attr]
        assert self.background is not None
        numeric = [c for c in self.background.columns if self.background[c].dtype.kind not in "biuf"]
        if numeric:
            raise UnsupportedModelError(
                f"The kernel explainer needs numeric input columns; {', '.join(map(str, numeric[:5]))} are not. "
                "Explain the model's numeric pipeline step, or log a model whose input is numeric."
            )
        return shap.KernelExplainer(self._function, self.background.to_numpy(dtype=np.float64), seed=self._seed)

    def _function(self, matrix: np.ndarray) -> np.ndarray:
        import pandas as pd

        frame = pd.DataFrame(matrix, columns=list(self.columns))
        if self.background is not None:
            frame = frame.astype(self.background.dtypes.to_dict())
        return self.model_output(frame)

    # -- outputs ---------------------------------------------------------------------------------------
    def model_output(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's own output on the explained scale (probability, log-odds or value), per row."""
        raw = self.view.raw
        if hasattr(raw, "fit") and getattr(raw, "feature_names_in_", None) is None:
            # fitted on an array (or the serving fast path's private copy, which forgets the names it was
            # fitted with): give it the bare array, as a frame would make scikit-learn warn
            frame = frame.to_numpy()  # type: ignore[assignment]
        if self._class is None:
            return np.asarray(raw.predict(frame), dtype=np.float64).reshape(len(frame))
        if self.output.startswith("log-odds") and hasattr(raw, "decision_function") and len(raw.classes_) == 2:
            return np.asarray(raw.decision_function(frame), dtype=np.float64).reshape(len(frame))
        proba = np.asarray(raw.predict_proba(frame), dtype=np.float64)[:, self._class]
        if self.output.startswith("log-odds"):
            clipped = np.clip(proba, 1e-15, 1 - 1e-15)
            return np.asarray(np.log(clipped / (1 - clipped)))
        return proba

    def explain(self, data: Any, *, checked: bool = False) -> Attributions:
        """Attributions of every row of ``data`` (a DataFrame, records, a dict of columns or one record).

        ``checked``: the rows already passed the model's signature (the prediction service predicted
        them a moment ago), so they are only put in column order, not checked again.
        """
        if checked and self.columns:
            from loopml.models.signature import coerce_input

            frame = coerce_input(data)
        else:
            frame = self.view.prepare(data)
        if self.columns:
            frame = frame[list(self.columns)]
        with self._lock:  # shap explainers keep state between calls
            if self.method == "kernel":
                raw_values = self._explainer.shap_values(
                    frame.to_numpy(dtype=np.float64), nsamples=KERNEL_SAMPLES, silent=True
                )
            elif self.method == "linear":
                raw_values = self._explainer.shap_values(frame.to_numpy(dtype=np.float64))
            else:
                with warnings.catch_warnings():  # LightGBM: "output has changed to a list of ndarray" (handled)
                    warnings.filterwarnings("ignore", message="LightGBM binary classifier", category=UserWarning)
                    raw_values = self._explainer.shap_values(frame, check_additivity=False)
            expected = self._explainer.expected_value
        values, base = _pick(raw_values, expected, self._class, len(frame), len(frame.columns))
        # Tree and linear SHAP are exact and kernel SHAP constrains its fit to it: the output is the expected
        # value plus the attributions, so the model is not called again (the tests check it against the model)
        outputs = base + values.sum(axis=1)
        return Attributions(tuple(str(c) for c in frame.columns), values, base, outputs, self.output, self.method, True)


def _pick(values: Any, expected: Any, index: int | None, n: int, p: int) -> tuple[np.ndarray, float]:
    """The (n, p) attributions and the expected value of the explained class from shap's several shapes."""
    base = np.atleast_1d(np.asarray(expected, dtype=np.float64))
    if isinstance(values, list):  # older shap: one array per class
        chosen = values[index if index is not None and len(values) > 1 else -1]
        array = np.asarray(chosen, dtype=np.float64)
    else:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim == 3:
            array = array[:, :, index if index is not None else -1]
    offset = float(base[index] if index is not None and len(base) > 1 else base[-1])
    return array.reshape(n, p), offset
