"""What a monitor checks, stored as JSON: checks, drift tests, thresholds, window, version, reference, schedule.

:class:`MonitorSpec` is the validated form of what ``loopml.monitor(...)`` was
given; ``to_json()`` is what the store keeps and ``from_json()`` reads it back
through the same checks, so a spec edited by hand (or by another loopml
version) fails with the same clear message as a bad argument. Validation
happens before anything is stored.

Thresholds, by check (a monitor may only set thresholds of checks it runs):

=================================  ==============  ===================================================
key                                check           alert when
=================================  ==============  ===================================================
``drift_share`` (default 0.5)      data_drift      share of drifted feature columns >= it
``quality_problems_max`` (0)       quality         more data-quality problems than this
``accuracy_min``, ``precision_min``,  performance  the metric falls below it
``recall_min``, ``f1_min``,
``roc_auc_min``, ``r2_min``
``log_loss_max``, ``mae_max``,     performance     the metric rises above it
``rmse_max``, ``mape_max``
``min_labels`` (default 30)        performance     (no alert) fewer labelled rows: no verdict
``error_rate_max``                 operations      share of 4xx + 5xx requests above it
``p50_latency_ms_max``, ``p95_…``,  operations     the latency percentile (or mean) above it
``p99_…``, ``mean_latency_ms_max``
``feature_skew_max`` (0.01)        feature_skew    share of served feature values unlike the offline ones above it
``materialization_lag_max_s``      feature_skew    a view materialized longer ago than this (seconds)
``parity_difference_max``          fairness        the demographic parity difference above it
``equalized_odds_difference_max``  fairness        the equalized odds difference above it
``min_group_rows`` (default 30)    fairness        (no verdict) a group with fewer labelled rows
``metric.<name>_min``, ``_max``    business        a ``@loopml.metric`` value below (above) it
``attribution_rank_correlation_min``  attribution_drift  Spearman correlation of the importance ranks below it (0.5)
``attribution_share_shift_max``    attribution_drift  total variation of the importance shares above it (0.2)
=================================  ==============  ===================================================

``prediction_drift`` alerts whenever the prediction column's test flags drift
(force its test with ``tests={"prediction": ("psi", 0.2)}``).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from loopml.errors import InvalidValueError, did_you_mean

CHECKS = ("data_drift", "prediction_drift", "quality", "performance", "operations")
#: Checks a monitor runs only when asked: they read more than the prediction log (feature_skew: the feature store).
OPTIONAL_CHECKS = ("feature_skew",)
#: Responsible-ML checks (``loopml.monitoring.responsible``), also only when asked: they need ``segments``,
#: ``metrics`` or an explainer.
RESPONSIBLE_CHECKS = ("fairness", "business", "attribution_drift")
SPEC_FORMAT = 1
EVERY_COLUMN = "*"  # the key of a drift test forced on every column
PREDICTION = "prediction"
DEFAULT_WINDOW: Mapping[str, Any] = {"last": 1000}
MAX_WINDOW = 1_000_000  # the most requests one read of the prediction log returns

#: Performance metrics that alert below a minimum, and those that alert above a maximum.
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")
LOWER_IS_BETTER = ("log_loss", "mae", "rmse", "mape")
#: Operations thresholds and the figure of :func:`loopml.monitoring.operations.operations` they bound.
OPERATIONS_LIMITS = {
    "error_rate_max": "error_rate",
    "mean_latency_ms_max": "latency_mean_ms",
    "p50_latency_ms_max": "latency_p50_ms",
    "p95_latency_ms_max": "latency_p95_ms",
    "p99_latency_ms_max": "latency_p99_ms",
}
DEFAULT_THRESHOLDS: Mapping[str, float] = {"drift_share": 0.5, "quality_problems_max": 0, "min_labels": 30}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Threshold:
    """One threshold key: the check it belongs to, the figure it bounds, and which values it accepts."""

    key: str
    check: str
    figure: str
    kind: str  # "share" (0, 1], "rate" [0, 1], "count" int >= 0, "positive" > 0, "number" finite, "labels" int >= 1

    def validate(self, value: Any) -> float:
        # numbers.Real, not (int, float): a threshold computed with numpy is an np.int64, which is no int
        bad = isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
        accepts: dict[str, Callable[[float], bool]] = {
            "share": lambda v: 0 < v <= 1,
            "rate": lambda v: 0 <= v <= 1,
            "count": lambda v: v >= 0 and float(v).is_integer(),
            "labels": lambda v: v >= 1 and float(v).is_integer(),
            "positive": lambda v: v > 0,
            "number": lambda v: True,
        }
        ok = not bad and accepts[self.kind](value)
        if not ok:
            wanted = {
                "share": "a number in (0, 1]",
                "rate": "a number in [0, 1]",
                "count": "a whole number from 0",
                "labels": "a whole number from 1",
                "positive": "a positive number",
                "number": "a finite number",
            }[self.kind]
            raise InvalidValueError(f"Threshold {self.key!r} must be {wanted}, got {value!r}.")
        return int(value) if self.kind in ("count", "labels") else float(value)


def _thresholds() -> dict[str, Threshold]:
    table = [
        Threshold("drift_share", "data_drift", "share_drifted", "share"),
        Threshold("quality_problems_max", "quality", "quality_problems", "count"),
        Threshold("min_labels", "performance", "n", "labels"),
    ]
    table += [Threshold(f"{m}_min", "performance", m, "number") for m in HIGHER_IS_BETTER]
    table += [Threshold(f"{m}_max", "performance", m, "number") for m in LOWER_IS_BETTER]
    table += [
        Threshold(key, "operations", figure, "rate" if key == "error_rate_max" else "positive")
        for key, figure in OPERATIONS_LIMITS.items()
    ]
    table += [
        Threshold("parity_difference_max", "fairness", "demographic_parity_difference", "rate"),
        Threshold("equalized_odds_difference_max", "fairness", "equalized_odds_difference", "rate"),
        Threshold("min_group_rows", "fairness", "n", "labels"),
        Threshold("attribution_rank_correlation_min", "attribution_drift", "rank_correlation", "number"),
        Threshold("attribution_share_shift_max", "attribution_drift", "share_shift", "rate"),
    ]
    table += [
        Threshold("feature_skew_max", "feature_skew", "skew_share", "rate"),
        Threshold("materialization_lag_max_s", "feature_skew", "materialization_lag_s", "positive"),
    ]
    return {t.key: t for t in table}


THRESHOLDS = _thresholds()


@dataclass(frozen=True, slots=True)
class Window:
    """Which part of the prediction log is the current data: the newest ``last`` requests in [since, until).

    ``since`` and ``until`` are kept as given (a duration back from now such as ``"1h"``, an ISO time, or
    milliseconds since the epoch) and turned into times by :meth:`bounds` when a check runs.
    """

    last: int | None = None
    since: str | int | None = None
    until: str | int | None = None

    def bounds(self, now_ms: int) -> tuple[int | None, int | None]:
        """``(since, until)`` in milliseconds for a check made at ``now_ms``."""
        return _moment(self.since, now_ms, "since"), _moment(self.until, now_ms, "until")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("last", self.last), ("since", self.since), ("until", self.until)) if v is not None}

    def describe(self) -> str:
        """``last 1000 requests``, ``since 1h``, ``last 500 requests since 2026-01-01``."""
        parts = []
        if self.last is not None:
            parts.append(f"last {self.last:,} requests")
        if self.since is not None:
            parts.append(f"since {self.since}")
        if self.until is not None:
            parts.append(f"until {self.until}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class MonitorSpec:
    """A monitor's definition, validated. ``tests`` maps a column (``"*"``: every column) to ``(test, threshold)``."""

    checks: tuple[str, ...] = CHECKS
    columns: tuple[str, ...] | None = None
    tests: Mapping[str, tuple[str, float | None]] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    window: Window = field(default_factory=lambda: Window(last=1000))
    version: int | str | None = None
    reference: str | None = None
    schedule: str | None = None
    actions: tuple[Mapping[str, Any], ...] = ()
    segments: str | None = None  # the sensitive attribute: an input column, or "feedback.<key>" of dict labels
    metrics: tuple[str, ...] = ()  # @loopml.metric names the business check scores

    def threshold(self, key: str) -> float | None:
        """The monitor's value for ``key``, else the default (None when the key has none)."""
        if key in self.thresholds:
            return self.thresholds[key]
        return DEFAULT_THRESHOLDS.get(key)

    def drift_tests(self) -> Any:
        """The ``tests=`` argument of :func:`loopml.monitoring.drift.drift` (None, one test, or a mapping)."""
        if not self.tests:
            return None
        if EVERY_COLUMN in self.tests:
            return self.tests[EVERY_COLUMN]
        return dict(self.tests)

    def to_json(self) -> dict[str, Any]:
        """What the store keeps (JSON types only)."""
        return {
            "format": SPEC_FORMAT,
            "checks": list(self.checks),
            "columns": None if self.columns is None else list(self.columns),
            "tests": {column: [name, threshold] for column, (name, threshold) in self.tests.items()},
            "thresholds": dict(self.thresholds),
            "window": self.window.to_json(),
            "version": self.version,
            "reference": self.reference,
            "schedule": self.schedule,
            "actions": [dict(a) for a in self.actions],
            **({"segments": self.segments} if self.segments is not None else {}),
            **({"metrics": list(self.metrics)} if self.metrics else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MonitorSpec:
        """Read a stored spec back, through the same validation as :func:`build_spec`."""
        if not isinstance(data, Mapping):
            raise InvalidValueError(f"A monitor spec must be a mapping, got {type(data).__name__}.")
        tests = data.get("tests") or {}
        if isinstance(tests, Mapping):  # JSON keeps (name, threshold) pairs as lists
            tests = {column: tuple(spec) if isinstance(spec, list) else spec for column, spec in tests.items()}
        return build_spec(
            checks=data.get("checks", CHECKS),
            columns=data.get("columns"),
            tests=tests,
            thresholds=data.get("thresholds"),
            window=data.get("window"),
            version=data.get("version"),
            reference=data.get("reference"),
            schedule=data.get("schedule"),
            actions=tuple(data.get("actions") or ()),
            segments=data.get("segments"),
            metrics=tuple(data.get("metrics") or ()),
        )


def build_spec(
    *,
    checks: Sequence[str] | str = CHECKS,
    columns: Sequence[str] | None = None,
    tests: Any = None,
    thresholds: Mapping[str, Any] | None = None,
    window: Mapping[str, Any] | None = None,
    version: int | str | None = None,
    reference: str | None = None,
    schedule: str | None = None,
    actions: Sequence[Mapping[str, Any]] = (),
    segments: str | None = None,
    metrics: Sequence[str] = (),
) -> MonitorSpec:
    """Validate every part of a monitor's definition; InvalidValueError (with the closest name) on the first fault."""
    chosen = _checks(checks)
    from loopml.monitoring.responsible import check_options

    segments, metrics = check_options(chosen, segments, metrics)
    return MonitorSpec(
        checks=chosen,
        columns=_columns(columns),
        tests=_tests(tests),
        thresholds=_threshold_values(thresholds, chosen),
        window=parse_window(window),
        version=_version(version),
        reference=_reference(reference),
        schedule=_schedule(schedule),
        actions=tuple(actions),
        segments=segments,
        metrics=tuple(metrics),
    )


def check_monitor_name(name: Any) -> str:
    """Monitor names: 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit (CLI-friendly)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidValueError(
            f"Invalid monitor name {name!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return name


def parse_window(window: Mapping[str, Any] | None) -> Window:
    """``{"last": 1000}``, ``{"since": "1h"}``, ``{"since": "2026-01-01", "until": "2026-01-02"}`` or a mix."""
    if window is None:
        window = DEFAULT_WINDOW
    if not isinstance(window, Mapping) or not window:
        raise InvalidValueError(
            f'window must be a mapping such as {{"last": 1000}} or {{"since": "1h"}}, got {window!r}.'
        )
    unknown = [k for k in window if k not in ("last", "since", "until")]
    if unknown:
        raise InvalidValueError(
            f"Unknown window key {unknown[0]!r}; use last, since and until."
            + did_you_mean(str(unknown[0]), ["last", "since", "until"])
        )
    last = window.get("last")
    if last is not None and (
        isinstance(last, bool) or not isinstance(last, numbers.Integral) or not 1 <= int(last) <= MAX_WINDOW
    ):
        raise InvalidValueError(
            f"window last must be a whole number of requests from 1 to {MAX_WINDOW:,}, got {last!r}."
        )
    # plain ints, so that the spec stays JSON (an np.int64 is not)
    since, until = (_plain(window.get(key)) for key in ("since", "until"))
    moments = {key: _moment(value, 0, key) for key, value in (("since", since), ("until", until)) if value is not None}
    if last is None and since is None:
        raise InvalidValueError('A window needs "last" (a number of requests) or "since" (e.g. "1h"), or both.')
    if len(moments) == 2 and _is_duration(since) == _is_duration(until) and moments["since"] >= moments["until"]:
        # both back from now, or both fixed times: comparable now, and the window would stay empty forever
        raise InvalidValueError(
            f"window since ({since!r}) must come before until ({until!r}); a duration counts back from now, "
            'so {"since": "2h", "until": "1h"} is the hour before last.'
        )
    return Window(None if last is None else int(last), since, until)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value


def _is_duration(value: Any) -> bool:
    return isinstance(value, str) and _DURATION.match(value) is not None


@overload
def _moment(value: None, now_ms: int, key: str) -> None: ...
@overload
def _moment(value: str | int, now_ms: int, key: str) -> int: ...
@overload
def _moment(value: str | int | None, now_ms: int, key: str) -> int | None: ...
def _moment(value: str | int | None, now_ms: int, key: str) -> int | None:
    """Milliseconds since the epoch: a duration back from now ("1h", "30min", "2d"), an ISO time, or ms."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return now_ms - int(float(match.group(1)) * _UNIT_MS[match.group(2)])
        from datetime import UTC, datetime

        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return int(moment.timestamp() * 1000)
    raise InvalidValueError(
        f"window {key} must be a duration back from now (e.g. '30min', '1h', '2d'), an ISO time "
        f"(e.g. '2026-01-01T09:00') or milliseconds since the epoch, got {value!r}."
    )


def _checks(checks: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(checks, str):
        checks = [checks]
    if not isinstance(checks, Sequence) or not checks:
        raise InvalidValueError(
            f"checks must be a non-empty list of check names ({', '.join(CHECKS)}), got {checks!r}."
        )
    known = (*CHECKS, *OPTIONAL_CHECKS, *RESPONSIBLE_CHECKS)
    for name in checks:
        if name not in known:
            raise InvalidValueError(
                f"Unknown check {name!r}; the checks are {', '.join(known)}." + did_you_mean(str(name), known)
            )
    return tuple(c for c in known if c in checks)  # a fixed order, whatever order they came in


def _columns(columns: Sequence[str] | None) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise InvalidValueError(f"columns must be a non-empty list of column names, got {columns!r}.")
    if not all(isinstance(c, str) and c for c in columns):
        raise InvalidValueError(f"Column names must be non-empty strings, got {list(columns)!r}.")
    return tuple(dict.fromkeys(columns))


def _tests(tests: Any) -> dict[str, tuple[str, float | None]]:
    from loopml.monitoring.drift import DriftTest

    if tests is None:
        return {}
    if not isinstance(tests, Mapping):
        tests = {EVERY_COLUMN: tests}
    checked: dict[str, tuple[str, float | None]] = {}
    for column, spec in tests.items():
        if not isinstance(column, str) or not column:
            raise InvalidValueError(f"tests must map column names to tests, got key {column!r}.")
        if isinstance(spec, DriftTest):
            test = spec
        elif isinstance(spec, str):
            test = DriftTest(spec)
        elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            test = DriftTest(spec[0], None if spec[1] is None else spec[1])
        else:
            raise InvalidValueError(
                f"The test for {column!r} must be a test name, a (name, threshold) pair or a DriftTest, got {spec!r}."
            )
        checked[column] = (test.name, test.threshold)
    return checked


def _threshold_values(thresholds: Mapping[str, Any] | None, checks: tuple[str, ...]) -> dict[str, float]:
    if thresholds is None:
        return {}
    if not isinstance(thresholds, Mapping):
        raise InvalidValueError(f'thresholds must be a mapping such as {{"drift_share": 0.3}}, got {thresholds!r}.')
    values: dict[str, float] = {}
    for key, value in thresholds.items():
        known = THRESHOLDS.get(key) or _metric_threshold(key)
        if known is None:
            raise InvalidValueError(
                f"Unknown threshold {key!r}; thresholds are {', '.join(THRESHOLDS)}."
                + did_you_mean(str(key), THRESHOLDS)
            )
        if known.check not in checks:
            raise InvalidValueError(
                f"Threshold {key!r} applies to the {known.check} check, which this monitor does not run "
                f"(checks: {', '.join(checks)})."
            )
        values[key] = known.validate(value)
    return values


def _metric_threshold(key: Any) -> Threshold | None:
    """``metric.<name>_min`` / ``metric.<name>_max``: a bound on a business metric (the business check)."""
    if isinstance(key, str) and key.startswith("metric.") and key.endswith(("_min", "_max")) and len(key) > 11:
        return Threshold(key, "business", key[len("metric.") : -4], "number")
    return None


def _version(version: int | str | None) -> int | str | None:
    if version is None:
        return None
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if isinstance(version, int) and not isinstance(version, bool):
        if version < 1:
            raise InvalidValueError(f"version must be a version number from 1 or an alias, got {version!r}.")
        return version
    if isinstance(version, str) and _NAME.match(version):
        return version  # an alias, resolved when the monitor checks
    raise InvalidValueError(f"version must be a version number or an alias such as 'champion', got {version!r}.")


def _reference(reference: str | None) -> str | None:
    if reference is None:
        return None
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidValueError(
            f"reference must be a dataset reference 'name@<sha256 prefix>' (or None: the training data found "
            f"through lineage), got {reference!r}. Pass a DataFrame to loopml.run_monitor(..., reference=df) instead."
        )
    return reference


def _schedule(schedule: str | None) -> str | None:
    if schedule is None:
        return None
    if not isinstance(schedule, str) or len(schedule.split()) != 5:
        raise InvalidValueError(
            f"schedule must be a cron expression of five fields (minute hour day month weekday), "
            f"e.g. '*/15 * * * *', got {schedule!r}."
        )
    return " ".join(schedule.split())
