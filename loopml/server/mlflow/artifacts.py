"""MLflow's artifact proxy (``/mlflow-artifacts/artifacts/<run id>/<path>``) over loopml's artifact store.

Every run's ``artifact_uri`` is ``mlflow-artifacts:/<run id>``, so the MLflow
client uploads, lists and downloads through these routes. An upload streams
the body into the content-addressed blob store and points the run's artifact
index at it (one index row per file, as ``loopml.log_artifact`` does); a
download streams the blob back, its sha256 checked as it is read. Paths go
through ``loopml.paths.check_artifact_path``. Uploads are bounded by the
server's JSON body limit (32 MiB a file); MLflow's multipart upload is not offered.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from loopml.entities.artifacts import ArtifactEntry
from loopml.errors import ArtifactNotFoundError
from loopml.paths import check_artifact_path
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.mlflow import messages as m
from loopml.server.mlflow.errors import invalid, not_found
from loopml.server.streams import request_body_reader
from loopml.store import Store

router = APIRouter(tags=["mlflow"], route_class=AuthorizedRoute)  # the role before the body
Msg = Annotated[m.Message, Depends(m.read_message)]


def split_proxy_path(path: str, *, folder: bool = False) -> tuple[str, str]:
    """``<run id>/<artifact path>`` -> (run id, checked run-relative path)."""
    head, _, rest = path.strip("/").partition("/")
    run_id = m.check_run_id(head, "path")
    if not rest and not folder:
        raise invalid("Parameter 'path' names a run, not an artifact file.")
    return run_id, check_artifact_path(rest, folder=folder) if rest else ""


def list_folder(store: Store, run_id: str, folder: str) -> list[dict[str, Any]]:
    """The files and sub-folders directly inside ``folder`` of the run, with paths relative to ``folder``."""
    entries = store.tracking.list_artifacts(run_id, folder)
    base = f"{folder}/" if folder else ""
    files: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not entry.path.startswith(base):
            continue  # the folder is itself a file: MLflow lists nothing for it
        name, slash, _ = entry.path[len(base) :].partition("/")
        if slash:
            files.setdefault(name, {"path": name, "is_dir": True})
        else:
            files[name] = {"path": name, "is_dir": False, "file_size": entry.size}
    return [files[k] for k in sorted(files)]


@router.put("/mlflow-artifacts/artifacts/{artifact_path:path}")
def upload_artifact(artifact_path: str, request: Request, store: StoreDep) -> dict[str, Any]:
    run_id, path = split_proxy_path(artifact_path)
    store.tracking.get_run(run_id)  # a 404 before any byte is stored
    digest, size = store.artifacts.write_stream(request_body_reader(request))
    store.tracking.log_artifact_entries(run_id, [ArtifactEntry(path, digest, size)])
    return {}


@router.get("/mlflow-artifacts/artifacts/{artifact_path:path}")
def download_artifact(artifact_path: str, store: StoreDep) -> StreamingResponse:
    run_id, path = split_proxy_path(artifact_path)
    try:
        entry = store.tracking.get_artifact_entry(run_id, path)
    except ArtifactNotFoundError:
        raise not_found(f"Run {run_id} has no artifact file {path!r}.") from None
    filename = posixpath.basename(path)
    return StreamingResponse(
        store.artifacts.open_stream(entry.digest),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Content-Length": str(entry.size)},
    )


@router.get("/mlflow-artifacts/artifacts")
def list_proxy_artifacts(msg: Msg, store: StoreDep) -> dict[str, Any]:
    path = m.text(msg, "path", required=False) or ""
    if not path.strip("/"):
        return {"files": []}  # the root holds no file of its own: each run is a folder under it
    run_id, folder = split_proxy_path(path, folder=True)
    return {"files": list_folder(store, run_id, folder)}


@router.get("/mlflow/artifacts/list")
def list_run_artifacts(msg: Msg, store: StoreDep) -> dict[str, Any]:
    run_id = m.run_id(msg)
    folder = check_artifact_path(m.text(msg, "path", required=False) or "", folder=True)
    files = list_folder(store, run_id, folder)
    prefix = f"{folder}/" if folder else ""
    return {
        "root_uri": m.artifact_uri(run_id),
        "files": [{**f, "path": prefix + f["path"]} for f in files],
    }
