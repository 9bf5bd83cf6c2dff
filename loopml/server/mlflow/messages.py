"""Reading MLflow request messages and writing loopml entities as MLflow JSON.

MLflow's client sends a GET's fields as query parameters and every other
method's as a JSON object; ``read_message`` gives both as one dict, and the
``field``/``text``/``integer`` helpers take a typed value out of it, answering
``INVALID_PARAMETER_VALUE`` that names the field when it is missing or of the
wrong type.

Identifiers (written down in docs/interop.md):

* an MLflow experiment id is loopml's integer experiment id, as a decimal string;
* an MLflow run id is loopml's run id (both are 32 lowercase hex characters);
* an MLflow logged-model id is ``m-<source run id><8 hex>``: the run it was
  logged in is part of the id, and the model's files live in that run's
  artifacts under ``mlflow-models/<model id>/``;
* artifact URIs are ``mlflow-artifacts:/<run id>/<path>``, so the client sends
  every artifact read and write through the proxy routes of this server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from loopml.entities.registry import ModelVersion, RegisteredModel, Stage
from loopml.entities.tracking import Experiment, Run
from loopml.interop.mlflow_layout import (
    INTERNAL_TAG_PREFIX,
    LOGGED_MODELS_FOLDER,
    MODEL_OUTPUTS_TAG,
)
from loopml.interop.mlflow_layout import run_of_model as layout_run_of_model
from loopml.server.mlflow.errors import invalid

Message = dict[str, Any]

ARTIFACT_SCHEME = "mlflow-artifacts:"

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_STAGE_NAMES = {
    Stage.CANDIDATE: "None",
    Stage.STAGING: "Staging",
    Stage.PRODUCTION: "Production",
    Stage.ARCHIVED: "Archived",
}


async def read_message(request: Request) -> Message:
    """The request's fields: the query string of a GET, the JSON object of any other method."""
    if request.method in ("GET", "HEAD"):
        message: Message = {}
        for key, value in request.query_params.multi_items():
            if key in message:
                previous = message[key]
                message[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                message[key] = value
        return message
    body = await request.body()
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise invalid(f"The request body is not valid JSON ({exc}).") from exc
    if not isinstance(parsed, dict):
        raise invalid("The request body must be a JSON object.")
    return parsed


def text(message: Mapping[str, Any], name: str, *, required: bool = True, default: str | None = None) -> str | None:
    """The string field ``name``."""
    value = message.get(name)
    if value is None or value == "":
        if required:
            raise invalid(f"Missing value for required parameter '{name}'.")
        return default
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be a string.")
    return value


def required_text(message: Mapping[str, Any], name: str) -> str:
    """The string field ``name``, which must be present."""
    value = text(message, name)
    assert value is not None
    return value


def integer(message: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    """The integer field ``name`` (JSON number or decimal string, as protobuf's JSON form allows)."""
    value = message.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,19}", value.strip()):
        return int(value)
    raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be an integer.")


def items(message: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The list-of-objects field ``name`` (e.g. ``tags``: ``[{"key": ..., "value": ...}]``)."""
    value = message.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid(f"Invalid value for parameter '{name}': it must be a list of objects.")
    return value


def key_values(message: Mapping[str, Any], name: str) -> dict[str, str]:
    """A ``[{"key": k, "value": v}]`` field as a dict of strings."""
    out: dict[str, str] = {}
    for i, entry in enumerate(items(message, name)):
        key, value = entry.get("key"), entry.get("value", "")
        if not isinstance(key, str) or not key:
            raise invalid(f"Invalid value for parameter '{name}[{i}].key': it must be a non-empty string.")
        out[key] = "" if value is None else str(value)
    return out


def experiment_id(value: Any, name: str = "experiment_id") -> int:
    """loopml's experiment id for an MLflow experiment id (a decimal string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,18}", value):
        return int(value)
    raise invalid(f"Invalid value {value!r} for parameter '{name}': experiment ids are decimal integers.")


def run_id(message: Mapping[str, Any]) -> str:
    """The run id of a request (``run_id``, or the older ``run_uuid``), checked for shape."""
    value = message.get("run_id") or message.get("run_uuid")
    if value is None:
        raise invalid("Missing value for required parameter 'run_id'.")
    return check_run_id(value)


def check_run_id(value: Any, name: str = "run_id") -> str:
    """``value`` if it is a run id (32 lowercase hex characters)."""
    if not isinstance(value, str) or not _RUN_ID.fullmatch(value):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': run ids are 32 hexadecimal characters.")
    return value


def run_of_model(model_id: Any) -> str:
    """The source run of a logged model, read from its id (``m-<run id><8 hex>``)."""
    run_id = layout_run_of_model(model_id) if isinstance(model_id, str) else None
    if run_id is None:
        raise invalid(f"Invalid value {model_id!r} for parameter 'model_id': not a logged model id of this server.")
    return run_id


def artifact_uri(run_id: str, path: str = "") -> str:
    """The ``mlflow-artifacts:`` URI of a run's artifact folder ``path``."""
    return f"{ARTIFACT_SCHEME}/{run_id}/{path}".rstrip("/")


def stage_name(stage: Stage) -> str:
    """MLflow's name of a loopml stage (candidate is MLflow's ``None``)."""
    return _STAGE_NAMES[stage]


def stage_of(name: str) -> Stage:
    """The loopml stage for an MLflow stage name (case-insensitive)."""
    for stage, mlflow_name in _STAGE_NAMES.items():
        if name.lower() == mlflow_name.lower():
            return stage
    raise invalid(f"Invalid value {name!r} for parameter 'stage': use one of None, Staging, Production, Archived.")


def pairs(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in values.items()]


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment.experiment_id),
        "name": experiment.name,
        "artifact_location": f"{ARTIFACT_SCHEME}/experiments/{experiment.experiment_id}",
        "lifecycle_stage": "active",
        "creation_time": experiment.created_at,
        "last_update_time": experiment.created_at,
        "tags": [],
    }


def run_json(run: Run) -> dict[str, Any]:
    """An MLflow Run: info, data (metrics as their latest values), inputs and outputs."""
    info = run.info
    reported_at = info.end_time if info.end_time is not None else info.start_time
    tags = {k: v for k, v in run.tags.items() if not k.startswith(INTERNAL_TAG_PREFIX)}
    if info.parent_run_id is not None:
        tags.setdefault("mlflow.parentRunId", info.parent_run_id)
    tags.setdefault("mlflow.runName", info.name)
    tags.setdefault("mlflow.user", info.user)
    outputs = json.loads(run.tags.get(MODEL_OUTPUTS_TAG, "[]"))
    return {
        "info": {
            "run_id": info.run_id,
            "run_uuid": info.run_id,
            "run_name": info.name,
            "experiment_id": str(info.experiment_id),
            "user_id": info.user,
            "status": info.status.value,
            "start_time": info.start_time,
            **({} if info.end_time is None else {"end_time": info.end_time}),
            "artifact_uri": artifact_uri(info.run_id),
            "lifecycle_stage": "active",
        },
        "data": {
            # loopml keeps each metric's latest value with the run; its step and time are in get-history
            "metrics": [
                {"key": k, "value": _number(v), "timestamp": reported_at, "step": 0} for k, v in run.metrics.items()
            ],
            "params": pairs(run.params),
            "tags": pairs(tags),
        },
        "inputs": {"dataset_inputs": []},
        "outputs": {"model_outputs": outputs},
    }


def _number(value: float) -> float | str:
    """A float as protobuf's JSON form writes it (NaN and infinities as strings)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def metric_json(key: str, value: float, timestamp: int, step: int) -> dict[str, Any]:
    return {"key": key, "value": _number(value), "timestamp": timestamp, "step": step}


def version_source(version: ModelVersion) -> str:
    """The ``mlflow-artifacts:`` URI of a version's files."""
    return artifact_uri(version.run_id, version.artifact_path)


def version_json(version: ModelVersion) -> dict[str, Any]:
    """An MLflow ModelVersion (versions are READY as soon as they exist: their files are already stored)."""
    path = version.artifact_path
    model_id = path.split("/", 1)[1] if path.startswith(f"{LOGGED_MODELS_FOLDER}/") else None
    return {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
        "user_id": version.created_by,
        "current_stage": stage_name(version.stage),
        "description": version.description or "",
        "source": version_source(version),
        "run_id": version.run_id,
        "status": "READY",
        "tags": pairs(version.tags),
        "aliases": list(version.aliases),
        **({} if model_id is None else {"model_id": model_id}),
    }


def model_json(model: RegisteredModel, latest: list[ModelVersion] | None = None) -> dict[str, Any]:
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description or "",
        "tags": pairs(model.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in model.aliases.items()],
        "latest_versions": [version_json(v) for v in latest or []],
    }
