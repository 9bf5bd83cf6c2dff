"""Monitors of deployed models: define one with :func:`monitor`, run it with :func:`check`.

A monitor names a registered model and says what to check (data drift,
prediction drift, data quality, performance once labels arrive, operations),
on which window of the prediction log, against which reference, with which
thresholds, and what to do when one is crossed. Its definition is stored
(audited) in the store, so any process — the CLI, a cron job, the
continuous-training agent — can check it; only Python functions given as
actions stay in the process that defined them (see :mod:`.actions`).

``check`` reads the window, resolves the reference (an explicit DataFrame or
dataset, else the version's training data found through lineage) when a check
compares against one (``checks.needs``: an ``operations``-only monitor loads
none and reads only the requests; its stored ``reference`` figure says
``"not needed"``), computes
every figure (:mod:`.checks`), stores one result with every figure and the
alerts in one transaction (each alert is also an audited ``monitor.alert``
event, which is what the continuous-training agent reacts to), then runs the
actions. Stored results read back with :func:`loopml.search_monitor_results`.

Example:
    >>> loopml.monitor("churn-drift", "churn", window={"last": 1000},
    ...                thresholds={"drift_share": 0.3, "accuracy_min": 0.9, "error_rate_max": 0.05},
    ...                actions=[loopml.webhook("http://alerts.internal/ml"), "log"])   # doctest: +SKIP
    >>> result = loopml.run_monitor("churn-drift")                                          # doctest: +SKIP
    >>> result.status, [a.kind for a in result.alerts]                                # doctest: +SKIP
    ('alert', ['data_drift'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.entities.monitoring import Alert, Monitor, MonitorResult
from loopml.errors import DeploymentNotFoundError, LoopMLError, NotFoundError
from loopml.monitoring.actions import Action, ActionOutcome, as_action, register_callables, run_actions
from loopml.monitoring.spec import CHECKS, RESPONSIBLE_CHECKS, MonitorSpec, build_spec, check_monitor_name
from loopml.uris import check_model_name

if TYPE_CHECKING:
    import pandas as pd

    from loopml.monitoring.drift import DriftReport
    from loopml.monitoring.quality import QualityReport
    from loopml.monitoring.windows import Current, Reference
    from loopml.tracking.client import TrackingClient

ActionLike = Action | str | Callable[..., Any] | Mapping[str, Any]  # an action, "log", a function, stored JSON


@dataclass(frozen=True)
class MonitorRunResult:
    """What one check found and stored: the stored result and alerts, the reports, and how the actions went."""

    monitor: str
    result: MonitorResult
    alerts: tuple[Alert, ...]
    actions: tuple[ActionOutcome, ...] = ()
    drift: DriftReport | None = None
    quality: QualityReport | None = None

    @property
    def status(self) -> str:
        """``ok``, ``alert`` (a threshold was crossed) or ``error`` (a check could not run on the data)."""
        return self.result.status

    @property
    def ok(self) -> bool:
        return self.result.status == "ok"

    @property
    def summary(self) -> Mapping[str, Any]:
        return self.result.summary

    @property
    def figures(self) -> Mapping[str, Any]:
        return self.result.figures

    def to_frame(self) -> pd.DataFrame:
        """This result as one row of :func:`loopml.search_monitor_results`."""
        from loopml.monitoring.results import results_frame

        return results_frame([self.result])

    def to_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """This check's drift and quality as a self-contained HTML report; returns the path."""
        from loopml.monitoring.report import render_report

        return render_report(path, drift=self.drift, quality=self.quality,
                             title=title or f"Monitor {self.monitor}: check {self.result.result_id}")  # fmt: skip


def monitor(
    name: str,
    model: str,
    *,
    checks: Sequence[str] | str = CHECKS,
    columns: Sequence[str] | None = None,
    tests: Any = None,
    thresholds: Mapping[str, float] | None = None,
    window: Mapping[str, Any] | None = None,
    version: int | str | None = None,
    reference: str | None = None,
    schedule: str | None = None,
    actions: Sequence[ActionLike] = (),
    segments: str | None = None,
    metrics: Sequence[str] = (),
    client: TrackingClient | None = None,
    actor: str | None = None,
) -> Monitor:
    """Define (or redefine) the monitor ``name`` of the registered model ``model``; stored and audited.

    Args:
        checks: any of ``data_drift``, ``prediction_drift``, ``quality``, ``performance``, ``operations``, and
            ``feature_skew`` (asked for explicitly: served features against the offline store, see ``.skew``).
        columns: the input columns to watch; default every reference column that requests carry.
        tests: drift tests forced per column (``{"age": "psi", "prediction": ("psi", 0.2)}``) or one for all.
        thresholds: when to alert (see :mod:`loopml.monitoring.spec`), e.g. ``{"drift_share": 0.3,
            "accuracy_min": 0.9, "error_rate_max": 0.05, "p99_latency_ms_max": 250}``.
        window: the current data: ``{"last": 1000}`` requests (default), ``{"since": "1h"}``, or both.
        version: watch one version (a number or an alias); default every version the model serves.
        reference: a dataset ``"name@<sha256 prefix>"``; default the version's training data (lineage).
        schedule: a cron expression (``"*/15 * * * *"``) for whoever runs checks on a schedule.
        actions: ``loopml.webhook(url)``, ``"log"`` (or ``loopml.monitoring.actions.log()``), or a function
            called with each :class:`~loopml.entities.monitoring.Alert`.
        segments: the sensitive attribute of the ``fairness`` check: an input column, or
            ``"feedback.<key>"`` for a key of feedback labels sent as objects (see ``monitoring/responsible.py``).
        metrics: ``@loopml.metric`` names the ``business`` check scores.

    Raises:
        InvalidValueError: an unknown check, threshold or test, a bad window, name or action; nothing is stored.
        DatasetNotFoundError: ``reference`` names no logged dataset.
    """
    check_monitor_name(name)
    check_model_name(model)
    parsed = [as_action(a) for a in actions] if not isinstance(actions, (str, Mapping)) else [as_action(actions)]
    spec = build_spec(checks=checks, columns=columns, tests=tests, thresholds=thresholds, window=window,
                      version=version, reference=reference, schedule=schedule,
                      actions=[a.to_json() for a in parsed], segments=segments, metrics=metrics)  # fmt: skip
    tracking = _tracking(client)
    if spec.reference is not None:
        tracking.get_dataset(spec.reference)  # DatasetNotFoundError now rather than at the first check
    stored = tracking.store.monitoring.put_monitor(name, model, spec.to_json(), actor=_actor(actor))
    register_callables(name, parsed)
    return stored


def get_monitor(name: str, *, client: TrackingClient | None = None) -> Monitor:
    """The stored monitor; MonitorNotFoundError (with the closest name) when there is none."""
    return _tracking(client).store.monitoring.get_monitor(name)


def list_monitors(model: str | None = None, *, client: TrackingClient | None = None) -> list[Monitor]:
    """Every monitor (of ``model``), by name."""
    return _tracking(client).store.monitoring.list_monitors(model)


def delete_monitor(name: str, *, client: TrackingClient | None = None, actor: str | None = None) -> None:
    """Remove the monitor (audited); its results and alerts stay."""
    from loopml.monitoring.actions import forget_callables

    _tracking(client).store.monitoring.delete_monitor(name, actor=_actor(actor))
    forget_callables(name)


def run_monitor(
    monitor: str | Monitor,
    *,
    reference: Any = None,
    current: Any = None,
    client: TrackingClient | None = None,
    actor: str | None = None,
) -> MonitorRunResult:
    """Run the monitor now: compute every configured check, store the result and its alerts, run the actions.

    Args:
        monitor: the monitor's name (or the Monitor ``loopml.monitor`` returned).
        reference: a DataFrame or a dataset reference; default the monitor's ``reference``, else the
            training data of the watched version found through lineage.
        current: a DataFrame to check instead of the prediction-log window (its ``prediction``, ``label``,
            ``status`` and ``latency_ms`` columns are used where present).

    Returns:
        The stored result with its alerts and reports. A window without predictions is stored as an
        ``error`` result, not raised, so a schedule shows the gap.

    Raises:
        MonitorNotFoundError: no monitor has that name (the message suggests the closest).
        NotFoundError: no reference was given and lineage finds no training data.
        ColumnNotFoundError, InvalidValueError: the data does not fit the monitor; nothing is stored.
    """
    from loopml.monitoring.checks import evaluate, figures_of, needs, summary_of
    from loopml.monitoring.windows import Reference, from_frame, read_window
    from loopml.timestamps import now_ms

    tracking = _tracking(client)
    store = tracking.store
    stored = monitor if isinstance(monitor, Monitor) else store.monitoring.get_monitor(monitor)
    spec = MonitorSpec.from_json(stored.spec)
    version = _resolve_version(tracking, stored.model, spec.version)
    who = _actor(actor)
    need = needs(spec)  # an operations-only monitor reads neither inputs, labels nor a reference
    if current is None:
        data = read_window(tracking, stored.model, spec.window, version=version, now_ms=now_ms(), rows=need.rows)
    else:
        data = from_frame(current)
    if data.empty:
        text = f"no predictions of {stored.model} in the window ({spec.window.describe()})"
        result, _ = store.monitoring.record_result(
            stored.name, model=stored.model, version=version, status="error",
            summary={"alerts": [], "errors": [text]}, figures={"window": data.describe(), "errors": [text]},
            alerts=[], actor=who,
        )  # fmt: skip
        return MonitorRunResult(stored.name, result, ())
    watching = version if version is not None else data.version
    if need.reference:
        ref, watched = _reference(tracking, stored.model, spec, watching, reference)
    else:
        ref = Reference.not_needed()
        watched = watching if watching is not None else _deployed_or_none(tracking, stored.model)
    scored, problem = _scored(tracking, stored.model, spec, watched, ref, data)
    found = evaluate(spec, ref, data, reference_predictions=scored)
    if "feature_skew" in spec.checks:  # the served features against the offline ones (loopml.monitoring.skew)
        from loopml.monitoring.skew import feature_skew

        found.feature_skew, skew_alerts = feature_skew(
            store, data.rows, skew_max=spec.threshold("feature_skew_max"),
            lag_max_s=spec.threshold("materialization_lag_max_s"),
        )  # fmt: skip
        found.alerts.extend(skew_alerts)
    if any(c in spec.checks for c in RESPONSIBLE_CHECKS):  # fairness, business metrics, attribution drift
        from loopml.monitoring.responsible import run_checks

        found.responsible = run_checks(spec, tracking, stored.model, watched, ref, data, found)
    if problem is not None:
        found.notes.append(problem)
    figures = {"window": data.describe(), "reference": ref.describe(), **figures_of(found)}
    result, alerts = store.monitoring.record_result(
        stored.name, model=stored.model, version=watched, status=found.status, summary=summary_of(found),
        figures=figures, alerts=found.alerts, actor=who,
    )  # fmt: skip
    outcomes = run_actions(stored.name, spec.actions, alerts)
    failures = [o.to_dict() for o in outcomes if not o.ok]
    if failures:
        store.monitoring.record_action_failures(stored.name, failures, actor=who)
    return MonitorRunResult(stored.name, result, tuple(alerts), tuple(outcomes), found.drift, found.quality)


# -- internals ------------------------------------------------------------------------------------------------


def _tracking(client: TrackingClient | None) -> TrackingClient:
    if client is not None:
        return client
    from loopml.tracking.fluent import get_tracking_client

    return get_tracking_client()


def _actor(actor: str | None) -> str:
    from loopml.auth.audit import default_actor

    return actor or default_actor()


def _resolve_version(tracking: TrackingClient, model: str, version: int | str | None) -> int | None:
    if version is None or isinstance(version, int):
        return version
    from loopml.registry.client import RegistryClient

    return RegistryClient(tracking).get_model_version(model, version).version


def _reference(
    tracking: TrackingClient, model: str, spec: MonitorSpec, version: int | None, given: Any
) -> tuple[Reference, int | None]:
    """The reference, and the version checked (the deployed one when lineage needs a version and none is known)."""
    from loopml.monitoring.windows import lineage_reference, load_reference

    if given is not None:
        return load_reference(tracking, given), version
    if spec.reference is not None:
        return load_reference(tracking, spec.reference), version
    if version is None:
        version = _deployed_version(tracking, model)
    return lineage_reference(tracking, model, version), version


def _deployed_version(tracking: TrackingClient, model: str) -> int:
    from loopml.serving.client import ServingClient

    try:
        deployed = ServingClient(tracking).get_deployment(model).version
    except DeploymentNotFoundError:
        deployed = None
    if deployed is None:
        raise NotFoundError(
            f"Cannot tell which version of {model} to take the reference from: the current data names no version "
            f"and {model} has no deployment. Give the monitor version=..., reference='name@sha', or pass "
            "loopml.run_monitor(monitor, reference=dataframe)."
        )
    return deployed


def _deployed_or_none(tracking: TrackingClient, model: str) -> int | None:
    """The deployed version for the stored result when no check needs one; None without a deployment."""
    try:
        return _deployed_version(tracking, model)
    except NotFoundError:
        return None


def _scored(
    tracking: TrackingClient, model: str, spec: MonitorSpec, version: int | None, ref: Reference, data: Current
) -> tuple[pd.Series | None, str | None]:
    """The model's predictions on the reference, for prediction drift when the reference has none of its own."""
    from loopml.monitoring.spec import PREDICTION
    from loopml.monitoring.windows import score_reference

    if "prediction_drift" not in spec.checks or PREDICTION in ref.frame.columns or PREDICTION not in data.rows:
        return None, None
    features = [c for c in ref.frame.columns if c in data.features]
    if version is None or not features:
        return None, None
    try:
        return score_reference(tracking, model, version, ref.frame[features]), None
    except LoopMLError as exc:
        return None, f"the reference could not be scored with {model} version {version}: {exc}"
