"""The contract for applied feature definitions: versioned, audited JSON specs, and a cheap change counter.

The store knows nothing of ``loopml.features``: it keeps each definition's
canonical JSON under (kind, name, version). Applying a list is one transaction;
a definition whose fingerprint (sha256 of its canonical JSON) equals the
latest version's is left as it is, any other gets the next version and an
audit event ``feature.<kind>.apply``. ``feature_definitions_version`` grows
with every stored version, so a serving process can cache the definitions and
re-read them only when it changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.entities.features import FEATURE_KINDS, FeatureDefinitionRecord
from loopml.errors import FeatureDefinitionError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
#: Largest canonical JSON of one definition, in bytes.
MAX_SPEC_BYTES = 1_000_000
#: The path segment of each kind in the REST routes.
PLURAL = {"entity": "entities", "view": "views", "service": "services"}
#: Most definitions one apply call may hold.
MAX_DEFINITIONS = 1000


def canonical_json(spec: Mapping[str, Any]) -> str:
    """The one JSON text of ``spec`` that fingerprints are taken of (sorted keys, no spaces)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def check_definition(item: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], str, dict[str, Any] | None]:
    """(kind, name, spec, fingerprint, evidence) of one item ``{"kind", "name", "spec", "evidence"?}``.

    FeatureDefinitionError naming the field at fault: an unknown kind, a bad name, a spec that is
    not a JSON object naming itself, or one larger than MAX_SPEC_BYTES.
    """
    if not isinstance(item, Mapping):
        raise FeatureDefinitionError("Each feature definition must be an object with kind, name and spec.")
    kind, name, spec = item.get("kind"), item.get("name"), item.get("spec")
    if kind not in FEATURE_KINDS:
        raise FeatureDefinitionError(f"kind must be one of {', '.join(FEATURE_KINDS)}, got {kind!r}.")
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeatureDefinitionError(f"name {name!r} of a feature {kind} is not a valid name.")
    if not isinstance(spec, Mapping) or spec.get("name") != name:
        raise FeatureDefinitionError(f"spec of feature {kind} {name!r} must be an object whose name is {name!r}.")
    try:
        text = canonical_json(spec)
    except (TypeError, ValueError):
        raise FeatureDefinitionError(f"spec of feature {kind} {name!r} is not plain JSON.") from None
    if len(text) > MAX_SPEC_BYTES:
        raise FeatureDefinitionError(f"spec of feature {kind} {name!r} is larger than {MAX_SPEC_BYTES} bytes.")
    evidence = item.get("evidence")
    if evidence is not None and not isinstance(evidence, Mapping):
        raise FeatureDefinitionError(f"evidence of feature {kind} {name!r} must be an object.")
    fingerprint = hashlib.sha256(text.encode()).hexdigest()
    return kind, name, json.loads(text), fingerprint, None if evidence is None else dict(evidence)


def check_definitions(
    items: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str, dict[str, Any], str, dict[str, Any] | None]]:
    """Every item checked; duplicates of one (kind, name) in one call are refused."""
    if isinstance(items, (str, bytes, Mapping)) or len(items) > MAX_DEFINITIONS:
        raise FeatureDefinitionError(f"definitions must be a list of at most {MAX_DEFINITIONS} objects.")
    checked = [check_definition(item) for item in items]
    seen: set[tuple[str, str]] = set()
    for kind, name, *_ in checked:
        if (kind, name) in seen:
            raise FeatureDefinitionError(f"Feature {kind} {name!r} is listed twice in one apply.")
        seen.add((kind, name))
    return checked


def check_kind(kind: str) -> str:
    if kind not in FEATURE_KINDS:
        raise FeatureDefinitionError(f"kind must be one of {', '.join(FEATURE_KINDS)}, got {kind!r}.")
    return kind


class FeatureStore(ABC):
    """Applied entities, feature views and feature services, each a chain of immutable versions."""

    @abstractmethod
    def apply_feature_definitions(
        self, definitions: Sequence[Mapping[str, Any]], *, actor: str
    ) -> list[FeatureDefinitionRecord]:
        """Store each ``{"kind", "name", "spec", "evidence"?}`` as a new version when its fingerprint changed.

        One transaction: all are applied or none. Returns one record per item, in order,
        ``changed`` telling new versions from unchanged ones. Each new version is audited
        (``feature.<kind>.apply``, with ``evidence`` when given). FeatureDefinitionError on bad input.
        """

    @abstractmethod
    def get_feature_definition(self, kind: str, name: str, version: int | None = None) -> FeatureDefinitionRecord:
        """That version (default: the latest); FeatureViewNotFoundError when there is none."""

    @abstractmethod
    def list_feature_definitions(self, kind: str) -> list[FeatureDefinitionRecord]:
        """The latest version of every definition of ``kind``, by name."""

    @abstractmethod
    def feature_definition_history(self, kind: str, name: str) -> list[FeatureDefinitionRecord]:
        """Every version of one definition, oldest first (empty when there is none)."""

    @abstractmethod
    def feature_definitions_version(self) -> int:
        """A number that grows whenever any definition gets a new version (0: none yet). One indexed read."""

    def get_feature_view(self, name: str, version: int | None = None) -> FeatureDefinitionRecord:
        """A feature view's version (default: the latest)."""
        return self.get_feature_definition("view", name, version)

    def list_feature_views(self) -> list[FeatureDefinitionRecord]:
        """The latest version of every feature view."""
        return self.list_feature_definitions("view")

    def get_feature_service(self, name: str) -> FeatureDefinitionRecord:
        """A feature service's latest version."""
        return self.get_feature_definition("service", name)

    def list_feature_services(self) -> list[FeatureDefinitionRecord]:
        """The latest version of every feature service."""
        return self.list_feature_definitions("service")
