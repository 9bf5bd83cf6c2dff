"""Deployments, the prediction log and feedback over HTTP (``/api/v1/deployments``, ``/predictions``, ``/feedback``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.entities.serving import Deployment, Feedback, PredictionRecord
from loopml.store.predictions.policy import LogPolicy, check_erase_key, check_rules
from loopml.store.rest.http import HttpSession
from loopml.store.serving import ServingStore, check_deployment, check_max_results, check_role, check_version_number

Json = dict[str, Any]


def deployment_in(data: Json) -> Deployment:
    return Deployment(
        deployment_id=data["deployment_id"],
        name=data["name"],
        target=data["target"],
        version=data["version"],
        canary_version=data["canary_version"],
        canary_percent=data["canary_percent"],
        shadow_version=data["shadow_version"],
        action=data["action"],
        created_at=data["created_at"],
        created_by=data["created_by"],
        reason=data.get("reason"),
        previous_id=data.get("previous_id"),
    )


def prediction_out(record: PredictionRecord) -> Json:
    return {
        "request_id": record.request_id,
        "time": record.time,
        "model": record.model,
        "version": record.version,
        "role": record.role,
        "inputs": record.inputs,
        "outputs": record.outputs,
        "latency_ms": record.latency_ms,
        "status": record.status,
    }


def prediction_in(data: Json) -> PredictionRecord:
    return PredictionRecord(
        data["request_id"],
        data["time"],
        data["model"],
        data["version"],
        data["role"],
        data["inputs"],
        data["outputs"],
        data["latency_ms"],
        data["status"],
    )


class RestServingStore(ServingStore):
    """The deployments, predictions and feedback a loopml server keeps."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    def create_deployment(
        self,
        name: str,
        *,
        target: str,
        canary_version: int | None,
        canary_percent: float | None,
        shadow_version: int | None,
        actor: str,
        reason: str | None,
    ) -> Deployment:
        target, canary_version, canary_percent, shadow_version = check_deployment(
            target, canary_version, canary_percent, shadow_version
        )
        body = {
            "name": name,
            "target": target,
            "canary_version": canary_version,
            "canary_percent": canary_percent,
            "shadow_version": shadow_version,
            "actor": actor,
            "reason": reason,
        }
        return deployment_in(self._http.call("POST", "/deployments", json_body=body))

    def rollback_deployment(self, name: str, *, actor: str, reason: str | None) -> Deployment:
        path = f"/deployments/{quote(name, safe='')}/rollback"
        return deployment_in(self._http.call("POST", path, json_body={"actor": actor, "reason": reason}))

    def current_deployment(self, name: str) -> Deployment:
        return deployment_in(self._http.call("GET", f"/deployments/{quote(name, safe='')}/current"))

    def current_deployments(self, names: Sequence[str] | None = None) -> list[Deployment]:
        body = {"names": None if names is None else list(names)}
        return [
            deployment_in(item)
            for item in self._http.call("POST", "/deployments/current", json_body=body, idempotent=True)
        ]

    def list_deployments(self, name: str | None = None, *, max_results: int = 1000) -> list[Deployment]:
        params = {"name": name, "max_results": check_max_results(max_results)}
        return [deployment_in(item) for item in self._http.call("GET", "/deployments", params=params)]

    def resolve_aliases(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        body = {"refs": [{"name": name, "alias": alias} for name, alias in refs]}
        found = self._http.call("POST", "/deployments/resolve-aliases", json_body=body, idempotent=True)
        return {(item["name"], item["alias"]): item["version"] for item in found}

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        if records:
            # Not retried: a batch whose answer was lost may have been written already.
            self._http.call("POST", "/predictions", json_body={"records": [prediction_out(r) for r in records]})

    def read_predictions(
        self,
        name: str,
        *,
        since: int | None = None,
        until: int | None = None,
        version: int | None = None,
        role: str | None = None,
        max_results: int = 100_000,
    ) -> list[PredictionRecord]:
        params = {
            "model": name,
            "since": since,
            "until": until,
            "version": None if version is None else check_version_number(version),
            "role": None if role is None else check_role(role),
            "max_results": check_max_results(max_results),
        }
        return [prediction_in(item) for item in self._http.call("GET", "/predictions", params=params)]

    def log_feedback(self, items: Sequence[Feedback]) -> None:
        if items:
            body = {"items": [{"request_id": i.request_id, "label": i.label, "time": i.time} for i in items]}
            self._http.call("POST", "/feedback", json_body=body)

    def read_feedback(
        self,
        *,
        name: str | None = None,
        request_ids: Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        max_results: int = 100_000,
    ) -> list[Feedback]:
        body = {
            "model": name,
            "request_ids": None if request_ids is None else list(request_ids),
            "since": since,
            "until": until,
            "max_results": check_max_results(max_results),
        }
        found = self._http.call("POST", "/feedback/search", json_body=body, idempotent=True)
        return [Feedback(item["request_id"], item["label"], item["time"]) for item in found]

    # -- the log at scale ------------------------------------------------------------------------
    def set_log_policy(
        self,
        name: str,
        *,
        redact: Mapping[str, str],
        entity_key: str | None,
        actor: str,
        reason: str | None = None,
    ) -> LogPolicy:
        # Checked here for the message; the server checks again (and holds the hashing key).
        body = {"redact": check_rules(redact), "entity_key": entity_key}
        found = self._http.call(
            "PUT", f"/predictions/policies/{quote(name, safe='')}", json_body={**body, "actor": actor, "reason": reason}
        )
        return LogPolicy(redact=found["redact"], entity_key=found["entity_key"])

    def get_log_policy(self, name: str) -> LogPolicy:
        found = self._http.call("GET", f"/predictions/policies/{quote(name, safe='')}")
        return LogPolicy(redact=found["redact"], entity_key=found["entity_key"])

    def erase_predictions(
        self, key: str, *, name: str | None = None, actor: str, reason: str | None = None
    ) -> dict[str, int]:
        body = {"key": check_erase_key(key), "model": name, "actor": actor, "reason": reason}
        return dict(self._http.call("POST", "/predictions/erase", json_body=body)["counts"])

    def prune_predictions(self, older_than_ms: int, *, actor: str) -> dict[str, int]:
        body = {"older_than_ms": older_than_ms, "actor": actor}
        return dict(self._http.call("POST", "/predictions/prune", json_body=body)["counts"])
