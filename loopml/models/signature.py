"""Model signatures: the columns a model takes, checked before every prediction.

A signature is recorded when a model is logged (inferred from an input example,
or given) and enforced when the loaded model predicts. A request with a missing
column, a string where a number belongs or an unseen category then fails with
one ``SchemaError`` naming every offending column, instead of a confusing error
deep inside the model or, worse, a silently wrong answer.

Casts are safe or refused: integers become floats, whole floats become
integers, ISO-8601 strings become datetimes; a string such as ``"1.5"`` is never
read as a number, because a caller sending strings has a bug worth seeing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_float_dtype,
    is_integer_dtype,
)

from loopml.errors import InvalidValueError, SchemaError, did_you_mean

DTYPES = ("integer", "float", "boolean", "string", "datetime", "category")
EXTRA_POLICIES = ("error", "drop", "keep")
ExtraPolicy = Literal["error", "drop", "keep"]

_ACCEPTED = (
    "a pandas DataFrame, a list of records (dicts), a dict of columns (name -> list) "
    "or a single record (dict of scalars)"
)
_NUMERIC = ("integer", "float")
_VECTOR_TYPES = (list, tuple, np.ndarray, pd.Series, pd.Index)
# What pandas' infer_dtype reports, mapped to our dtypes, for object columns.
_INFERRED = {
    "string": "string",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One input or output column: its name, type and what values it may hold.

    ``min``/``max`` (numeric columns) and ``categories`` (string and category
    columns) are only checked when they were recorded; ``nullable`` says whether
    missing values are allowed.
    """

    name: str
    dtype: str
    nullable: bool = False
    min: int | float | None = None
    max: int | float | None = None
    categories: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidValueError(f"A column name must be a non-empty string, got {self.name!r}.")
        if self.dtype not in DTYPES:
            raise InvalidValueError(
                f"Column {self.name!r} has dtype {self.dtype!r}; use one of {', '.join(DTYPES)}."
                + did_you_mean(str(self.dtype), DTYPES)
            )
        if not isinstance(self.nullable, bool):
            raise InvalidValueError(f"Column {self.name!r}: nullable must be True or False, got {self.nullable!r}.")
        for bound in (self.min, self.max):
            if bound is None:
                continue
            if self.dtype not in _NUMERIC:
                raise InvalidValueError(f"Column {self.name!r}: min/max apply only to integer and float columns.")
            if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
                raise InvalidValueError(f"Column {self.name!r}: min/max must be finite numbers, got {bound!r}.")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidValueError(f"Column {self.name!r}: min {self.min} is greater than max {self.max}.")
        if self.categories is not None:
            values = tuple(_python_scalar(v) for v in self.categories)
            bad = [v for v in values if not isinstance(v, (str, int, float, bool))]
            if bad:
                raise InvalidValueError(
                    f"Column {self.name!r}: categories must be strings, numbers or booleans, got {bad[0]!r}."
                )
            object.__setattr__(self, "categories", values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form stored in a model's manifest."""
        data: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.min is not None:
            data["min"] = self.min
        if self.max is not None:
            data["max"] = self.max
        if self.categories is not None:
            data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        """Rebuild a column from :meth:`to_dict` output; InvalidValueError when malformed."""
        if not isinstance(data, Mapping):
            raise InvalidValueError(f"A column spec must be a dict, got {type(data).__name__}.")
        unknown = set(data) - {"name", "dtype", "nullable", "min", "max", "categories"}
        if unknown:
            raise InvalidValueError(f"Column spec has unknown keys: {', '.join(sorted(map(str, unknown)))}.")
        if "name" not in data or "dtype" not in data:
            raise InvalidValueError("A column spec needs at least 'name' and 'dtype'.")
        categories = data.get("categories")
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            nullable=data.get("nullable", False),
            min=data.get("min"),
            max=data.get("max"),
            categories=tuple(categories) if categories is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Signature:
    """The input columns a model expects, in order, and optionally what it returns.

    Example:
        >>> sig = Signature((ColumnSpec("age", "integer"), ColumnSpec("city", "string", nullable=True)))
        >>> sig.input_names
        ['age', 'city']
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _spec_tuple(self.inputs, "inputs"))
        if self.outputs is not None:
            object.__setattr__(self, "outputs", _spec_tuple(self.outputs, "outputs"))

    @property
    def input_names(self) -> list[str]:
        """The input column names, in the order the model receives them."""
        return [spec.name for spec in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form stored in a model's manifest."""
        return {
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": None if self.outputs is None else [spec.to_dict() for spec in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Rebuild a signature from :meth:`to_dict` output; InvalidValueError when malformed."""
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), list):
            raise InvalidValueError("A signature must be a dict with an 'inputs' list.")
        outputs = data.get("outputs")
        if outputs is not None and not isinstance(outputs, list):
            raise InvalidValueError("A signature's 'outputs' must be a list or null.")
        return cls(
            inputs=tuple(ColumnSpec.from_dict(item) for item in data["inputs"]),
            outputs=None if outputs is None else tuple(ColumnSpec.from_dict(item) for item in outputs),
        )

    def enforce(self, frame: pd.DataFrame, *, extra: ExtraPolicy = "error") -> pd.DataFrame:
        """Check ``frame`` against the inputs; return it in signature order with safe casts applied.

        Every problem is collected first, then one SchemaError reports them all:
        its ``problems`` maps each offending column to what is wrong with it.
        ``extra`` decides what happens to columns the signature does not list:
        "error" reports them, "drop" leaves them out, "keep" passes them through
        after the signature's columns.
        """
        if extra not in EXTRA_POLICIES:
            raise InvalidValueError(f"extra must be one of {', '.join(EXTRA_POLICIES)}, got {extra!r}.")
        if not isinstance(frame, pd.DataFrame):
            raise InvalidValueError(f"enforce needs a DataFrame, got {type(frame).__name__}; use coerce_input first.")
        frame = _string_columns(frame)
        problems: dict[str, str] = {}
        for name in dict.fromkeys(frame.columns[frame.columns.duplicated()]):
            problems[name] = "the column appears more than once"
        checked: dict[str, pd.Series] = {}
        for spec in self.inputs:
            if spec.name in problems:
                continue
            if spec.name not in frame.columns:
                problems[spec.name] = f"missing column (expected {spec.dtype})"
                continue
            series, problem = _check_column(frame[spec.name], spec)
            if problem is not None:
                problems[spec.name] = problem
            else:
                checked[spec.name] = series
        known = set(self.input_names)
        extras = [name for name in frame.columns if name not in known and name not in problems]
        if extra == "error":
            for name in extras:
                problems[name] = (
                    "unexpected column: the signature does not list it "
                    "(pass extra='drop' to ignore it or extra='keep' to pass it through)"
                )
        if problems:
            raise SchemaError(_schema_message(problems), problems=problems)
        if extra == "keep":
            checked.update((name, frame[name]) for name in extras)
        return pd.DataFrame(checked, index=frame.index)


def infer_signature(
    input_example: Any,
    output_example: Any = None,
    *,
    ranges: bool = False,
    categories: bool = False,
) -> Signature:
    """Read a signature off example data.

    ``input_example`` is a DataFrame, a dict of columns, a list of records or a
    2-D numpy array (whose columns are named "0".."n-1"). A column is nullable
    when the example has missing values in it. With ``ranges`` the observed
    min/max of numeric columns are recorded, and with ``categories`` the values
    seen in string and category columns; both are then enforced on input, so
    use them only when the example covers every legitimate value.
    """
    inputs = _infer_columns(example_frame(input_example), ranges=ranges, categories=categories)
    outputs = None
    if output_example is not None:
        outputs = _infer_columns(example_frame(output_example), ranges=False, categories=False)
    return Signature(inputs=inputs, outputs=outputs)


def coerce_input(data: Any) -> pd.DataFrame:
    """Turn any accepted input form into a DataFrame with string column names.

    Accepted: a DataFrame, a list of records (dicts), a dict of columns
    (name -> list/array) or a single record (dict of scalars). Anything else
    raises InvalidValueError naming these forms.
    """
    if isinstance(data, pd.DataFrame):
        return _string_columns(data)
    if isinstance(data, Mapping):
        if not data:
            raise InvalidValueError(f"Model input is an empty dict; pass {_ACCEPTED}.")
        vectors = [_is_vector(value) for value in data.values()]
        if all(vectors):
            try:
                frame = pd.DataFrame({key: list(value) for key, value in data.items()})
            except ValueError as exc:
                raise InvalidValueError(f"The columns of the input dict have different lengths: {exc}") from exc
        elif not any(vectors):
            frame = pd.DataFrame([dict(data)])
        else:
            raise InvalidValueError(
                "Model input dict mixes lists and single values; pass either a dict of columns "
                "(every value a list) or a single record (every value a scalar)."
            )
        return _string_columns(frame)
    if isinstance(data, (list, tuple)):
        if not data:
            raise InvalidValueError(f"Model input is an empty list; pass {_ACCEPTED}.")
        if not all(isinstance(record, Mapping) for record in data):
            raise InvalidValueError(f"Model input is a list whose items are not all dicts; pass {_ACCEPTED}.")
        return _string_columns(pd.DataFrame([dict(record) for record in data]))
    raise InvalidValueError(f"Cannot use {type(data).__name__} as model input; pass {_ACCEPTED}.")


# -- inference -------------------------------------------------------------------


def example_frame(example: Any) -> pd.DataFrame:
    """An example (any input form, a numpy array, a Series or a list of scalars) as a DataFrame.

    Arrays and unnamed Series get positional column names "0".."n-1", the
    names :func:`infer_signature` records for them.
    """
    if isinstance(example, np.ndarray):
        if example.ndim == 1:
            return pd.DataFrame({"0": example})
        if example.ndim == 2:
            return pd.DataFrame(example, columns=[str(i) for i in range(example.shape[1])])
        raise InvalidValueError(f"An example array must be 1-D or 2-D, got {example.ndim} dimensions.")
    if isinstance(example, pd.Series):
        return pd.DataFrame({str(example.name) if example.name is not None else "0": example})
    if isinstance(example, (list, tuple)) and example and not any(isinstance(item, Mapping) for item in example):
        return example_frame(np.asarray(example))
    return coerce_input(example)


def _infer_columns(frame: pd.DataFrame, *, ranges: bool, categories: bool) -> tuple[ColumnSpec, ...]:
    duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if duplicated:
        raise InvalidValueError(f"The example has duplicate columns: {', '.join(map(repr, duplicated))}.")
    return tuple(_infer_column(name, frame[name], ranges=ranges, categories=categories) for name in frame.columns)


def _infer_column(name: str, series: pd.Series, *, ranges: bool, categories: bool) -> ColumnSpec:
    dtype = _infer_dtype(name, series)
    low = high = None
    if ranges and dtype in _NUMERIC:
        values = pd.to_numeric(series.dropna())
        values = values[np.isfinite(values.to_numpy(dtype="float64"))]
        if len(values):
            cast = int if dtype == "integer" else float
            low, high = cast(values.min()), cast(values.max())
    seen = None
    if categories and dtype in ("string", "category"):
        if isinstance(series.dtype, pd.CategoricalDtype):
            seen = tuple(series.cat.categories)
        else:
            seen = tuple(sorted(series.dropna().unique(), key=str))
    return ColumnSpec(name, dtype, nullable=bool(series.isna().any()), min=low, max=high, categories=seen)


def _infer_dtype(name: str, series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if is_bool_dtype(dtype):
        return "boolean"
    if is_integer_dtype(dtype):
        return "integer"
    if is_float_dtype(dtype):
        return "float"
    if is_datetime64_any_dtype(dtype):
        return "datetime"
    kind = infer_dtype(series, skipna=True)
    if kind in _INFERRED:
        return _INFERRED[kind]
    if kind == "empty":
        raise InvalidValueError(
            f"Cannot infer the type of column {name!r}: the example holds only missing values in it. "
            "Give a fuller example or pass signature=Signature(...)."
        )
    kinds = sorted({type(value).__name__ for value in series.dropna()})
    if len(kinds) > 1:
        raise InvalidValueError(
            f"Cannot infer the type of column {name!r}: it mixes {', '.join(kinds)} values. "
            "Make the column one type or pass signature=Signature(...)."
        )
    raise InvalidValueError(
        f"Column {name!r} holds {kinds[0] if kinds else kind} values, which a signature cannot describe "
        f"(supported: {', '.join(DTYPES)}). Convert the column or pass signature=Signature(...)."
    )


# -- enforcement -------------------------------------------------------------------


def _check_column(series: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, str | None]:
    """The column cast to ``spec``'s type, or a description of everything wrong with it."""
    messages = []
    nulls = int(series.isna().sum())
    if nulls and not spec.nullable:
        messages.append(f"{nulls} null value(s), but the column is not nullable")
    if isinstance(series.dtype, pd.CategoricalDtype) and spec.dtype != "category":
        series = series.astype(object)
    cast, problem = _CASTS[spec.dtype](series)
    if problem is not None:
        messages.append(problem)
    else:
        messages.extend(_value_problems(cast, spec))
    return cast, ("; ".join(messages) if messages else None)


def _kind(series: pd.Series) -> str:
    if is_bool_dtype(series.dtype):
        return "boolean"
    return str(infer_dtype(series, skipna=True))


def _first(series: pd.Series, bad: Callable[[Any], bool]) -> Any:
    return next((value for value in series.dropna() if bad(value)), None)


def _show(value: Any) -> str:
    return f"{_python_scalar(value)!r} ({type(value).__name__})"


def _not_number(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))


def _not_a_number_message(expected: str, value: Any) -> str:
    message = f"expected {expected}, got {_show(value)}"
    if isinstance(value, str):
        message += "; strings are not converted to numbers, send numbers"
    return message


def _as_float(series: pd.Series) -> tuple[pd.Series, str | None]:
    if _kind(series) in ("integer", "floating", "mixed-integer-float", "empty"):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(values, index=series.index, name=series.name), None
    return series, _not_a_number_message("float values", _first(series, _not_number))


def _as_integer(series: pd.Series) -> tuple[pd.Series, str | None]:
    kind = _kind(series)
    if kind not in ("integer", "floating", "mixed-integer-float", "empty"):
        return series, _not_a_number_message("integer values", _first(series, _not_number))
    values = series.to_numpy(dtype="float64", na_value=np.nan) if kind != "integer" else None
    if values is not None:
        present = values[~np.isnan(values)]
        fractional = present[(present != np.floor(present)) | ~np.isfinite(present)]
        if len(fractional):
            return (
                series,
                f"expected integer values, got {_python_scalar(fractional[0])!r}, which has a fractional part",
            )
        too_big = present[(present >= _INT64_LIMIT) | (present < -_INT64_LIMIT)]
        if len(too_big):
            return series, _outside_int64(_python_scalar(too_big[0]))
    if series.isna().any():
        # Missing values cannot live in an int64 array; float64 with NaN is what models accept.
        floats = values if values is not None else series.to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(floats, index=series.index, name=series.name), None
    try:
        return pd.Series(series.to_numpy(dtype="int64"), index=series.index, name=series.name), None
    except OverflowError:  # Python integers past 64 bits
        return series, _outside_int64(_first(series, lambda v: not -_INT64_LIMIT <= v < _INT64_LIMIT))


#: whole numbers from here on (either sign) do not fit an int64 column; float64 keeps 2**63 exact
_INT64_LIMIT = 2.0**63


def _outside_int64(value: object) -> str:
    return f"expected integer values, got {value!r}, which is outside the 64-bit integer range"


def _as_boolean(series: pd.Series) -> tuple[pd.Series, str | None]:
    if _kind(series) not in ("boolean", "empty"):
        return series, f"expected booleans, got {_show(_first(series, lambda v: not isinstance(v, (bool, np.bool_))))}"
    return series.astype("boolean" if series.isna().any() else bool), None


def _as_string(series: pd.Series) -> tuple[pd.Series, str | None]:
    if _kind(series) not in ("string", "empty"):
        return series, f"expected strings, got {_show(_first(series, lambda v: not isinstance(v, str)))}"
    return series, None


def _as_category(series: pd.Series) -> tuple[pd.Series, str | None]:
    return series, None


def _as_datetime(series: pd.Series) -> tuple[pd.Series, str | None]:
    if is_datetime64_any_dtype(series.dtype):
        return series, None
    if _kind(series) not in ("datetime", "date", "string", "empty"):
        value = _first(series, lambda v: not isinstance(v, str))
        return series, f"expected datetimes (ISO-8601 strings or datetime objects), got {_show(value)}"
    try:
        return pd.to_datetime(series, format="ISO8601"), None
    except (ValueError, TypeError) as exc:
        return series, f"cannot read the values as datetimes (use ISO-8601 strings): {exc}"


_CASTS: dict[str, Callable[[pd.Series], tuple[pd.Series, str | None]]] = {
    "integer": _as_integer,
    "float": _as_float,
    "boolean": _as_boolean,
    "string": _as_string,
    "category": _as_category,
    "datetime": _as_datetime,
}


def _value_problems(series: pd.Series, spec: ColumnSpec) -> list[str]:
    """Range and category violations; only for what the signature recorded."""
    problems = []
    values = series.dropna()
    if spec.min is not None or spec.max is not None:
        outside = pd.Series(False, index=values.index)
        if spec.min is not None:
            outside |= values < spec.min
        if spec.max is not None:
            outside |= values > spec.max
        if outside.any():
            low = "-inf" if spec.min is None else spec.min
            high = "inf" if spec.max is None else spec.max
            example = _python_scalar(values[outside].iloc[0])
            problems.append(f"{int(outside.sum())} value(s) outside [{low}, {high}], e.g. {example!r}")
    if spec.categories is not None:
        allowed = set(spec.categories)
        unseen = [_python_scalar(v) for v in pd.unique(values.to_numpy(dtype=object)) if v not in allowed]
        if unseen:
            shown = ", ".join(repr(v) for v in unseen[:5])
            more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
            problems.append(f"unseen categories {shown}{more}")
    return problems


def _schema_message(problems: Mapping[str, str]) -> str:
    lines = "\n".join(f"  - {name!r}: {problem}" for name, problem in problems.items())
    return f"Input does not match the model signature ({len(problems)} column(s) with problems):\n{lines}"


# -- small helpers -------------------------------------------------------------------


def _spec_tuple(specs: Sequence[ColumnSpec], field: str) -> tuple[ColumnSpec, ...]:
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence):
        raise InvalidValueError(f"Signature {field} must be a sequence of ColumnSpec.")
    items = tuple(specs)
    for item in items:
        if not isinstance(item, ColumnSpec):
            raise InvalidValueError(f"Signature {field} must hold ColumnSpec objects, got {type(item).__name__}.")
    names = [item.name for item in items]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise InvalidValueError(f"Signature {field} name a column twice: {', '.join(map(repr, duplicated))}.")
    return items


def _string_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column label a string (arrays give 0, 1, ...; signatures say "0", "1")."""
    if all(isinstance(label, str) for label in frame.columns):
        return frame
    names = [str(label) for label in frame.columns]
    if len(set(names)) != len(names) and frame.columns.is_unique:
        raise InvalidValueError(f"Column labels collide once written as strings: {list(frame.columns)!r}.")
    return frame.set_axis(names, axis=1)


def _is_vector(value: Any) -> bool:
    return isinstance(value, _VECTOR_TYPES) and not (isinstance(value, np.ndarray) and value.ndim == 0)


def _python_scalar(value: Any) -> Any:
    """numpy scalars as plain Python values, so they print and serialise cleanly."""
    return value.item() if isinstance(value, np.generic) else value
