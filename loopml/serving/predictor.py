"""A loaded model version ready for the request path, with a numpy fast path for numeric scikit-learn models.

``LoadedModel.predict`` builds a pandas DataFrame, checks every column
against the signature and hands the frame to the model: correct, and about
a millisecond per request before the model even runs. Most served models
are scikit-learn estimators over numeric columns, so for those the
predictor builds the numpy array itself, straight from the parsed JSON, in
the order the estimator was fitted on, and checks it vectorised (numeric
dtype, whole numbers in integer columns, recorded ranges). Anything the
fast path does not accept goes down the checked slow path, which raises the
same SchemaError naming every bad column that ``LoadedModel`` would.

The fast path is switched on only after it proved itself at load time: the
model's predictions for its input example, through both paths, must be
identical. To call a model fitted on a DataFrame with a bare array without
scikit-learn's "X does not have valid feature names" warning, the
predictor removes ``feature_names_in_`` from its private copy of the model
(the column order is taken from it first, and the slow path reorders to it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from loopml.errors import InvalidInputError, LoopMLError
from loopml.models.package import LoadedModel
from loopml.models.signature import Signature, coerce_input
from loopml.serving.batching import Batcher
from loopml.serving.binary import datatype_of
from loopml.serving.payloads import Payload, bind_v2

logger = logging.getLogger("loopml.serving")

_NUMERIC = ("float", "integer")
_MAX_WALK = 100_000
#: Calls over which ``Predictor.cost_s`` takes the least.
COST_WINDOW = 16
#: The clock a call's cost is read on.
_clock = time.perf_counter
#: Exceptions a model raises for input it cannot use: the caller's mistake (422), not the server's.
#: (OverflowError: an integer past 64 bits; a UnicodeEncodeError, a ValueError: a lone surrogate such as "\ud800".)
_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


@dataclass(slots=True)
class FastPath:
    """Numeric input straight to a numpy array in the estimator's column order."""

    model: Any
    order: list[str]
    getter: Callable[[Any], Any]
    dtype: type
    int_columns: np.ndarray | None
    low: np.ndarray | None
    high: np.ndarray | None
    permutation: np.ndarray | None  # signature order -> fitted order, for v2 matrices
    batchable: bool = False  # row-by-row predictions equal stacked ones (checked at load)

    def matrix(self, payload: Payload) -> np.ndarray | None:
        """The input as a 2-D array, or None when anything about it needs the checked slow path."""
        width = len(self.order)
        try:
            if payload.records is not None:
                records = payload.records
                rows = [self.getter(record) for record in records]  # KeyError, TypeError: not a full record
                for record in records:
                    if len(record) != width:  # extra columns
                        return None
                array = np.array(rows)
            elif payload.columns is not None:
                if len(payload.columns) != width:
                    return None
                array = np.array(self.getter(payload.columns)).T
            elif payload.matrix is not None:
                array = np.array(payload.matrix)
                if self.permutation is not None and array.ndim == 2 and array.shape[1] == width:
                    array = array[:, self.permutation]
            else:
                return None
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if array.ndim != 2 or array.shape[1] != width or array.dtype.kind not in "if":
            return None
        if array.dtype.kind == "f" and np.isnan(array).any():  # NaN literals: the checked path says which column
            return None
        if self.int_columns is not None and array.dtype.kind == "f":
            part = array[:, self.int_columns]
            if not (np.isfinite(part).all() and np.array_equal(part, np.floor(part))):
                return None
            if self.dtype is np.int64 and not (np.abs(part) < 2.0**63).all():  # would wrap round in astype
                return None
        if self.low is not None and self.high is not None and ((array < self.low) | (array > self.high)).any():
            return None
        return array.astype(self.dtype, copy=False)


class Predictor:
    """One model version in memory: ``predict(payload)`` returns a numpy array of predictions.

    ``cost_s`` is what one call takes at the least, over the last
    ``COST_WINDOW`` calls: the service uses it to decide whether to predict on
    the event loop (cheap models: no thread hop) or in a worker thread (slow
    ones). The least, not an average: a call's wall time also counts the time
    it waited for the GIL (held by the log writer, or by another request's
    thread) or for a core, which is not the model's cost. An average of those
    waits once sent a cheap model to the worker threads, where waiting for
    the GIL is all the more likely, so its cost never came back down and a
    quarter of the throughput was lost at random. A model that is slow (heavy
    work, a call out to another service) is slow on every call.
    """

    def __init__(self, loaded: LoadedModel, name: str, version: int) -> None:
        self.name = name
        self.version = version
        self.name_json = json.dumps(name, ensure_ascii=False)
        self.loaded = loaded
        self.signature: Signature | None = loaded.signature
        self.names: list[str] | None = None if self.signature is None else self.signature.input_names
        self.nbytes = package_size(loaded)
        self.loaded_at = time.time()
        self._extra = loaded.metadata.get("extra_columns", "error")
        self._costs: deque[float] = deque(maxlen=COST_WINDOW)
        self._output: tuple[str, list[int]] | None = None
        self.fast: FastPath | None = None
        try:
            self.fast = build_fast_path(loaded)
        except Exception:  # the fast path is an optimisation; the checked path still works
            logger.warning("No fast path for %s/%s", name, version, exc_info=True)
            self.fast = None
        self.batcher: Batcher | None = None
        if self.fast is not None and self.fast.batchable:
            self.batcher = Batcher(self.predict_array)
        self._measure()

    @property
    def cost_s(self) -> float:
        """Seconds one call takes at the least, over the last ``COST_WINDOW`` calls (0 before any)."""
        return min(self._costs, default=0.0)

    @property
    def flavor(self) -> str:
        return self.loaded.flavor

    def predict(self, payload: Payload) -> np.ndarray:
        """Predictions for one request; SchemaError (422) names every bad column."""
        start = _clock()
        if payload.tensors is not None and payload.columns is None and payload.matrix is None:
            bind_v2(payload, self.names)
        fast = self.fast
        array = fast.matrix(payload) if fast is not None and payload.no_booleans() else None
        result = self._checked(payload) if array is None or fast is None else _call(fast.model.predict, array)
        self._costs.append(_clock() - start)
        return result

    def predict_array(self, array: np.ndarray) -> np.ndarray:
        """Predictions for an array the fast path built (what the batcher calls)."""
        assert self.fast is not None
        start = _clock()
        result = _call(self.fast.model.predict, array)
        self._costs.append(_clock() - start)
        return result

    def _checked(self, payload: Payload) -> np.ndarray:
        data = payload.as_records(self.names)
        if self.fast is None:
            return _call(self.loaded.predict, data)
        # the checks under _call too, as in LoadedModel.predict: pandas refusing a value is the caller's mistake
        return _call(self._enforce_and_predict, data)

    def _enforce_and_predict(self, data: Any) -> Any:
        fast = self.fast
        assert self.signature is not None and fast is not None  # a fast path exists only with a signature
        frame = self.signature.enforce(coerce_input(data), extra=self._extra)
        return fast.model.predict(frame[fast.order].to_numpy())

    def output_tensor(self) -> tuple[str, list[int]]:
        """The v2 datatype and shape of what this model returns, learnt by predicting its example once.

        Without an example, rows of zeros within the signature's ranges stand in; a model that cannot
        predict either states ``BYTES`` of unknown shape rather than a guess that looks certain.
        """
        if self._output is None:
            rows = input_example(self.loaded) or (_zeros(self.signature) if self.signature is not None else None)
            try:
                result = np.atleast_1d(self.predict(Payload(records=rows[:1]))) if rows else None
            except Exception:
                result = None
            if result is None:
                self._output = ("BYTES", [-1])
            else:
                self._output = (datatype_of(result.dtype), [-1, *result.shape[1:]])
        return self._output

    def _measure(self) -> None:
        """Predict the model's input example once, if it has one: its time is the first cost sample."""
        example = input_example(self.loaded)
        if example is not None:
            with contextlib.suppress(Exception):  # a model that cannot predict its example fails on requests
                self.predict(Payload(records=example[:1]))


def _call(method: Callable[[Any], Any], data: Any) -> np.ndarray:
    try:
        return np.asarray(method(data))
    except LoopMLError:
        raise
    except _INPUT_ERRORS as exc:
        raise InvalidInputError(f"The model could not predict on this input: {exc}") from None


# -- building the fast path ---------------------------------------------------------------------


def build_fast_path(loaded: LoadedModel) -> FastPath | None:
    """A verified fast path for a numeric scikit-learn model, or None (the slow path serves it)."""
    signature = loaded.signature
    if loaded.flavor != "sklearn" or signature is None or loaded.metadata.get("extra_columns") == "keep":
        return None
    if not signature.inputs or any(spec.dtype not in _NUMERIC for spec in signature.inputs):
        return None
    model = loaded.raw
    names = signature.input_names
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        order = [str(name) for name in fitted]
        if sorted(order) != sorted(names):
            return None
    elif getattr(model, "n_features_in_", None) == len(names):
        order = list(names)
    else:
        return None
    example = input_example(loaded)
    if example is None:
        return None
    # rows with missing values take the checked path anyway; verify on complete ones
    example = [row for row in example if all(_present(value) for value in row.values())] or _zeros(signature)
    expected = np.asarray(loaded.predict(example))
    specs = {spec.name: spec for spec in signature.inputs}
    ints = [i for i, name in enumerate(order) if specs[name].dtype == "integer"]
    ranged = any(specs[name].min is not None or specs[name].max is not None for name in order)
    fast = FastPath(
        model=model,
        order=order,
        getter=itemgetter(*order) if len(order) > 1 else _one_getter(order[0]),
        dtype=np.int64 if len(ints) == len(order) else np.float64,
        int_columns=np.array(ints) if ints else None,
        low=np.array([-np.inf if specs[n].min is None else specs[n].min for n in order]) if ranged else None,
        high=np.array([np.inf if specs[n].max is None else specs[n].max for n in order]) if ranged else None,
        permutation=None if order == names else np.array([names.index(name) for name in order]),
    )
    removed = _strip_feature_names(model)
    try:
        array = fast.matrix(Payload(records=example))
        got = None if array is None else np.asarray(model.predict(array))
    except Exception:
        got = None
    if got is None or array is None or not _same(got, expected):
        for owner, value in removed:
            owner.feature_names_in_ = value
        return None
    fast.batchable = _batch_invariant(model, array)
    return fast


def _one_getter(key: str) -> Callable[[Any], tuple[Any]]:
    """itemgetter for one key that still answers a tuple, as itemgetter(*keys) does for several."""
    return lambda row: (row[key],)


def _batch_invariant(model: Any, array: np.ndarray) -> bool:
    """Whether predicting rows one by one gives what predicting them stacked gives (so batching is safe).

    Labels must match exactly; floating-point outputs to 1e-9 relative (BLAS may
    round the last bit differently for different batch shapes, as it would on another CPU).
    """
    rows = np.concatenate([array, array[::-1], array])
    try:
        stacked = np.asarray(model.predict(rows))
        single = np.concatenate([np.asarray(model.predict(rows[i : i + 1])) for i in range(len(rows))])
    except Exception:
        return False
    if stacked.shape != single.shape or stacked.dtype != single.dtype:
        return False
    if stacked.dtype.kind == "f":
        return bool(np.allclose(stacked, single, rtol=1e-9, atol=0, equal_nan=True))
    return bool(np.array_equal(stacked, single))


def _same(got: np.ndarray, expected: np.ndarray) -> bool:
    """Labels exactly; floating-point outputs to 1e-9 relative.

    A DataFrame reaches the estimator as a column-major array and the fast
    path's as row-major, and BLAS may round the last bit of a dot product
    differently for the two layouts.
    """
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return False
    if got.dtype.kind in "fc":
        return bool(np.allclose(got, expected, rtol=1e-9, atol=0, equal_nan=True))
    return bool(np.array_equal(got, expected))


def _strip_feature_names(model: Any) -> list[tuple[Any, Any]]:
    """Remove ``feature_names_in_`` from every fitted estimator inside ``model``; return what was removed."""
    from sklearn.base import BaseEstimator

    removed, seen, stack, steps = [], set(), [model], 0
    while stack and steps < _MAX_WALK:
        item = stack.pop()
        steps += 1
        if id(item) in seen or isinstance(item, str | bytes | int | float | bool | np.ndarray) or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, BaseEstimator):
            state = vars(item)
            if "feature_names_in_" in state:
                removed.append((item, state.pop("feature_names_in_")))
            stack.extend(state.values())
    return removed


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def input_example(loaded: LoadedModel) -> list[dict[str, Any]] | None:
    """The rows stored with the model as its input example, or zeros within the signature's ranges."""
    relpath = loaded.metadata.get("input_example")
    if relpath and loaded.path is not None:
        try:
            rows = json.loads((loaded.path / relpath).read_text(encoding="utf-8"))
            if isinstance(rows, list) and rows and all(isinstance(row, dict) for row in rows):
                return rows
        except (OSError, ValueError):
            pass
    signature = loaded.signature
    if signature is None or any(spec.dtype not in _NUMERIC for spec in signature.inputs):
        return None
    return _zeros(signature)


def _zeros(signature: Signature) -> list[dict[str, Any]]:
    """Two rows of zeros (moved inside any recorded range), for a numeric signature."""
    row: dict[str, Any] = {}
    for spec in signature.inputs:
        value: float = 0
        if spec.min is not None and value < spec.min:
            value = spec.min
        if spec.max is not None and value > spec.max:
            value = spec.max
        row[spec.name] = int(value) if spec.dtype == "integer" else float(value)
    return [row, dict(row)]


def package_size(loaded: LoadedModel) -> int:
    """The model's files on disk, in bytes: the estimate of its memory the cache budgets with."""
    folder = loaded.path
    files: Sequence[str] = list(loaded.metadata.get("files", {}))
    if folder is None:
        return 0
    total = 0
    for relpath in files:
        try:
            total += (Path(folder) / relpath).stat().st_size
        except OSError:
            continue
    return total
