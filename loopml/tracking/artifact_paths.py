"""Run-relative artifact paths, confined to the run.

Users name artifacts with paths like ``plots/roc.png``. A path that is
absolute or climbs out with ``..`` could address another run's files (or,
downloaded, the user's disk), so it is refused before anything is stored.
"""

from __future__ import annotations

import posixpath
import re

from loopml.errors import ArtifactPathError

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH_LENGTH = 1024


def clean_artifact_path(path: str, *, allow_root: bool = False) -> str:
    """The normalised posix form of a run-relative artifact path.

    Raises ArtifactPathError for absolute paths, ``..`` segments, backslashes,
    NUL characters, or an empty path (unless ``allow_root``, which maps it to "").
    """
    if not isinstance(path, str):
        raise ArtifactPathError(f"Artifact path must be a string, got {type(path).__name__}.")
    if "\x00" in path:
        raise ArtifactPathError(f"Artifact path {path!r} contains a NUL character.")
    if "\\" in path:
        raise ArtifactPathError(f"Artifact path {path!r} contains a backslash; use '/' to separate folders.")
    if path.startswith("/") or _DRIVE.match(path):
        raise ArtifactPathError(f"Artifact path {path!r} is absolute; artifact paths are relative to the run.")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArtifactPathError(f"Artifact path {path!r} leaves the run's folder ('..' is not allowed).")
    cleaned = posixpath.join(*parts) if parts else ""
    if not cleaned and not allow_root:
        raise ArtifactPathError("Artifact path is empty; give a file name such as 'model/config.json'.")
    if len(cleaned) > MAX_PATH_LENGTH:
        raise ArtifactPathError(f"Artifact path is {len(cleaned)} characters long; the limit is {MAX_PATH_LENGTH}.")
    return cleaned
