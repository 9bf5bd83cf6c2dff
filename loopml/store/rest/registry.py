"""The RegistryStore over HTTP: each method is one request to the loopml server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.entities.registry import ModelVersion, RegisteredModel, RequestStatus, Stage, TransitionRequest
from loopml.entities.search import Filter
from loopml.store.registry import RegistryStore
from loopml.store.rest import codec
from loopml.store.rest.http import HttpSession


def _model(name: str) -> str:
    return f"/models/{quote(str(name), safe='')}"


def _version(name: str, version: int) -> str:
    return f"{_model(name)}/versions/{int(version)}"


def _alias(name: str, alias: str) -> str:
    return f"{_model(name)}/aliases/{quote(str(alias), safe='')}"


class RestRegistryStore(RegistryStore):
    """Registered models and versions kept by a loopml server (which audits every change)."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    def create_model(
        self, name: str, *, description: str | None, tags: Mapping[str, str], require_approval: bool, actor: str
    ) -> RegisteredModel:
        body = {
            "name": name,
            "description": description,
            "tags": dict(tags),
            "require_approval": require_approval,
            "actor": actor,
        }
        return codec.registered_model_in(self._http.call("POST", "/models", json_body=body))

    def get_model(self, name: str) -> RegisteredModel:
        return codec.registered_model_in(self._http.call("GET", _model(name)))

    def search_models(self, filter: Filter | None, max_results: int) -> list[RegisteredModel]:
        body = {"filter": codec.filter_out(filter), "max_results": max_results}
        found = self._http.call("POST", "/models/search", json_body=body, idempotent=True)
        return [codec.registered_model_in(m) for m in found]

    def create_version(
        self,
        name: str,
        *,
        run_id: str,
        source: str,
        description: str | None,
        tags: Mapping[str, str],
        actor: str,
    ) -> ModelVersion:
        body = {"run_id": run_id, "source": source, "description": description, "tags": dict(tags), "actor": actor}
        return codec.model_version_in(self._http.call("POST", f"{_model(name)}/versions", json_body=body))

    def get_version(self, name: str, version: int) -> ModelVersion:
        return codec.model_version_in(self._http.call("GET", _version(name, version)))

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return codec.model_version_in(self._http.call("GET", _alias(name, alias)))

    def list_versions(
        self, name: str, *, stage: Stage | None = None, filter: Filter | None = None
    ) -> list[ModelVersion]:
        body = {"stage": None if stage is None else Stage(stage).value, "filter": codec.filter_out(filter)}
        found = self._http.call("POST", f"{_model(name)}/versions/search", json_body=body, idempotent=True)
        return [codec.model_version_in(v) for v in found]

    def set_alias(self, name: str, alias: str, version: int, *, actor: str, reason: str | None) -> ModelVersion:
        body = {"version": version, "actor": actor, "reason": reason}
        return codec.model_version_in(self._http.call("PUT", _alias(name, alias), json_body=body))

    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str | None) -> None:
        self._http.call("DELETE", _alias(name, alias), params={"actor": actor, "reason": reason})

    def transition(
        self,
        name: str,
        version: int,
        to_stage: Stage,
        *,
        actor: str,
        reason: str | None,
        archive_existing: bool,
        request_id: int | None = None,
    ) -> ModelVersion:
        body = {
            "to_stage": Stage(to_stage).value,
            "actor": actor,
            "reason": reason,
            "archive_existing": archive_existing,
            "request_id": request_id,
        }
        return codec.model_version_in(self._http.call("POST", f"{_version(name, version)}/transition", json_body=body))

    def create_request(
        self, name: str, version: int, to_stage: Stage, *, actor: str, comment: str | None
    ) -> TransitionRequest:
        body = {"to_stage": Stage(to_stage).value, "actor": actor, "comment": comment}
        return codec.transition_request_in(
            self._http.call("POST", f"{_version(name, version)}/requests", json_body=body)
        )

    def decide_request(self, request_id: int, *, approve: bool, actor: str, comment: str | None) -> TransitionRequest:
        body = {"approve": approve, "actor": actor, "comment": comment}
        return codec.transition_request_in(
            self._http.call("POST", f"/requests/{int(request_id)}/decision", json_body=body)
        )

    def list_requests(
        self, name: str, *, version: int | None = None, status: RequestStatus | None = None
    ) -> list[TransitionRequest]:
        params = {"version": version, "status": None if status is None else RequestStatus(status).value}
        return [
            codec.transition_request_in(r) for r in self._http.call("GET", f"{_model(name)}/requests", params=params)
        ]

    def set_evidence(self, name: str, version: int, evidence: Mapping[str, Any], *, actor: str) -> ModelVersion:
        body = {"evidence": dict(evidence), "actor": actor}
        return codec.model_version_in(self._http.call("PUT", f"{_version(name, version)}/evidence", json_body=body))

    def delete_version(self, name: str, version: int, *, actor: str, reason: str | None) -> None:
        self._http.call("DELETE", _version(name, version), params={"actor": actor, "reason": reason})

    def versions_of_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]:
        found = self._http.call("POST", "/versions/by-runs", json_body={"run_ids": list(run_ids)}, idempotent=True)
        return [codec.model_version_in(v) for v in found]
