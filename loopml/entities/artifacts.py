"""Artifacts as run-relative paths pointing at content-addressed blobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """A file of a run: its run-relative ``path`` and the sha256 of its bytes."""

    path: str
    digest: str
    size: int
