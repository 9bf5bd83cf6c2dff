"""The identifiers users type: ``runs:/<run_id>/<path>`` (and, later, ``models:/``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopml.errors import InvalidValueError

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class RunArtifactUri:
    """``runs:/<run_id>/<path>``; ``path`` may be "" for the whole run."""

    run_id: str
    path: str

    def __str__(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


def parse_runs_uri(uri: str) -> RunArtifactUri:
    """Split ``runs:/<run_id>/<path>``; InvalidValueError naming the expected form."""
    if not isinstance(uri, str) or not uri.startswith("runs:/"):
        raise InvalidValueError(f"Not a run artifact URI: {uri!r}. Expected runs:/<run_id>/<path>.")
    run_id, _, path = uri[len("runs:/") :].lstrip("/").partition("/")
    if not _RUN_ID.match(run_id):
        raise InvalidValueError(f"Malformed run id {run_id!r} in {uri!r}: expected 32 hex characters.")
    return RunArtifactUri(run_id=run_id, path=path.strip("/"))
