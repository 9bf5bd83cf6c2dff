"""Data quality: is the current data well-formed, measured against the reference (or a model signature)?

``quality(reference, current)`` counts, per column of the current data:

* **missing values** (``None``, ``NaN``, ``NaT``), beside the reference's share;
* **out-of-range values**: numbers below the reference minimum or above its
  maximum (the signature's ``min``/``max`` when it records them);
* **unseen categories**: values of a categorical column that the reference
  never holds (the signature's ``categories`` when it records them);
* **type violations**: entries of the wrong type, such as strings in a numeric
  column or numbers in a string column;
* **constant columns**: a single distinct value left.

Columns the reference (or signature) has and the current data lacks, and
columns the current data has in addition, are reported too.

Every count is reported; a count becomes a *problem* when it is more than
chance explains. Each check has a chance rate: the reference's missing share
for missing values; 2 / (n + 1) for out-of-range values, the probability that
one more draw from the reference's distribution falls outside the range of its
n values; the Good-Turing estimate (categories seen once / n) for unseen
categories; zero for type violations, for bounds and categories taken from a
signature, and for missing values in a column the signature says is not
nullable. A count is a problem when its share of the current rows exceeds the
chance rate plus ``tolerance`` (default 0) and a one-sided binomial test puts
it beyond chance (p < 0.01; any count at all when the chance rate is zero). A
constant column is a problem when the reference column was not constant.
Counting is vectorised pandas (``isna``, ``isin``, comparisons, ``value_counts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype, is_string_dtype
from scipy.stats import binom

from loopml.errors import InvalidValueError
from loopml.monitoring.frames import as_frame
from loopml.monitoring.stattests import CATEGORICAL, NUMERIC

if TYPE_CHECKING:
    from loopml.models.signature import ColumnSpec, Signature

DATETIME = "datetime"
EXAMPLES = 5  # unseen values shown per column
CHANCE_ALPHA = 0.01  # a count is a problem when chance would give one this large less often
FRAME_COLUMNS = (
    "column",
    "expected",
    "present",
    "n_current",
    "missing",
    "missing_share",
    "reference_missing_share",
    "out_of_range",
    "unseen",
    "type_violations",
    "constant",
)


@dataclass(frozen=True, slots=True)
class Expectation:
    """What one column should hold: its kind, bounds, known categories, whether it may be missing."""

    kind: str
    low: float | None = None
    high: float | None = None
    categories: tuple[Any, ...] | None = None
    strings: bool = False
    nullable: bool | None = None
    reference_missing_share: float = 0.0
    reference_constant: bool = False
    range_rate: float = 0.0
    unseen_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class ColumnQuality:
    """The counts of one column of the current data (``present`` is False when the column is missing)."""

    column: str
    expected: str
    present: bool
    n_current: int
    missing: int
    missing_share: float
    reference_missing_share: float
    out_of_range: int
    unseen: int
    type_violations: int
    constant: bool
    unseen_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QualityProblem:
    """One failed check: the column, the check's name, how many rows and what share of the current data."""

    column: str
    check: str
    count: int
    share: float
    message: str


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Per-column quality counts of the current data, and the problems found in them."""

    columns: tuple[ColumnQuality, ...]
    problems: tuple[QualityProblem, ...]
    unexpected_columns: tuple[str, ...]
    n_reference: int
    n_current: int

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.problems

    def to_frame(self) -> pd.DataFrame:
        """One row per expected column: column, expected, present, n_current, missing, missing_share,
        reference_missing_share, out_of_range, unseen, type_violations, constant."""
        rows = [{name: getattr(c, name) for name in FRAME_COLUMNS} for c in self.columns]
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def problems_frame(self) -> pd.DataFrame:
        """One row per problem: column, check, count, share, message."""
        rows = [(p.column, p.check, p.count, p.share, p.message) for p in self.problems]
        return pd.DataFrame(rows, columns=["column", "check", "count", "share", "message"])

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-friendly data."""
        return {
            "ok": self.ok,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "unexpected_columns": list(self.unexpected_columns),
            "columns": [
                {**{n: getattr(c, n) for n in FRAME_COLUMNS}, "unseen_values": list(c.unseen_values)}
                for c in self.columns
            ],
            "problems": [
                {"column": p.column, "check": p.check, "count": p.count, "share": p.share, "message": p.message}
                for p in self.problems
            ],
        }

    def to_html(self, path: str | Path, *, title: str = "Data quality report") -> Path:
        """Write a self-contained HTML report of these counts; return its path."""
        from loopml.monitoring.report import render_report

        return render_report(path, quality=self, title=title)


def quality(
    reference: pd.DataFrame | Mapping[str, Any],
    current: pd.DataFrame | Mapping[str, Any],
    signature: Signature | None = None,
    *,
    tolerance: float = 0.0,
) -> QualityReport:
    """Count missing values, out-of-range values, unseen categories, type violations and constant columns.

    Args:
        reference: the data the model was trained on; it sets ranges, categories and missing shares.
        current: the data to check.
        signature: a model signature (``loopml.models.signature.Signature``): when given, its inputs
            are the expected columns, and its dtypes, ``min``/``max``, ``categories`` and ``nullable``
            take precedence over what the reference shows.
        tolerance: the share of current rows, above a check's chance rate, that a count may reach
            before it is a problem (see the module docstring).

    Raises:
        InvalidValueError: a frame is not a table, the reference is empty, or tolerance is not in [0, 1).
    """
    reference = as_frame(reference, "reference")
    current = as_frame(current, "current", allow_empty=True)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise InvalidValueError(f"tolerance must be a number in [0, 1), got {tolerance!r}.")
    expected = _expectations(reference, signature)
    n = len(current)
    columns, problems = [], []
    for name, expectation in expected.items():
        if name not in current.columns:
            columns.append(
                ColumnQuality(
                    column=str(name),
                    expected=expectation.kind,
                    present=False,
                    n_current=n,
                    missing=n,
                    missing_share=1.0 if n else 0.0,
                    reference_missing_share=expectation.reference_missing_share,
                    out_of_range=0,
                    unseen=0,
                    type_violations=0,
                    constant=False,
                )
            )
            problems.append(QualityProblem(str(name), "missing_column", n, 1.0, f"column {name!r} is missing"))
            continue
        result = _check(str(name), current[name], expectation)
        columns.append(result)
        problems.extend(_problems(result, expectation, tolerance))
    unexpected = tuple(str(c) for c in current.columns if c not in expected)
    problems.extend(
        QualityProblem(c, "unexpected_column", n, 1.0 if n else 0.0, f"column {c!r} is not in the reference")
        for c in unexpected
    )
    return QualityReport(tuple(columns), tuple(problems), unexpected, len(reference), n)


# -- expectations ------------------------------------------------------------------------------------------


def _expectations(reference: pd.DataFrame, signature: Signature | None) -> dict[Any, Expectation]:
    if signature is None:
        return {name: _from_reference(reference[name]) for name in reference.columns}
    return {
        spec.name: _from_spec(spec, reference[spec.name] if spec.name in reference.columns else None)
        for spec in signature.inputs
    }


def _from_reference(series: pd.Series) -> Expectation:
    missing_share = float(series.isna().mean())
    # a reference with no value at all does not vary either: a single current value is no news against it
    constant = missing_share == 1 or _is_constant(series)
    if is_datetime64_any_dtype(series.dtype):
        return Expectation(DATETIME, reference_missing_share=missing_share, reference_constant=constant)
    if is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        values = values[np.isfinite(values)]
        low, high = (float(values.min()), float(values.max())) if values.size else (None, None)
        return Expectation(
            NUMERIC,
            low,
            high,
            reference_missing_share=missing_share,
            reference_constant=constant,
            range_rate=2 / (values.size + 1),
        )
    frequencies = series.value_counts(dropna=True)
    strings = is_string_dtype(series.dtype) and infer_dtype(series, skipna=True) == "string"
    return Expectation(
        CATEGORICAL,
        categories=tuple(frequencies.index),
        strings=strings,
        reference_missing_share=missing_share,
        reference_constant=constant,
        unseen_rate=float((frequencies == 1).sum() / frequencies.sum()) if len(frequencies) else 0.0,
    )


def _from_spec(spec: ColumnSpec, reference: pd.Series | None) -> Expectation:
    seen = _from_reference(reference) if reference is not None else None
    share = seen.reference_missing_share if seen else 0.0
    constant = seen.reference_constant if seen else False
    if spec.dtype in ("integer", "float"):
        numeric = seen if seen is not None and seen.kind == NUMERIC else None
        low = spec.min if spec.min is not None else (numeric.low if numeric else None)
        high = spec.max if spec.max is not None else (numeric.high if numeric else None)
        declared = spec.min is not None and spec.max is not None
        return Expectation(
            NUMERIC,
            low,
            high,
            nullable=spec.nullable,
            reference_missing_share=share,
            reference_constant=constant,
            range_rate=0.0 if declared or numeric is None else numeric.range_rate,
        )
    if spec.dtype == "datetime":
        return Expectation(DATETIME, nullable=spec.nullable, reference_missing_share=share, reference_constant=constant)
    categories, rate = spec.categories, 0.0
    if categories is None and seen is not None and seen.kind == CATEGORICAL:
        categories, rate = seen.categories, seen.unseen_rate
    if spec.dtype == "boolean":
        categories, rate = (True, False), 0.0
    return Expectation(
        CATEGORICAL,
        categories=categories,
        strings=spec.dtype == "string",
        nullable=spec.nullable,
        reference_missing_share=share,
        reference_constant=constant,
        unseen_rate=rate,
    )


# -- checks -------------------------------------------------------------------------------------------------


def _check(name: str, series: pd.Series, expected: Expectation) -> ColumnQuality:
    n = len(series)
    missing_mask = series.isna()
    missing = int(missing_mask.sum())
    present = ~missing_mask
    out_of_range = unseen = violations = 0
    examples: tuple[str, ...] = ()
    if expected.kind == NUMERIC:
        numbers, wrong = _numbers(series, present)
        violations = int(wrong.sum())
        if expected.low is not None:
            out_of_range += int((numbers < expected.low).sum())
        if expected.high is not None:
            out_of_range += int((numbers > expected.high).sum())
    elif expected.kind == CATEGORICAL:
        if expected.strings:
            violations = int((present & ~_strings(series)).sum())
        if expected.categories is not None:
            new = present & ~series.isin(list(expected.categories))
            unseen = int(new.sum())
            if unseen:
                # as text: a list or dict sent for a category cannot be hashed, but is still an example
                examples = tuple(pd.unique(series[new].astype(str))[:EXAMPLES])
    elif not is_datetime64_any_dtype(series.dtype):
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        violations = int((present & parsed.isna()).sum())
    return ColumnQuality(
        column=name,
        expected=expected.kind,
        present=True,
        n_current=n,
        missing=missing,
        missing_share=missing / n if n else 0.0,
        reference_missing_share=expected.reference_missing_share,
        out_of_range=out_of_range,
        unseen=unseen,
        type_violations=violations,
        constant=n > 1 and _is_constant(series),
        unseen_values=examples,
    )


def _problems(result: ColumnQuality, expected: Expectation, tolerance: float) -> Iterable[QualityProblem]:
    n, name = result.n_current, result.column
    if n == 0:
        return
    missing_rate = 0.0 if expected.nullable is False else expected.reference_missing_share
    checks = (
        ("missing_values", result.missing, missing_rate, "missing values"),
        (
            "out_of_range",
            result.out_of_range,
            expected.range_rate,
            f"values outside [{_bound(expected.low)}, {_bound(expected.high)}]",
        ),
        (
            "unseen_categories",
            result.unseen,
            expected.unseen_rate,
            "values never seen in the reference: " + ", ".join(result.unseen_values),
        ),
        ("type_violations", result.type_violations, 0.0, f"values that are not {_type_word(expected)}"),
    )
    for check, count, rate, what in checks:
        if _beyond_chance(count, n, rate, tolerance):
            if check == "missing_values" and expected.nullable is False:
                why = "the column is not nullable"
            else:
                why = f"{rate:.2%} expected by chance" if rate else "none expected"
            yield QualityProblem(name, check, count, count / n, f"{count:,} {what} ({count / n:.2%}; {why})")
    if result.constant and not expected.reference_constant:
        yield QualityProblem(
            name, "constant", n - result.missing, 1.0, "a single value left, where the reference varies"
        )


def _beyond_chance(count: int, n: int, rate: float, tolerance: float) -> bool:
    """More than ``rate`` and ``tolerance`` allow, and unlikely under ``rate`` (one-sided binomial, p < 0.01)."""
    if count == 0 or count / n <= rate + tolerance:
        return False
    return rate == 0 or float(binom.sf(count - 1, n, rate)) < CHANCE_ALPHA


def _numbers(series: pd.Series, present: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """The values as floats (NaN where missing or not a number), and where a present value is not a number.

    Strings count as violations even when they parse ("1.5"): a feed sending numbers as text is broken.
    """
    if is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), pd.Series(False, index=series.index)
    strings = _strings(series)
    numbers = pd.to_numeric(series.where(~strings), errors="coerce")
    wrong = present & (strings | numbers.isna())
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan), wrong


def _strings(series: pd.Series) -> pd.Series:
    """Where the entries are strings (vectorised: the ``.str`` accessor yields NaN for non-strings).

    ``isspace`` rather than ``len``: lists, tuples and dicts have a length too, and would pass for strings.
    """
    if is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        return series.notna()
    if not pd.api.types.is_object_dtype(series.dtype):
        return pd.Series(False, index=series.index)
    try:
        return series.str.isspace().notna()
    except AttributeError:  # not a single string in the column
        return pd.Series(False, index=series.index)


def _is_constant(series: pd.Series) -> bool:
    values = series.dropna()
    if values.empty:
        return False
    try:
        return bool((values == values.iloc[0]).all())
    except (TypeError, ValueError):  # values that do not compare (a list compares element by element)
        return values.astype(str).nunique() == 1


def _bound(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _type_word(expected: Expectation) -> str:
    return {NUMERIC: "numbers", DATETIME: "datetimes"}.get(expected.kind, "strings")
