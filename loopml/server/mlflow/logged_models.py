"""MLflow 3's logged models (``/mlflow/logged-models``), the calls ``mlflow.<flavor>.log_model`` makes.

loopml has no logged-model entity: a logged model is a folder of its source
run's artifacts (``mlflow-models/<model id>/``) plus one run tag
(``mlflow.loopml.loggedModel.<model id>``) holding its name, status, params
and tags as JSON. The model id embeds the run id (``m-<run id><8 hex>``), so a
lookup by id is one read of the run. A logged model without a source run is
refused: loopml keeps every artifact with a run.

The files are an MLflow model folder (``MLmodel``, ``model.pkl``, ...) kept as
opaque artifacts for the MLflow client; loopml itself never unpickles them.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from loopml.auth.guard import needs
from loopml.entities.auth import Role
from loopml.entities.tracking import Run
from loopml.interop import mlflow_layout as layout
from loopml.interop.mlflow_layout import encode_record, model_folder, model_record_tag
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.mlflow import messages as m
from loopml.server.mlflow.artifacts import list_folder
from loopml.server.mlflow.errors import invalid, not_found
from loopml.store import Store
from loopml.timestamps import now_ms

router = APIRouter(tags=["mlflow"], route_class=AuthorizedRoute)  # the role before the body
Msg = Annotated[m.Message, Depends(m.read_message)]
_STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def read_model(store: Store, model_id: str) -> tuple[Run, dict[str, Any]]:
    """The source run and the stored record of a logged model; RESOURCE_DOES_NOT_EXIST when unknown."""
    run = store.tracking.get_run(m.run_of_model(model_id))
    raw = run.tags.get(model_record_tag(model_id))
    if raw is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    record: dict[str, Any] = json.loads(raw)
    return run, record


def _write(store: Store, run_id: str, model_id: str, record: dict[str, Any]) -> None:
    record["last_updated_timestamp_ms"] = now_ms()
    store.tracking.log_batch(run_id, tags={model_record_tag(model_id): encode_record(record)})


def model_json(run: Run, model_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """An MLflow LoggedModel."""
    return {
        "info": {
            "model_id": model_id,
            "experiment_id": str(run.info.experiment_id),
            "name": record["name"],
            "artifact_uri": m.artifact_uri(run.run_id, model_folder(model_id)),
            "creation_timestamp_ms": record["creation_timestamp_ms"],
            "last_updated_timestamp_ms": record["last_updated_timestamp_ms"],
            "status": record["status"],
            "source_run_id": run.run_id,
            "model_type": record.get("model_type", ""),
            "tags": m.pairs(record.get("tags", {})),
        },
        "data": {"params": m.pairs(record.get("params", {})), "metrics": []},
    }


@router.post("/mlflow/logged-models")
def create_logged_model(msg: Msg, store: StoreDep) -> dict[str, Any]:
    source = msg.get("source_run_id")
    if not source:
        raise invalid("Parameter 'source_run_id' is required: loopml keeps a logged model's files with its run.")
    run = store.tracking.get_run(m.check_run_id(source, "source_run_id"))
    experiment = msg.get("experiment_id")
    if experiment is not None and m.experiment_id(experiment) != run.info.experiment_id:
        raise invalid(f"Parameter 'experiment_id': run {run.run_id} belongs to experiment {run.info.experiment_id}.")
    model_id = layout.new_model_id(run.run_id)
    now = now_ms()
    record = {
        "name": m.text(msg, "name", required=False) or "model",
        "model_type": m.text(msg, "model_type", required=False) or "",
        "status": "LOGGED_MODEL_PENDING",
        "creation_timestamp_ms": now,
        "params": m.key_values(msg, "params"),
        "tags": m.key_values(msg, "tags"),
    }
    _write(store, run.run_id, model_id, record)
    return {"model": model_json(store.tracking.get_run(run.run_id), model_id, record)}


@router.get("/mlflow/logged-models/{model_id}")
def get_logged_model(model_id: str, store: StoreDep) -> dict[str, Any]:
    run, record = read_model(store, model_id)
    return {"model": model_json(run, model_id, record)}


@router.patch("/mlflow/logged-models/{model_id}")
def finalize_logged_model(model_id: str, msg: Msg, store: StoreDep) -> dict[str, Any]:
    status = m.required_text(msg, "status")
    if status not in _STATUSES:
        raise invalid(f"Invalid value {status!r} for parameter 'status': use one of {', '.join(_STATUSES)}.")
    run, record = read_model(store, model_id)
    record["status"] = status
    _write(store, run.run_id, model_id, record)
    return {"model": model_json(run, model_id, record)}


@router.patch("/mlflow/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, msg: Msg, store: StoreDep) -> dict[str, Any]:
    run, record = read_model(store, model_id)
    record["tags"] = {**record.get("tags", {}), **m.key_values(msg, "tags")}
    _write(store, run.run_id, model_id, record)
    return {}


@router.post("/mlflow/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, msg: Msg, store: StoreDep) -> dict[str, Any]:
    run, record = read_model(store, model_id)
    record["params"] = {**record.get("params", {}), **m.key_values(msg, "params")}
    _write(store, run.run_id, model_id, record)
    return {}


@router.get("/mlflow/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(model_id: str, msg: Msg, store: StoreDep) -> dict[str, Any]:
    run, _ = read_model(store, model_id)
    sub = (m.text(msg, "artifact_directory_path", required=False) or "").strip("/")
    folder = model_folder(model_id) + (f"/{sub}" if sub else "")
    files = list_folder(store, run.run_id, folder)
    prefix = f"{sub}/" if sub else ""
    return {
        "root_uri": m.artifact_uri(run.run_id, model_folder(model_id)),
        "files": [{**f, "path": prefix + f["path"]} for f in files],
    }


#: ``<field> = '<value>'``, the clauses a logged-model search filter may join with AND.
_CLAUSE = re.compile(r"""\s*(name|source_run_id|model_id|status)\s*=\s*(?:'([^']*)'|"([^"]*)")\s*""", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def _model_filter(text: str | None) -> dict[str, str]:
    """The equality clauses of a logged-model filter; INVALID_PARAMETER_VALUE for anything else."""
    wanted: dict[str, str] = {}
    for clause in _AND.split(text.strip()) if text and text.strip() else []:
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            raise invalid(
                f"Unsupported logged-model filter clause {clause!r}: loopml supports "
                "name, source_run_id, model_id and status compared with = and joined by AND."
            )
        wanted[match.group(1).lower()] = match.group(2) if match.group(2) is not None else match.group(3)
    return wanted


@router.post("/mlflow/logged-models/search")
@needs(Role.VIEWER)
def search_logged_models(msg: Msg, store: StoreDep) -> dict[str, Any]:
    if msg.get("datasets") or msg.get("order_by"):
        raise invalid("Logged-model search supports experiment_ids and filter only (no datasets or order_by).")
    wanted = _model_filter(m.text(msg, "filter", required=False))
    raw_ids = msg.get("experiment_ids") or []
    if not isinstance(raw_ids, list) or not raw_ids:
        raise invalid("Parameter 'experiment_ids' must list at least one experiment id.")
    ids = [m.experiment_id(e, "experiment_ids") for e in raw_ids]
    models: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = store.tracking.search_runs(ids, None, (), 1000, token)
        for run in page.runs:
            for key, raw in run.tags.items():
                if key.startswith(layout.LOGGED_MODEL_TAG_PREFIX):
                    found = model_json(run, key[len(layout.LOGGED_MODEL_TAG_PREFIX) :], json.loads(raw))
                    info = found["info"]
                    if all(str(info.get(field)) == value for field, value in wanted.items()):
                        models.append(found)
        token = page.next_page_token
        if not token:
            break
    models.sort(key=lambda x: x["info"]["creation_timestamp_ms"], reverse=True)
    return {"models": models}


@router.post("/mlflow/runs/outputs")
def log_outputs(msg: Msg, store: StoreDep) -> dict[str, Any]:
    """Record which logged models a run produced (MLflow's run outputs), as a loopml run tag."""
    run_id = m.run_id(msg)
    run = store.tracking.get_run(run_id)
    outputs: list[dict[str, Any]] = json.loads(run.tags.get(layout.MODEL_OUTPUTS_TAG, "[]"))
    for i, entry in enumerate(m.items(msg, "models")):
        model_id = entry.get("model_id")
        read_model(store, model_id if isinstance(model_id, str) else f"models[{i}].model_id")
        output = {"model_id": model_id, "step": m.integer(entry, "step", 0) or 0}
        if output not in outputs:
            outputs.append(output)
    store.tracking.log_batch(run_id, tags={layout.MODEL_OUTPUTS_TAG: json.dumps(outputs, separators=(",", ":"))})
    return {}
