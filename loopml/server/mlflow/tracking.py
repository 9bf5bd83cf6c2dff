"""MLflow's experiment, run, param, metric, tag and search calls over loopml's tracking store.

Each route reads MLflow's request message, calls the store the loopml
server was built over, and answers MLflow's JSON; runs written here are
ordinary loopml runs (``loopml runs list``, searches, gates and the UI see them).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from loopml.auth.guard import actor_for, needs
from loopml.entities.auth import Role
from loopml.entities.tracking import Metric, RunStatus
from loopml.errors import ExperimentAlreadyExistsError, ExperimentNotFoundError, MetricNotFoundError
from loopml.interop import mlflow_layout as layout
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.mlflow import messages as m
from loopml.server.mlflow.errors import invalid, not_found
from loopml.store import Store
from loopml.timestamps import now_ms
from loopml.tracking.client import DEFAULT_EXPERIMENT
from loopml.tracking.names import random_run_name
from loopml.tracking.search import parse_filter, parse_order_by

router = APIRouter(tags=["mlflow"], route_class=AuthorizedRoute)  # the role before the body
Msg = Annotated[m.Message, Depends(m.read_message)]
#: The largest ``max_results`` accepted (MLflow's own cap); a page holds at most PAGE_SIZE runs and a token for more.
MAX_SEARCH_RESULTS = 50_000
PAGE_SIZE = 1000
_NON_FINITE = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}


# -- experiments ----------------------------------------------------------------------------
def experiment_of(store: Store, value: Any, name: str = "experiment_id") -> int:
    """loopml's experiment id for an MLflow one; MLflow's default experiment ``0`` is loopml's ``Default``."""
    experiment_id = m.experiment_id(value, name)
    if experiment_id != 0:
        return experiment_id
    try:
        return store.tracking.get_experiment_by_name(DEFAULT_EXPERIMENT).experiment_id
    except ExperimentNotFoundError:
        try:
            return store.tracking.create_experiment(DEFAULT_EXPERIMENT).experiment_id
        except ExperimentAlreadyExistsError:  # created meanwhile by another request
            return store.tracking.get_experiment_by_name(DEFAULT_EXPERIMENT).experiment_id


@router.post("/mlflow/experiments/create")
def create_experiment(msg: Msg, store: StoreDep) -> dict[str, Any]:
    name = m.required_text(msg, "name")
    if msg.get("artifact_location"):
        raise invalid("Parameter 'artifact_location' is not supported: loopml stores every artifact itself.")
    experiment = store.tracking.create_experiment(name)
    return {"experiment_id": str(experiment.experiment_id)}


@router.get("/mlflow/experiments/get")
def get_experiment(msg: Msg, store: StoreDep) -> dict[str, Any]:
    experiment = store.tracking.get_experiment(experiment_of(store, msg.get("experiment_id")))
    return {"experiment": m.experiment_json(experiment)}


@router.get("/mlflow/experiments/get-by-name")
def get_experiment_by_name(msg: Msg, store: StoreDep) -> dict[str, Any]:
    name = m.required_text(msg, "experiment_name")
    try:
        experiment = store.tracking.get_experiment_by_name(name)
    except ExperimentNotFoundError:
        raise not_found(f"Could not find experiment with name '{name}'") from None
    return {"experiment": m.experiment_json(experiment)}


@router.get("/mlflow/experiments/search")
@router.post("/mlflow/experiments/search")
@needs(Role.VIEWER)
def search_experiments(msg: Msg, store: StoreDep) -> dict[str, Any]:
    wanted = _name_filter(m.text(msg, "filter", required=False))
    max_results = m.integer(msg, "max_results", 1000) or 1000
    experiments = [e for e in store.tracking.list_experiments() if wanted is None or e.name == wanted]
    experiments.sort(key=lambda e: e.created_at, reverse=True)
    return {"experiments": [m.experiment_json(e) for e in experiments[:max_results]]}


def _name_filter(text: str | None) -> str | None:
    """The name of an ``name = '...'`` experiment filter (the only experiment filter supported)."""
    if text is None:
        return None
    parsed = parse_filter(text)
    from loopml.entities.search import Comparison

    if isinstance(parsed, Comparison) and parsed.key == "name" and parsed.op == "=" and isinstance(parsed.value, str):
        return parsed.value
    raise invalid(f"Unsupported experiment filter {text!r}: loopml supports name = '<name>' only.")


# -- runs -----------------------------------------------------------------------------------
@router.post("/mlflow/runs/create")
def create_run(msg: Msg, store: StoreDep, request: Request) -> dict[str, Any]:
    experiment = experiment_of(store, msg.get("experiment_id", "0"))
    tags = m.key_values(msg, "tags")
    name = m.text(msg, "run_name", required=False) or tags.get("mlflow.runName") or random_run_name()
    parent = tags.get("mlflow.parentRunId")
    if parent is not None:
        m.check_run_id(parent, "tags.mlflow.parentRunId")
    user = m.text(msg, "user_id", required=False) or tags.get("mlflow.user") or "mlflow"
    run = store.tracking.create_run(
        experiment,
        name=name,
        user=actor_for(request, user),
        start_time=m.integer(msg, "start_time") or now_ms(),
        parent_run_id=parent,
        tags=tags,
    )
    return {"run": m.run_json(run)}


@router.get("/mlflow/runs/get")
def get_run(msg: Msg, store: StoreDep) -> dict[str, Any]:
    return {"run": m.run_json(store.tracking.get_run(m.run_id(msg)))}


@router.post("/mlflow/runs/update")
def update_run(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    run = store.tracking.get_run(run_id)
    new_name = m.text(msg, "run_name", required=False)
    if new_name is not None and new_name != run.info.name:
        raise invalid("Parameter 'run_name': loopml does not rename runs once created.")
    status_name = m.text(msg, "status", required=False)
    if status_name is not None:
        try:
            status = RunStatus(status_name)
        except ValueError:
            raise invalid(
                f"Invalid value {status_name!r} for parameter 'status': use RUNNING, FINISHED, FAILED or KILLED."
            ) from None
        if status.is_terminal and run.info.status != status:
            run = store.tracking.end_run(run_id, status, m.integer(msg, "end_time") or now_ms())
        elif status != run.info.status:
            raise invalid(f"Parameter 'status': run {run_id} has ended and cannot go back to {status_name}.")
    return {"run_info": m.run_json(run)["info"]}


@router.post("/mlflow/runs/search")
@needs(Role.VIEWER)
def search_runs(msg: Msg, store: StoreDep) -> dict[str, Any]:
    raw_ids = msg.get("experiment_ids") or []
    if not isinstance(raw_ids, list):
        raw_ids = [raw_ids]
    experiment_ids = [experiment_of(store, e, "experiment_ids") for e in raw_ids] or None
    order_by = msg.get("order_by") or []
    if not isinstance(order_by, list) or not all(isinstance(o, str) for o in order_by):
        raise invalid("Invalid value for parameter 'order_by': it must be a list of strings.")
    max_results = m.integer(msg, "max_results", PAGE_SIZE) or PAGE_SIZE
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': use 1 to {MAX_SEARCH_RESULTS}.")
    page = store.tracking.search_runs(
        experiment_ids,
        parse_filter(m.text(msg, "filter", required=False)),
        parse_order_by([_order_clause(o) for o in order_by]),
        min(max_results, PAGE_SIZE),
        m.text(msg, "page_token", required=False),
    )
    answer: dict[str, Any] = {"runs": [m.run_json(r) for r in page.runs]}
    if page.next_page_token:
        answer["next_page_token"] = page.next_page_token
    return answer


def _order_clause(clause: str) -> str:
    """MLflow's ``attribute.x`` / ``attributes.x`` order keys, as loopml spells them."""
    return clause.replace("attribute.", "attributes.", 1) if clause.startswith("attribute.") else clause


# -- run data -----------------------------------------------------------------------------------
@router.post("/mlflow/runs/log-metric")
def log_metric(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    store.tracking.log_batch(run_id, metrics=[_metric(msg, "")])
    return {}


@router.post("/mlflow/runs/log-parameter")
def log_param(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    key = m.required_text(msg, "key")
    store.tracking.log_batch(run_id, params={key: _value(msg)})
    return {}


@router.post("/mlflow/runs/set-tag")
def set_tag(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    key = m.required_text(msg, "key")
    if key.startswith(layout.INTERNAL_TAG_PREFIX):
        raise invalid(f"Parameter 'key': tags under {layout.INTERNAL_TAG_PREFIX} are kept by loopml itself.")
    store.tracking.log_batch(run_id, tags={key: _value(msg)})
    return {}


def _value(msg: m.Message) -> str:
    """The ``value`` of a param or tag message (MLflow sends strings; an absent value is empty)."""
    value = msg.get("value")
    return "" if value is None else str(value)


@router.post("/mlflow/runs/log-batch")
def log_batch(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    metrics = [_metric(entry, f"metrics[{i}].") for i, entry in enumerate(m.items(msg, "metrics"))]
    tags = m.key_values(msg, "tags")
    if any(k.startswith(layout.INTERNAL_TAG_PREFIX) for k in tags):
        raise invalid(f"Parameter 'tags': tags under {layout.INTERNAL_TAG_PREFIX} are kept by loopml itself.")
    store.tracking.log_batch(run_id, metrics=metrics, params=m.key_values(msg, "params"), tags=tags)
    return {}


def _metric(entry: dict[str, Any], where: str) -> Metric:
    key = m.required_text(entry, "key")
    value = entry.get("value")
    if isinstance(value, str) and value.lower() in _NON_FINITE:
        value = _NON_FINITE[value.lower()]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"Invalid value {value!r} for parameter '{where}value': metric values are numbers.")
    step = m.integer(entry, "step", 0) or 0
    timestamp = m.integer(entry, "timestamp") or now_ms()
    return Metric(key=key, value=float(value), step=step, timestamp=timestamp)


@router.get("/mlflow/metrics/get-history")
def get_metric_history(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    key = m.required_text(msg, "metric_key")
    try:
        history = store.tracking.get_metric_history(run_id, key)
    except MetricNotFoundError:
        store.tracking.get_run(run_id)  # an unknown run is a 404; a run without the metric has no points
        history = []
    return {"metrics": [m.metric_json(p.key, p.value, p.timestamp, p.step) for p in history]}


@router.post("/mlflow/runs/log-inputs")
def log_inputs(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    if m.items(msg, "datasets"):
        raise invalid("Parameter 'datasets': dataset inputs are not supported; log datasets with loopml.")
    store.tracking.get_run(run_id)
    return {}
