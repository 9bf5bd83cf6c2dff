"""One column of reference and current data, cleaned once into the arrays every drift test reads.

A column is *numeric* when the reference holds integers or floats, and
*categorical* when it holds strings, booleans or a pandas ``category``.
Datetime columns are not drift-tested: a time column differs between two
windows by construction. Missing values (``None``, ``NaN``, ``NaT``) and
infinities are dropped before testing (the data-quality report counts them);
in a numeric column, current values that are not numbers (a string in a float
column) are dropped the same way.

Numeric samples are kept as two sorted float64 arrays, so the KS and
Wasserstein tests and every histogram read them without sorting again (a
histogram is a ``searchsorted`` of the bin edges). Categorical samples are
counts per category, over the categories seen on either side, from one
``pandas.factorize`` of both columns together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from loopml.errors import InvalidValueError
from loopml.monitoring.stattests import CATEGORICAL, NUMERIC

# A numeric column with at most this many distinct values (both sides together) is histogrammed one
# bar per value; above it, values are binned.
DISCRETE_MAX = 20
PSI_BINS = 10  # reference deciles: the usual PSI binning
PLOT_BINS = 30
PLOT_CATEGORIES = 20
OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class Distribution:
    """Reference and current counts ready to plot: a histogram (``edges``) or bars (``labels``)."""

    edges: tuple[float, ...] | None
    labels: tuple[str, ...] | None
    reference: tuple[int, ...]
    current: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ColumnSample:
    """The cleaned values of one column on both sides.

    For a numeric column ``reference``/``current`` are the sorted values and ``values`` the distinct
    values of both sides together when there are at most ``DISCRETE_MAX`` of them (else None). For a
    categorical column they are counts aligned with ``values``, the categories.
    """

    kind: str
    reference: np.ndarray
    current: np.ndarray
    values: np.ndarray | None
    n_reference: int
    n_current: int

    @property
    def n_distinct(self) -> int:
        """Distinct values on both sides together; ``DISCRETE_MAX + 1`` stands for "more than that"."""
        return DISCRETE_MAX + 1 if self.values is None else len(self.values)


def column_kind(series: pd.Series) -> str | None:
    """``"numeric"``, ``"categorical"``, or None for a datetime column (which drift tests skip)."""
    if is_datetime64_any_dtype(series.dtype):
        return None
    if is_bool_dtype(series.dtype):
        return CATEGORICAL
    if is_numeric_dtype(series.dtype):
        return NUMERIC
    return CATEGORICAL


def prepare(name: str, reference: pd.Series, current: pd.Series, kind: str) -> ColumnSample:
    """Clean one column of both frames into a :class:`ColumnSample` of the given kind."""
    if kind == NUMERIC:
        ref, cur = _sorted_finite(reference), _sorted_finite(current)
        return ColumnSample(NUMERIC, ref, cur, _distinct_union(ref, cur), ref.size, cur.size)
    return _categorical(name, reference, current)


def counts(sample: ColumnSample, test: str) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts over the bins the histogram test ``test`` uses.

    Categories, and numeric columns with few distinct values, get one bin per value. Otherwise
    ``jensenshannon`` uses equal-width bins over both samples' range, as many as Sturges' rule gives
    for their combined size (the binning Evidently uses, so scores compare), and ``psi`` and
    ``chisquare`` use the reference deciles, so that every bin expects a tenth of the rows.
    """
    if sample.kind == CATEGORICAL:
        return sample.reference, sample.current
    ref, cur = sample.reference, sample.current
    if sample.values is not None:
        return _per_value(ref, sample.values), _per_value(cur, sample.values)
    if test == "jensenshannon":
        n_bins = math.ceil(math.log2(ref.size + cur.size) + 1)
        low, high = min(ref[0], cur[0]), max(ref[-1], cur[-1])
        inner = np.linspace(low, high, n_bins + 1)[1:-1]
        return _binned(ref, inner, "left"), _binned(cur, inner, "left")
    inner = np.unique(sorted_quantile(ref, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    return _binned(ref, inner, "right"), _binned(cur, inner, "right")


def distribution(sample: ColumnSample) -> Distribution:
    """What the report plots for this column: a 30-bin histogram, or the 20 most common categories.

    The histogram spans the 0.5th to 99.5th percentiles of both samples; values beyond fall into
    the end bins, so every row is counted and one outlier does not squash the picture.
    """
    if sample.n_reference == 0 or sample.n_current == 0:
        return Distribution(None, (), (), ())
    if sample.kind == NUMERIC and sample.values is None:
        ref, cur = sample.reference, sample.current
        low = min(sorted_quantile(ref, 0.005), sorted_quantile(cur, 0.005))
        high = max(sorted_quantile(ref, 0.995), sorted_quantile(cur, 0.995))
        if not high > low:
            low, high = min(ref[0], cur[0]), max(ref[-1], cur[-1])
        edges = np.linspace(low, high, PLOT_BINS + 1)
        return Distribution(
            tuple(edges.tolist()),
            None,
            tuple(_binned(ref, edges[1:-1], "left").tolist()),
            tuple(_binned(cur, edges[1:-1], "left").tolist()),
        )
    ref_counts, cur_counts = counts(sample, "chisquare")
    labels = [_label(value) for value in (sample.values if sample.values is not None else [])]
    order = np.argsort(-(ref_counts / max(ref_counts.sum(), 1) + cur_counts / max(cur_counts.sum(), 1)), kind="stable")
    if sample.kind == NUMERIC:
        order = np.arange(len(labels))  # keep numbers in their natural order
    top, rest = order[:PLOT_CATEGORIES], order[PLOT_CATEGORIES:]
    shown_labels = [labels[i] for i in top]
    ref_shown, cur_shown = ref_counts[top].tolist(), cur_counts[top].tolist()
    if rest.size:
        shown_labels.append(OTHER)
        ref_shown.append(int(ref_counts[rest].sum()))
        cur_shown.append(int(cur_counts[rest].sum()))
    return Distribution(None, tuple(shown_labels), tuple(ref_shown), tuple(cur_shown))


def sorted_quantile(sorted_values: np.ndarray, q: float | np.ndarray) -> Any:
    """``numpy.quantile(values, q)`` (linear interpolation) read off already sorted values, without a partition."""
    position = np.asarray(q, dtype=np.float64) * (sorted_values.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, sorted_values.size - 1)
    low, high = sorted_values[below], sorted_values[above]
    return low + (high - low) * (position - below)


def _sorted_finite(series: pd.Series) -> np.ndarray:
    """The finite values as a new sorted float64 array (sorted in place: ``to_numpy`` may return a view)."""
    if not is_numeric_dtype(series.dtype) or is_bool_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    values = values.copy() if finite.all() else values[finite]
    values.sort()
    return values


def _distinct(sorted_values: np.ndarray) -> np.ndarray:
    if sorted_values.size == 0:
        return sorted_values
    keep = np.empty(sorted_values.size, dtype=bool)
    keep[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=keep[1:])
    return sorted_values[keep]


def _distinct_union(ref: np.ndarray, cur: np.ndarray) -> np.ndarray | None:
    ref_values = _distinct(ref)
    if ref_values.size > DISCRETE_MAX:
        return None
    union = np.union1d(ref_values, _distinct(cur))
    return union if union.size <= DISCRETE_MAX else None


def _per_value(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_values, values, side="right") - np.searchsorted(sorted_values, values, side="left")


def _binned(sorted_values: np.ndarray, inner_edges: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
    """Counts between consecutive inner edges, the first and last bins open-ended.

    ``side="left"`` gives bins closed on the left, like ``numpy.histogram``; ``"right"`` closes them
    on the right, so a bin edge taken from a quantile keeps its tied values in the lower bin.
    """
    cuts = np.searchsorted(sorted_values, inner_edges, side=side)
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size])))


def _categorical(name: str, reference: pd.Series, current: pd.Series) -> ColumnSample:
    if reference.dtype != current.dtype:  # e.g. categories that differ: compare the values themselves
        reference, current = reference.astype(object), current.astype(object)
    both = pd.concat([reference, current], ignore_index=True)
    try:
        codes, categories = pd.factorize(both, use_na_sentinel=True)
    except TypeError as exc:  # lists or dicts in the column
        raise InvalidValueError(
            f"Column {name!r} holds unhashable values ({exc}); drift tests need numbers or categories. "
            "Leave it out with columns=[...]."
        ) from exc
    n_ref = len(reference)
    ref_codes, cur_codes = codes[:n_ref], codes[n_ref:]
    ref_codes, cur_codes = ref_codes[ref_codes >= 0], cur_codes[cur_codes >= 0]
    k = len(categories)
    return ColumnSample(
        CATEGORICAL,
        np.bincount(ref_codes, minlength=k),
        np.bincount(cur_codes, minlength=k),
        np.asarray(categories, dtype=object),
        int(ref_codes.size),
        int(cur_codes.size),
    )


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
