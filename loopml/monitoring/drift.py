"""Data drift: does the current data still look like the reference data, column by column?

``drift(reference, current)`` runs one two-sample test per column and returns a
:class:`DriftReport`. Unless a test is forced, it is chosen by the column's kind
and the reference size, as Evidently and most monitoring tools do:

* **numeric** column (integers or floats with more than 5 distinct values):
  Kolmogorov-Smirnov (p-value < 0.05) when the reference has at most 1,000
  values; Wasserstein distance divided by the reference's standard deviation
  (>= 0.1) above that, because with many rows KS flags differences too small
  to matter, while a distance in units of standard deviation keeps a fixed
  meaning at any size;
* **categorical** column (strings, booleans, ``category``, and numeric columns
  with at most 5 distinct values): chi-square test of homogeneity (p-value <
  0.05) for at most 1,000 reference values; Jensen-Shannon distance (>= 0.1)
  above that.

PSI (>= 0.1) fits every column but is never chosen on its own. ``tests`` forces
a test, and optionally its threshold, per column. The dataset drifts when the
share of drifted columns reaches ``drift_share`` (0.5). A ``prediction`` column
(the model's outputs) is tested the same way and reported apart, outside that
share; :func:`prediction_drift` does the same for two arrays of predictions.

Each column is cleaned and sorted or counted once (:mod:`loopml.monitoring.samples`);
the tests are vectorised numpy and scipy (:mod:`loopml.monitoring.stattests`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from loopml.errors import ColumnNotFoundError, InvalidValueError, did_you_mean
from loopml.monitoring import stattests
from loopml.monitoring.frames import as_frame, require_columns
from loopml.monitoring.samples import ColumnSample, Distribution, column_kind, counts, distribution, prepare
from loopml.monitoring.stattests import NUMERIC, StatTest, get_test

if TYPE_CHECKING:
    from loopml.monitoring.quality import QualityReport

SMALL_SAMPLE = 1000  # at most this many reference values: the p-value tests; above: the distances
FEW_VALUES = 5  # a numeric column with at most this many distinct values gets the categorical tests
DEFAULT_DRIFT_SHARE = 0.5
FRAME_COLUMNS = (
    "column",
    "kind",
    "test",
    "statistic",
    "p_value",
    "threshold",
    "drifted",
    "n_reference",
    "n_current",
)


@dataclass(frozen=True, slots=True)
class DriftTest:
    """A test forced on a column: its name (``ks``, ``wasserstein``, ``chisquare``, ``jensenshannon``, ``psi``)
    and optionally its threshold (a p-value level or a distance; the test's default when None).

    Example:
        >>> DriftTest("psi", threshold=0.2)
        DriftTest(name='psi', threshold=0.2)
    """

    name: str
    threshold: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", get_test(self.name).name)
        if self.threshold is not None:
            bad = isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float))
            if bad or not math.isfinite(self.threshold) or self.threshold <= 0:
                raise InvalidValueError(
                    f"The threshold of the {self.name} test must be a positive number, got {self.threshold!r}."
                )
            if get_test(self.name).p_value and self.threshold >= 1:
                raise InvalidValueError(
                    f"The {self.name} test compares a p-value with its threshold, which must be below 1, "
                    f"got {self.threshold!r}."
                )
            object.__setattr__(self, "threshold", float(self.threshold))


TestSpec: TypeAlias = str | tuple[str, float] | DriftTest


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """The outcome of one column's test.

    ``statistic`` is the test's statistic (the KS D, a chi-square, or a distance) and ``p_value``
    its p-value, NaN for distances. Both are NaN, and ``drifted`` is False, when either side had no
    usable value. ``distribution`` holds the counts the report plots.
    """

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    distribution: Distribution | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The row of :meth:`DriftReport.to_frame` as a JSON-friendly dict (NaN becomes None)."""
        row = {name: getattr(self, name) for name in FRAME_COLUMNS}
        for key in ("statistic", "p_value"):
            if math.isnan(row[key]):
                row[key] = None
        return row


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-column drift results, and the dataset verdict drawn from them.

    Example:
        >>> report = drift(reference, current)                          # doctest: +SKIP
        >>> report.drifted_columns, report.dataset_drift                # doctest: +SKIP
        (['age'], False)
    """

    columns: tuple[ColumnDrift, ...]
    prediction: ColumnDrift | None = None
    drift_share: float = DEFAULT_DRIFT_SHARE

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted feature columns, in column order (the prediction is not among them)."""
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        """Drifted feature columns over tested feature columns (0.0 when none was tested)."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when the share of drifted columns reaches ``drift_share``."""
        return bool(self.columns) and self.share_drifted >= self.drift_share

    @property
    def prediction_drift(self) -> bool:
        """True when a prediction column was tested and drifted."""
        return self.prediction is not None and self.prediction.drifted

    def __getitem__(self, column: str) -> ColumnDrift:
        results: tuple[ColumnDrift, ...] = (*self.columns, *(() if self.prediction is None else (self.prediction,)))
        for result in results:
            if result.column == column:
                return result
        names = [c.column for c in self.columns]
        raise ColumnNotFoundError(f"No drift result for column {column!r}." + did_you_mean(str(column), names))

    def to_frame(self) -> pd.DataFrame:
        """One row per tested column (the prediction column last): column, kind, test, statistic,
        p_value (NaN for distances), threshold, drifted, n_reference, n_current."""
        rows = [c.to_dict() for c in self.results]
        frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
        return frame.astype({"statistic": "float64", "p_value": "float64", "threshold": "float64", "drifted": bool})

    @property
    def results(self) -> tuple[ColumnDrift, ...]:
        """Every column result, the prediction column last when there is one."""
        return self.columns if self.prediction is None else (*self.columns, self.prediction)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-friendly data: the verdict and one dict per column."""
        return {
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "drifted_columns": self.drifted_columns,
            "columns": [c.to_dict() for c in self.columns],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
        }

    def to_html(self, path: str | Path, *, quality: QualityReport | None = None, title: str = "Drift report") -> Path:
        """Write a self-contained HTML report (inline SVG plots, no scripts); return its path."""
        from loopml.monitoring.report import render_report

        return render_report(path, drift=self, quality=quality, title=title)


def drift(
    reference: pd.DataFrame | Mapping[str, Any],
    current: pd.DataFrame | Mapping[str, Any],
    columns: Sequence[str] | None = None,
    tests: Mapping[str, TestSpec] | TestSpec | None = None,
    *,
    prediction: str | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
) -> DriftReport:
    """Test every column (or ``columns``) of ``current`` against ``reference`` for drift.

    Args:
        reference: the data the model was trained or validated on (a DataFrame or a dict of columns).
        current: the data to check, with the same columns.
        columns: the columns to test; default every reference column except datetimes and ``prediction``.
        tests: a test for every column, or a mapping column -> test; a test is a name, a
            ``(name, threshold)`` pair or a :class:`DriftTest`. Unlisted columns get the default rule.
        prediction: the column holding the model's outputs, tested and reported apart.
        drift_share: the share of drifted columns from which the dataset counts as drifted.

    Raises:
        ColumnNotFoundError: a named column is missing from either frame.
        InvalidValueError: an empty frame, an unknown test, or a test that does not fit the column's kind.
    """
    reference = as_frame(reference, "reference")
    current = as_frame(current, "current")
    if isinstance(drift_share, bool) or not isinstance(drift_share, (int, float)) or not 0 < drift_share <= 1:
        raise InvalidValueError(f"drift_share must be a number in (0, 1], got {drift_share!r}.")
    if prediction is not None:
        require_columns(reference, [prediction], "reference")
        require_columns(current, [prediction], "current")
    names = _columns(reference, current, columns, prediction)
    forced = _forced_tests(tests, [*names, *([] if prediction is None else [prediction])])
    plans = [_plan(name, reference[name], forced.get(name)) for name in names]
    predicted_plan = None if prediction is None else _plan(prediction, reference[prediction], forced.get(prediction))
    results = tuple(_column_drift(name, reference[name], current[name], kind, test) for name, kind, test in plans)
    predicted = None
    if predicted_plan is not None:
        name, kind, test = predicted_plan
        predicted = _column_drift(name, reference[name], current[name], kind, test)
    return DriftReport(results, predicted, float(drift_share))


def prediction_drift(
    reference: Any, current: Any, test: str | DriftTest | None = None, threshold: float | None = None
) -> ColumnDrift:
    """Drift of a model's outputs: ``reference`` and ``current`` are arrays, lists or Series of predictions.

    The test is chosen as for a column (numeric scores: KS or Wasserstein; labels: chi-square or
    Jensen-Shannon) unless ``test`` (and ``threshold``) force one.
    """
    name = getattr(reference, "name", None) or "prediction"
    ref, cur = _as_series(reference, name, "reference"), _as_series(current, name, "current")
    if test is None and threshold is not None:
        raise InvalidValueError("A threshold needs a test: pass test=... as well.")
    spec = None if test is None else _as_test(test, "the predictions")
    if spec is not None and threshold is not None:
        spec = DriftTest(spec.name, threshold)
    name, kind, chosen = _plan(str(name), ref, spec)
    return _column_drift(name, ref, cur, kind, chosen)


def default_test(sample: ColumnSample) -> StatTest:
    """The test the default rule picks for a cleaned column (see the module docstring)."""
    small = sample.n_reference <= SMALL_SAMPLE
    if sample.kind == NUMERIC and sample.n_distinct > FEW_VALUES:
        return stattests.TESTS["ks" if small else "wasserstein"]
    return stattests.TESTS["chisquare" if small else "jensenshannon"]


# -- internals ---------------------------------------------------------------------------------------------


def _column_drift(
    name: str, reference: pd.Series, current: pd.Series, kind: str, forced: DriftTest | None
) -> ColumnDrift:
    sample = prepare(name, reference, current, kind)
    test = get_test(forced.name) if forced is not None else default_test(sample)
    threshold = forced.threshold if forced is not None and forced.threshold is not None else test.threshold
    if sample.n_reference == 0 or sample.n_current == 0:
        statistic, p_value = math.nan, math.nan
    else:
        statistic, p_value = _score(test, sample)
    return ColumnDrift(
        column=str(name),
        kind=kind,
        test=test.name,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=test.drifted(statistic, p_value, threshold),
        n_reference=sample.n_reference,
        n_current=sample.n_current,
        distribution=distribution(sample),
    )


def _score(test: StatTest, sample: ColumnSample) -> tuple[float, float]:
    if test.name == "ks":
        return stattests.ks(sample.reference, sample.current)
    if test.name == "wasserstein":
        return stattests.wasserstein_normed(sample.reference, sample.current)
    ref_counts, cur_counts = counts(sample, test.name)
    histogram_tests = {"chisquare": stattests.chisquare, "jensenshannon": stattests.jensenshannon, "psi": stattests.psi}
    return histogram_tests[test.name](ref_counts, cur_counts)


def _plan(name: str, reference: pd.Series, forced: DriftTest | None) -> tuple[str, str, DriftTest | None]:
    """The column's kind, checked against the forced test before any data is touched."""
    kind = column_kind(reference)
    if kind is None:
        raise InvalidValueError(
            f"Column {name!r} holds datetimes, which differ between two windows by construction; "
            "leave it out of columns=[...]."
        )
    if forced is not None and kind not in get_test(forced.name).kinds:
        fitting = [t.name for t in stattests.TESTS.values() if kind in t.kinds]
        raise InvalidValueError(
            f"The {forced.name} test applies to {' and '.join(sorted(get_test(forced.name).kinds))} columns only, "
            f"but {name!r} is {kind}; use one of {', '.join(fitting)}."
        )
    return name, kind, forced


def _as_series(values: Any, name: Any, which: str) -> pd.Series:
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise InvalidValueError(f"The {which} predictions must be one column, got {values.shape[1]}.")
        values = values.iloc[:, 0]
    if not isinstance(values, pd.Series):
        array = np.asarray(values)
        if array.ndim != 1:
            raise InvalidValueError(f"The {which} predictions must be one-dimensional, got shape {array.shape}.")
        values = pd.Series(array, name=name)
    if len(values) == 0:
        raise InvalidValueError(f"The {which} predictions are empty.")
    series: pd.Series = values
    return series.reset_index(drop=True)


def _columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None, prediction: str | None
) -> list[str]:
    if columns is None:
        names = [c for c in reference.columns if c != prediction and column_kind(reference[c]) is not None]
        missing = [str(c) for c in names if c not in current.columns]
        if missing:
            raise ColumnNotFoundError(
                f"The current data lacks {len(missing)} reference column(s): {', '.join(missing)}. "
                "Pass columns=[...] to test only some."
            )
        return names
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise InvalidValueError(f"columns must be a list of column names, got {columns!r}.")
    if not columns:
        raise InvalidValueError("columns is empty: name at least one column to test.")
    require_columns(reference, columns, "reference")
    require_columns(current, columns, "current")
    return [name for name in dict.fromkeys(columns) if name != prediction]


def _forced_tests(tests: Mapping[str, TestSpec] | TestSpec | None, names: list[str]) -> dict[str, DriftTest]:
    if tests is None:
        return {}
    if not isinstance(tests, Mapping):
        test = _as_test(tests, "every column")
        return dict.fromkeys(names, test)
    forced: dict[str, DriftTest] = {}
    for column, spec in tests.items():
        if column not in names:
            raise ColumnNotFoundError(
                f"tests names column {column!r}, which is not being tested."
                + did_you_mean(str(column), map(str, names))
            )
        forced[column] = _as_test(spec, repr(column))
    return forced


def _as_test(spec: Any, where: str) -> DriftTest:
    if isinstance(spec, DriftTest):
        return spec
    if isinstance(spec, str):
        return DriftTest(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return DriftTest(spec[0], spec[1])
    raise InvalidValueError(
        f"The test for {where} must be a test name, a (name, threshold) pair or a DriftTest, got {spec!r}."
    )
