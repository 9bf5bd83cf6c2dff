"""Entities to and from the JSON the loopml server speaks (``loopml.server.schemas``).

Plain functions over dicts, so the client needs neither pydantic nor the
server package. Typed floats that are NaN or infinite travel as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; a non-finite filter value as
``{"float": "nan" | "inf" | "-inf"}`` (a bare string would be text).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.audit import AuditEvent
from loopml.entities.auth import ApiToken, Role
from loopml.entities.datasets import ColumnProfile, Dataset
from loopml.entities.registry import ModelVersion, RegisteredModel, RequestStatus, Stage, TransitionRequest
from loopml.entities.search import And, Comparison, Filter, Not, Or, OrderBy, Scalar
from loopml.entities.tracking import DatasetInput, Experiment, Metric, Run, RunInfo, RunPage, RunStatus

Json = dict[str, Any]

# -- floats ----------------------------------------------------------------------------------


def float_out(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def float_in(value: float | int | str) -> float:
    return float(value)  # float() reads "NaN", "Infinity" and "-Infinity"


def _optional_float(value: float | int | str | None) -> float | None:
    return None if value is None else float_in(value)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


# -- filters ------------------------------------------------------------------------------------


def _scalar_out(value: Scalar) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def filter_out(node: Filter | None) -> Json | None:
    if node is None:
        return None
    if isinstance(node, And | Or):
        return {"type": "and" if isinstance(node, And) else "or", "items": [filter_out(i) for i in node.items]}
    if isinstance(node, Not):
        return {"type": "not", "item": filter_out(node.item)}
    if isinstance(node, Comparison):
        value = node.value
        encoded = [_scalar_out(v) for v in value] if isinstance(value, tuple) else _scalar_out(value)
        return {"type": "comparison", "kind": node.kind, "key": node.key, "op": node.op, "value": encoded}
    raise TypeError(f"Not a search filter: {node!r}")


def order_by_out(items: Sequence[OrderBy]) -> list[Json]:
    return [{"kind": o.kind, "key": o.key, "descending": o.descending} for o in items]


# -- tracking -------------------------------------------------------------------------------------


def experiment_in(data: Json) -> Experiment:
    return Experiment(experiment_id=data["experiment_id"], name=data["name"], created_at=data["created_at"])


def metric_out(point: Metric) -> Json:
    return {"key": point.key, "value": float_out(point.value), "step": point.step, "timestamp": point.timestamp}


def metric_in(data: Json) -> Metric:
    return Metric(data["key"], float_in(data["value"]), data["step"], data["timestamp"])


def run_in(data: Json) -> Run:
    info = data["info"]
    return Run(
        info=RunInfo(
            run_id=info["run_id"],
            experiment_id=info["experiment_id"],
            name=info["name"],
            status=RunStatus(info["status"]),
            start_time=info["start_time"],
            end_time=info["end_time"],
            parent_run_id=info["parent_run_id"],
            user=info["user"],
        ),
        params=_frozen(data["params"]),
        metrics=MappingProxyType({k: float_in(v) for k, v in data["metrics"].items()}),
        tags=_frozen(data["tags"]),
        inputs=tuple(DatasetInput(i["name"], i["digest"], i["context"]) for i in data["inputs"]),
    )


def run_page_in(data: Json) -> RunPage:
    return RunPage(runs=tuple(run_in(r) for r in data["runs"]), next_page_token=data["next_page_token"])


_PROFILE_FLOATS = ("min", "max", "mean", "std")


def _profile_out(profile: ColumnProfile) -> Json:
    data = profile.to_dict()
    for key in _PROFILE_FLOATS:
        if data[key] is not None:
            data[key] = float_out(data[key])
    return data


def _profile_in(data: Json) -> ColumnProfile:
    return ColumnProfile.from_dict({**data, **{k: _optional_float(data.get(k)) for k in _PROFILE_FLOATS}})


def dataset_out(dataset: Dataset) -> Json:
    return {
        "digest": dataset.digest,
        "name": dataset.name,
        "source": dataset.source,
        "n_rows": dataset.n_rows,
        "schema": dict(dataset.schema),
        "profile": [_profile_out(p) for p in dataset.profile],
        "storage_digest": dataset.storage_digest,
        "storage_format": dataset.storage_format,
        "created_at": dataset.created_at,
    }


def dataset_in(data: Json) -> Dataset:
    return Dataset(
        digest=data["digest"],
        name=data["name"],
        source=data["source"],
        n_rows=data["n_rows"],
        schema=dict(data["schema"]),
        profile=tuple(_profile_in(p) for p in data["profile"]),
        storage_digest=data["storage_digest"],
        storage_format=data["storage_format"],
        created_at=data["created_at"],
    )


def artifact_entry_out(entry: ArtifactEntry) -> Json:
    return {"path": entry.path, "digest": entry.digest, "size": entry.size}


def artifact_entry_in(data: Json) -> ArtifactEntry:
    return ArtifactEntry(data["path"], data["digest"], data["size"])


# -- registry ----------------------------------------------------------------------------------------


def registered_model_in(data: Json) -> RegisteredModel:
    return RegisteredModel(
        name=data["name"],
        description=data["description"],
        require_approval=data["require_approval"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        latest_version=data["latest_version"],
        tags=_frozen(data["tags"]),
        aliases=_frozen(data["aliases"]),
    )


def model_version_in(data: Json) -> ModelVersion:
    return ModelVersion(
        name=data["name"],
        version=data["version"],
        run_id=data["run_id"],
        source=data["source"],
        stage=Stage(data["stage"]),
        description=data["description"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        created_by=data["created_by"],
        tags=_frozen(data["tags"]),
        aliases=tuple(data["aliases"]),
        evidence=_frozen(data["evidence"]),
        manifest_digest=data.get("manifest_digest"),
    )


def transition_request_in(data: Json) -> TransitionRequest:
    return TransitionRequest(
        request_id=data["request_id"],
        name=data["name"],
        version=data["version"],
        to_stage=Stage(data["to_stage"]),
        status=RequestStatus(data["status"]),
        requested_by=data["requested_by"],
        requested_at=data["requested_at"],
        comment=data["comment"],
        decided_by=data["decided_by"],
        decided_at=data["decided_at"],
        decision_comment=data["decision_comment"],
    )


# -- audit ----------------------------------------------------------------------------------------------


def audit_event_in(data: Json) -> AuditEvent:
    return AuditEvent(
        event_id=data["event_id"],
        time=data["time"],
        actor=data["actor"],
        action=data["action"],
        target_type=data["target_type"],
        target=data["target"],
        before=data["before"],
        after=data["after"],
        reason=data["reason"],
        evidence=data["evidence"],
    )


# -- tokens ---------------------------------------------------------------------------------------------


def api_token_in(data: Json) -> ApiToken:
    return ApiToken(
        token_id=data["token_id"],
        name=data["name"],
        role=Role(data["role"]),
        created_at=data["created_at"],
        created_by=data["created_by"],
        revoked_at=data["revoked_at"],
    )
