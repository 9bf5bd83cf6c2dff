"""Applied feature definitions as the metadata store keeps them: versioned JSON specs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The kinds of definition the store versions.
FEATURE_KINDS = ("entity", "view", "service")


@dataclass(frozen=True, slots=True)
class FeatureDefinitionRecord:
    """One version of an entity, feature view or feature service (``spec``: its canonical JSON).

    ``fingerprint`` is the sha256 of the canonical JSON; a new version is stored only when it changes.
    ``changed`` says whether the apply call that returned this record stored it (False: unchanged).
    """

    kind: str
    name: str
    version: int
    fingerprint: str
    spec: Mapping[str, Any]
    created_at: int
    created_by: str
    changed: bool = False
