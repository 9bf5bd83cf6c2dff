"""Data checks: ``validate_data(frame, [...])`` runs every check and reports every violation.

Each check is a small frozen value with one method, ``check(frame) ->
DataCheckResult``; it never raises for bad data (a missing column is a violation
like any other), so one report lists all that is wrong at once. ``validate_data``
raises :class:`~loopml.errors.ValidationFailedError` carrying that report
unless told not to, and records the report on the active run (the step's run
inside a pipeline).

Example:
    >>> from loopml.validation import checks as c
    >>> report = validate_data(frame, [                                 # doctest: +SKIP
    ...     c.schema({"age": "int", "country": "text"}),
    ...     c.in_range("age", 0, 120),
    ...     c.allowed_values("country", ["FR", "DE"]),
    ...     c.unique("id"),
    ...     c.missing_share("income", max_share=0.05),
    ...     c.row_count(min=1000),
    ...     c.freshness("updated_at", max_age="2d"),
    ... ])
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from loopml.errors import InvalidValueError, ValidationFailedError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

MAX_EXAMPLES = 5
_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")
#: dtype kinds a schema may name; anything else must equal ``str(dtype)`` exactly (e.g. "int32").
KINDS = ("any", "int", "float", "number", "bool", "text", "datetime", "timedelta", "category")


@dataclass(frozen=True, slots=True)
class DataCheckResult:
    """The outcome of one check: what was checked, whether it passed, and the figures behind it."""

    check: str
    column: str | None
    passed: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "column": self.column,
            "passed": self.passed,
            "message": self.message,
            "details": json_safe(dict(self.details)),
        }


@dataclass(frozen=True)
class ValidationReport:
    """Every check's result on one dataset; ``violations`` are the failed ones."""

    name: str
    n_rows: int
    results: tuple[DataCheckResult, ...]
    contract: str | None = None

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def violations(self) -> tuple[DataCheckResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    def __bool__(self) -> bool:
        return self.passed

    def summary(self) -> str:
        """One line per check: ``PASS``/``FAIL``, the column and the message."""
        what = f"{self.name!r}" + (f" against contract {self.contract}" if self.contract else "")
        verdict = "passed" if self.passed else f"failed {len(self.violations)} of {len(self.results)} checks"
        lines = [f"Data {what} ({self.n_rows} rows) {verdict}:"]
        for result in self.results:
            where = f"[{result.column}] " if result.column else ""
            lines.append(f"  {'PASS' if result.passed else 'FAIL'} {result.check}: {where}{result.message}")
        return "\n".join(lines)

    def to_evidence(self) -> dict[str, Any]:
        """A JSON-safe dict: verdict, counts and every result."""
        return {
            "kind": "data",
            "name": self.name,
            "contract": self.contract,
            "passed": self.passed,
            "n_rows": self.n_rows,
            "n_checks": len(self.results),
            "n_violations": len(self.violations),
            "results": [result.to_dict() for result in self.results],
        }

    def raise_if_failed(self) -> ValidationReport:
        """ValidationFailedError listing every violation when any check failed; else the report."""
        if not self.passed:
            lines = [
                f"  - {v.check}" + (f" [{v.column}]" if v.column else "") + f": {v.message}" for v in self.violations
            ]
            what = f"{self.name!r}" + (f" (contract {self.contract})" if self.contract else "")
            raise ValidationFailedError(
                f"Data {what} violates {len(self.violations)} of {len(self.results)} checks:\n" + "\n".join(lines),
                report=self,
            )
        return self


class Check(ABC):
    """One expectation on a DataFrame."""

    name: ClassVar[str]

    @abstractmethod
    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        """Evaluate on ``frame``; a violation is a failed result, never an exception."""

    def _result(self, column: str | None, passed: bool, message: str, **details: Any) -> DataCheckResult:
        return DataCheckResult(self.name, column, passed, message, details)

    def _missing(self, frame: pd.DataFrame, columns: Iterable[str]) -> DataCheckResult | None:
        """A failed result when a column is absent, or named more than once (``frame[name]`` is then a frame)."""
        wanted = list(columns)
        absent = [c for c in wanted if c not in frame.columns]
        if absent:
            return self._result(
                ", ".join(absent), False, f"column{'s' if len(absent) > 1 else ''} missing", missing=absent
            )
        names = _repeated(frame)
        repeated = [c for c in wanted if c in names]
        if repeated:
            return self._result(", ".join(repeated), False, "more than one column has this name", repeated=repeated)
        return None


# -- the checks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schema(Check):
    """Columns and their dtype kinds (see KINDS); with ``allow_extra=False`` no other column may exist."""

    columns: Mapping[str, str]
    allow_extra: bool = True
    name: ClassVar[str] = "schema"

    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        missing = [c for c in self.columns if c not in frame.columns]
        names = _repeated(frame)
        repeated = [c for c in self.columns if c in names]
        wrong = {
            c: {"expected": kind, "actual": str(frame[c].dtype)}
            for c, kind in self.columns.items()
            if c in frame.columns and c not in repeated and not dtype_matches(frame[c], kind)
        }
        extra = [str(c) for c in frame.columns if c not in self.columns] if not self.allow_extra else []
        problems = []
        if missing:
            problems.append("missing " + ", ".join(missing))
        if repeated:
            problems.append("more than one column named " + ", ".join(repeated))
        if wrong:
            problems.append(
                "wrong dtype " + ", ".join(f"{c} ({w['actual']}, expected {w['expected']})" for c, w in wrong.items())
            )
        if extra:
            problems.append("unexpected " + ", ".join(extra))
        message = "; ".join(problems) if problems else f"{len(self.columns)} columns as expected"
        return self._result(
            None, not problems, message, missing=missing, repeated=repeated, wrong_dtype=wrong, unexpected=extra
        )


@dataclass(frozen=True)
class InRange(Check):
    """Every non-missing value within ``[min, max]`` (bounds optional; exclusive with ``inclusive=False``)."""

    column: str
    min: float | None = None
    max: float | None = None
    inclusive: bool = True
    name: ClassVar[str] = "in_range"

    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        if (missing := self._missing(frame, [self.column])) is not None:
            return missing
        import pandas as pd

        values = frame[self.column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
            return self._result(self.column, False, f"not numeric (dtype {values.dtype})", dtype=str(values.dtype))
        present = values.notna()
        bad = pd.Series(False, index=values.index)
        bounds = _bounds(self.min, self.max, self.inclusive)
        try:
            if self.min is not None:
                bad |= present & ((values < self.min) if self.inclusive else (values <= self.min))
            if self.max is not None:
                bad |= present & ((values > self.max) if self.inclusive else (values >= self.max))
        except TypeError as exc:  # e.g. numeric bounds on timestamps, a naive bound on tz-aware ones
            return self._result(
                self.column,
                False,
                f"values of dtype {values.dtype} cannot be compared with the bounds {bounds} ({exc})",
                dtype=str(values.dtype),
            )
        n_bad = int(bad.sum())
        observed = {"min": values.min(), "max": values.max()}
        if not n_bad:
            return self._result(self.column, True, f"all values in {bounds}", n_failed=0, observed=observed)
        return self._result(
            self.column,
            False,
            f"{n_bad} value{'s' if n_bad > 1 else ''} outside {bounds} (observed {_fmt(observed['min'])} to "
            f"{_fmt(observed['max'])})",
            n_failed=n_bad,
            share_failed=n_bad / max(len(values), 1),
            observed=observed,
            examples=_examples(values[bad]),
        )


@dataclass(frozen=True)
class AllowedValues(Check):
    """Every non-missing value is one of ``values`` (categories)."""

    column: str
    values: tuple[Any, ...]
    name: ClassVar[str] = "allowed_values"

    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        if (missing := self._missing(frame, [self.column])) is not None:
            return missing
        values = frame[self.column]
        bad = values.notna() & ~values.isin(list(self.values))
        n_bad = int(bad.sum())
        if not n_bad:
            return self._result(self.column, True, f"all values among {len(self.values)} allowed", n_failed=0)
        counts = values[bad].value_counts()
        unexpected = counts[counts > 0].head(MAX_EXAMPLES)  # a categorical lists its unused categories as 0
        listed = ", ".join(f"{_fmt(v)} ({n})" for v, n in unexpected.items())
        return self._result(
            self.column,
            False,
            f"{n_bad} value{'s' if n_bad > 1 else ''} not allowed: {listed}",
            n_failed=n_bad,
            share_failed=n_bad / max(len(values), 1),
            unexpected={str(v): int(n) for v, n in unexpected.items()},
        )


@dataclass(frozen=True)
class Unique(Check):
    """No two rows share the same values in ``columns`` (missing values count as a value)."""

    columns: tuple[str, ...]
    name: ClassVar[str] = "unique"

    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        if (missing := self._missing(frame, self.columns)) is not None:
            return missing
        duplicated = frame.duplicated(subset=list(self.columns), keep=False)
        n_dup = int(duplicated.sum())
        label = ", ".join(self.columns)
        if not n_dup:
            return self._result(label, True, "all unique", n_failed=0)
        dup_frame = frame.loc[duplicated, list(self.columns)]
        examples = [
            json_safe(list(row)) for row in dup_frame.drop_duplicates().head(MAX_EXAMPLES).itertuples(index=False)
        ]
        n_keys = len(dup_frame.drop_duplicates())
        return self._result(
            label,
            False,
            f"{n_dup} rows share {n_keys} duplicated value{'s' if n_keys > 1 else ''}",
            n_failed=n_dup,
            n_duplicated_keys=n_keys,
            examples=examples,
        )


@dataclass(frozen=True)
class MissingShare(Check):
    """At most ``max_share`` (0 to 1) of the column's values are missing (None, NaN, NaT)."""

    column: str
    max_share: float = 0.0
    name: ClassVar[str] = "missing_share"

    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        if (missing := self._missing(frame, [self.column])) is not None:
            return missing
        n_missing = int(frame[self.column].isna().sum())
        share = n_missing / len(frame) if len(frame) else 0.0
        passed = share <= self.max_share
        message = f"{n_missing} missing ({share:.2%}, limit {self.max_share:.2%})"
        return self._result(self.column, passed, message, n_missing=n_missing, share=share, max_share=self.max_share)


@dataclass(frozen=True)
class RowCount(Check):
    """The number of rows is within ``[min, max]``."""

    min: int | None = None
    max: int | None = None
    name: ClassVar[str] = "row_count"

    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        n = len(frame)
        passed = (self.min is None or n >= self.min) and (self.max is None or n <= self.max)
        bounds = _bounds(self.min, self.max, True)
        message = f"{n} rows, {'within' if passed else 'outside'} {bounds}"
        return self._result(None, passed, message, n_rows=n, min=self.min, max=self.max)


@dataclass(frozen=True)
class Freshness(Check):
    """The newest timestamp in ``column`` is at most ``max_age`` old (naive timestamps are read as UTC)."""

    column: str
    max_age: timedelta
    now: datetime | None = None
    name: ClassVar[str] = "freshness"

    def check(self, frame: pd.DataFrame) -> DataCheckResult:
        if (missing := self._missing(frame, [self.column])) is not None:
            return missing
        import pandas as pd

        values = frame[self.column]
        if not pd.api.types.is_datetime64_any_dtype(values):
            values = pd.to_datetime(values, errors="coerce", utc=True)
        elif values.dt.tz is None:
            values = values.dt.tz_localize("UTC")
        newest = values.max()
        now = pd.Timestamp(self.now) if self.now is not None else pd.Timestamp.now(tz="UTC")
        if now.tzinfo is None:
            now = now.tz_localize("UTC")
        if pd.isna(newest):
            return self._result(self.column, False, "no timestamp to judge freshness by", newest=None)
        age = now - newest
        passed = age <= pd.Timedelta(self.max_age)
        message = f"newest {newest.isoformat()} is {_fmt_age(age)} old (limit {_fmt_age(pd.Timedelta(self.max_age))})"
        return self._result(
            self.column,
            passed,
            message,
            newest=newest.isoformat(),
            age_seconds=age.total_seconds(),
            max_age_seconds=pd.Timedelta(self.max_age).total_seconds(),
        )


# -- constructors (the names users type) --------------------------------------------------------


def schema(columns: Mapping[str, str], *, allow_extra: bool = True) -> Schema:
    """Each column exists with the dtype kind given: one of KINDS, or an exact dtype such as "int32"."""
    if not isinstance(columns, Mapping) or not columns:
        raise InvalidValueError("schema needs a non-empty mapping of column name to dtype kind.")
    for column, kind in columns.items():
        check_kind(kind, column)
    return Schema(dict(columns), allow_extra)


def in_range(column: str, min: float | None = None, max: float | None = None, *, inclusive: bool = True) -> InRange:
    """Values of ``column`` lie within the bounds (missing values are ignored; see missing_share)."""
    if min is None and max is None:
        raise InvalidValueError(f"in_range({column!r}) needs min, max or both.")
    if min is not None and max is not None and min > max:
        raise InvalidValueError(f"in_range({column!r}): min {min} is above max {max}.")
    return InRange(column, min, max, inclusive)


def allowed_values(column: str, values: Iterable[Any]) -> AllowedValues:
    """Values of ``column`` are among ``values`` (missing values are ignored)."""
    listed = tuple(values)
    if not listed:
        raise InvalidValueError(f"allowed_values({column!r}) needs at least one allowed value.")
    return AllowedValues(column, listed)


def unique(*columns: str) -> Unique:
    """No two rows share the values of ``columns`` (together)."""
    if not columns or not all(isinstance(c, str) for c in columns):
        raise InvalidValueError("unique needs one or more column names.")
    return Unique(tuple(columns))


def missing_share(column: str, max_share: float = 0.0) -> MissingShare:
    """At most ``max_share`` of ``column`` is missing."""
    if not isinstance(max_share, int | float) or not 0 <= max_share <= 1:
        raise InvalidValueError(f"missing_share({column!r}): max_share must be between 0 and 1, got {max_share!r}.")
    return MissingShare(column, float(max_share))


def not_null(column: str) -> MissingShare:
    """No value of ``column`` is missing."""
    return missing_share(column, 0.0)


def row_count(min: int | None = None, max: int | None = None) -> RowCount:
    """The frame has between ``min`` and ``max`` rows."""
    if min is None and max is None:
        raise InvalidValueError("row_count needs min, max or both.")
    return RowCount(min, max)


def freshness(column: str, max_age: timedelta | str | float, *, now: datetime | None = None) -> Freshness:
    """The newest timestamp of ``column`` is within ``max_age`` (a timedelta, seconds, or "2d", "6h", "30min")."""
    return Freshness(column, parse_age(max_age), now)


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)
_AGE_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
}


def parse_age(value: timedelta | str | float) -> timedelta:
    """A positive duration from a timedelta, seconds, or text such as "2d", "6h", "30min", "90s", "1w"."""
    if isinstance(value, timedelta) and value.total_seconds() > 0:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=float(value))
    match = _AGE.match(value) if isinstance(value, str) else None
    if match is not None and match.group(2).lower() in _AGE_UNITS and float(match.group(1)) > 0:
        return timedelta(seconds=float(match.group(1)) * _AGE_UNITS[match.group(2).lower()])
    raise InvalidValueError(f"max_age must be a timedelta, seconds or a duration such as '2d' or '6h', got {value!r}.")


# -- running them ---------------------------------------------------------------------------------


def validate_data(
    data: Any,
    checks: Sequence[Check],
    *,
    name: str = "data",
    contract: str | None = None,
    raise_on_failure: bool = True,
    log: bool = True,
) -> ValidationReport:
    """Run every check on ``data`` (a DataFrame, or anything ``pd.DataFrame()`` accepts).

    With ``log`` and an active run (a step's run inside a pipeline), the report
    is stored as ``validation/<name>.json`` and the tag ``loopml.validation.<name>``
    says ``passed`` or ``failed``.

    Raises:
        ValidationFailedError: some check failed (unless ``raise_on_failure=False``);
            ``.report`` is the ValidationReport and the message lists every violation.
    """
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if not isinstance(checks, Sequence) or not all(isinstance(c, Check) for c in checks):
        raise InvalidValueError("validate_data needs a list of checks, e.g. [checks.not_null('id'), checks.row_count(min=1)].")
    report = ValidationReport(name, len(frame), tuple(check.check(frame) for check in checks), contract)
    if log:
        log_report(name, report.to_evidence(), report.passed)
    if raise_on_failure:
        report.raise_if_failed()
    return report


def log_report(name: str, evidence: Mapping[str, Any], passed: bool) -> None:
    """Store a report on the active run, if there is one."""
    from loopml.tracking.fluent import active_run

    run = active_run()
    if run is None:
        return
    safe = _NAME.sub("_", name)[:100] or "data"
    run.log_dict(dict(evidence), f"validation/{safe}.json")
    run.set_tag(f"loopml.validation.{safe}", "passed" if passed else "failed")


# -- helpers -----------------------------------------------------------------------------------------


def check_kind(kind: Any, column: str) -> str:
    """``kind`` if it is one of KINDS or the exact name of a pandas dtype; else InvalidValueError.

    A name that is neither could never match a column (``"integer"``, or
    ``"double"``, which pandas names ``"float64"``), so it is refused here
    rather than failing every validation.
    """
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidValueError(f"Column {column!r}: dtype must be a string such as 'int' or 'text', got {kind!r}.")
    if kind.lower() in KINDS:
        return kind
    from pandas.api.types import pandas_dtype

    try:
        exact: str | None = str(pandas_dtype(kind))
    except (TypeError, ValueError, ImportError):
        exact = None
    if exact != kind:
        hint = f" pandas names that dtype {exact!r}." if exact else did_you_mean(kind, KINDS)
        raise InvalidValueError(
            f"Column {column!r}: unknown dtype {kind!r}; use a kind ({', '.join(KINDS)}) or the exact name of a "
            f"pandas dtype such as 'int32' or 'Int64'.{hint}"
        )
    return kind


def dtype_matches(series: pd.Series, kind: str) -> bool:
    """Whether the series' dtype is of ``kind`` (see KINDS) or is exactly the dtype named ``kind``."""
    import pandas as pd
    from pandas.api import types as t

    categorical = isinstance(series.dtype, pd.CategoricalDtype)
    checks: dict[str, Callable[[pd.Series], bool]] = {
        "any": lambda s: True,
        "int": lambda s: t.is_integer_dtype(s) and not t.is_bool_dtype(s),
        "float": t.is_float_dtype,
        "number": lambda s: t.is_numeric_dtype(s) and not t.is_bool_dtype(s),
        "bool": t.is_bool_dtype,
        "text": lambda s: t.is_string_dtype(s) and not categorical,
        "datetime": t.is_datetime64_any_dtype,
        "timedelta": t.is_timedelta64_dtype,
        "category": lambda s: categorical,
    }
    test = checks.get(kind.lower())
    return bool(test(series)) if test is not None else str(series.dtype) == kind


def _repeated(frame: pd.DataFrame) -> set[Any]:
    """Column names that occur more than once in ``frame``."""
    return set(frame.columns[frame.columns.duplicated()])


def json_safe(value: Any) -> Any:
    """numpy scalars to Python, NaN and infinities to None, timestamps to ISO text, containers recursively."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return json_safe(item())
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if hasattr(value, "isoformat"):
        try:
            return None if value != value else value.isoformat()  # NaT is not equal to itself
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _examples(values: pd.Series) -> list[dict[str, Any]]:
    return [{"row": json_safe(i), "value": json_safe(v)} for i, v in values.head(MAX_EXAMPLES).items()]


def _bounds(low: Any, high: Any, inclusive: bool) -> str:
    left, right = ("[", "]") if inclusive else ("(", ")")
    return f"{left}{'-inf' if low is None else _fmt(low)}, {'inf' if high is None else _fmt(high)}{right}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _fmt_age(age: Any) -> str:
    seconds = age.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
