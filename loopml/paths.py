"""The one path check: run-relative artifact paths, and local files written from them.

Artifact paths come from users and from clients of the server, and they become
names of local files when artifacts are downloaded or a model is loaded. One
that is absolute, climbs out with ``..``, hides a segment (``a//b``, ``./a``),
uses a backslash (a separator on Windows) or holds a control character could
address another run's files or, downloaded, the user's disk. So every backend,
the server and every download go through these two functions and nothing else:

- :func:`check_artifact_path` accepts a path only in its one canonical form;
- :func:`join_inside` joins a checked path to a local folder and refuses a
  result that resolves outside it (a symlink inside the folder included).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from loopml.errors import ArtifactPathError

MAX_PATH_LENGTH = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_artifact_path(path: object, *, folder: bool = False) -> str:
    """``path`` if it is a canonical run-relative artifact path; ArtifactPathError otherwise.

    With ``folder`` (a prefix to list or download) the empty path means the
    run's root and one trailing ``/`` is dropped; a file path is never empty.
    """
    if not isinstance(path, str):
        raise ArtifactPathError(f"Artifact path must be a string, got {type(path).__name__}.")
    if folder:
        if path in ("", "/"):
            return ""
        path = path.removesuffix("/")
    if not path:
        raise ArtifactPathError("Artifact path is empty; give a file name such as 'model/config.json'.")
    if len(path) > MAX_PATH_LENGTH:
        raise ArtifactPathError(f"Artifact path is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}.")
    if _CONTROL.search(path):
        raise ArtifactPathError(f"Artifact path {path!r} contains a control character.")
    if "\\" in path:
        raise ArtifactPathError(f"Artifact path {path!r} contains a backslash; use '/' to separate folders.")
    if path.startswith("/") or _DRIVE.match(path):
        raise ArtifactPathError(f"Artifact path {path!r} is absolute; artifact paths are relative to the run.")
    segments = path.split("/")
    if ".." in segments:
        raise ArtifactPathError(f"Artifact path {path!r} leaves the run's folder ('..' is not allowed).")
    if "" in segments or "." in segments:
        raise ArtifactPathError(f"Artifact path {path!r} has an empty or '.' segment; write it as 'folder/file'.")
    return path


def join_inside(root: str | os.PathLike[str], relative: str) -> Path:
    """``root / relative`` for a checked artifact path, refusing any result outside ``root``.

    The target is resolved (symlinks followed) before it is compared, so a link
    planted inside ``root`` cannot redirect a download elsewhere either.
    """
    base = Path(root).resolve()
    target = (base / check_artifact_path(relative, folder=True)).resolve()
    if target != base and not target.is_relative_to(base):
        raise ArtifactPathError(f"Artifact path {relative!r} would be written outside the destination folder.")
    return target
