"""Applied feature definitions over HTTP (``/api/v1/features/...``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.entities.features import FeatureDefinitionRecord
from loopml.store.features import PLURAL, FeatureStore, check_definitions, check_kind
from loopml.store.rest.http import HttpSession


def record_in(data: dict[str, Any]) -> FeatureDefinitionRecord:
    return FeatureDefinitionRecord(
        kind=data["kind"],
        name=data["name"],
        version=data["version"],
        fingerprint=data["fingerprint"],
        spec=data["spec"],
        created_at=data["created_at"],
        created_by=data["created_by"],
        changed=bool(data.get("changed", False)),
    )


class RestFeatureStore(FeatureStore):
    """The feature definitions of a loopml server."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    def apply_feature_definitions(
        self, definitions: Sequence[Mapping[str, Any]], *, actor: str
    ) -> list[FeatureDefinitionRecord]:
        checked = check_definitions(definitions)
        body = {
            "definitions": [
                {"kind": kind, "name": name, "spec": spec, "evidence": evidence}
                for kind, name, spec, _, evidence in checked
            ],
            "actor": actor,
        }
        return [record_in(r) for r in self._http.call("POST", "/features/apply", json_body=body)]

    def get_feature_definition(self, kind: str, name: str, version: int | None = None) -> FeatureDefinitionRecord:
        path = f"/features/{PLURAL[check_kind(kind)]}/{quote(name, safe='')}"
        return record_in(self._http.call("GET", path, params={"version": version}))

    def list_feature_definitions(self, kind: str) -> list[FeatureDefinitionRecord]:
        return [record_in(r) for r in self._http.call("GET", f"/features/{PLURAL[check_kind(kind)]}")]

    def feature_definition_history(self, kind: str, name: str) -> list[FeatureDefinitionRecord]:
        path = f"/features/{PLURAL[check_kind(kind)]}/{quote(name, safe='')}/versions"
        return [record_in(r) for r in self._http.call("GET", path)]

    def feature_definitions_version(self) -> int:
        return int(self._http.call("GET", "/features/version")["version"])
