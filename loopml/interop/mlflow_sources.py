"""Readers of an MLflow store: an ``mlruns`` folder by its file layout, or a tracking server over REST.

Both yield the same plain records, so the importer does not care where the
data comes from. The REST reader speaks MLflow's REST API with httpx (loopml
does not depend on the ``mlflow`` package); it reads artifacts through the
server's artifact proxy (``mlflow-artifacts:`` URIs) or, for ``file:`` URIs,
from the local disk. Anything that vanished or cannot be read while the
import runs raises ``SourceGone`` so the importer can report it and go on.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import httpx
import yaml

from loopml.errors import InvalidValueError

#: MLflow's file store writes run status as its protobuf enum number.
_FILE_STATUS = {1: "RUNNING", 2: "RUNNING", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_MODEL_STATUS = {1: "LOGGED_MODEL_PENDING", 2: "LOGGED_MODEL_READY", 3: "LOGGED_MODEL_UPLOAD_FAILED"}


class SourceGone(Exception):
    """Something listed by the source could not be read any more (deleted or changed mid-import)."""


@dataclass(frozen=True)
class SourceExperiment:
    experiment_id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class SourceRun:
    run_id: str
    experiment_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    user: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metric_keys: tuple[str, ...]


@dataclass(frozen=True)
class SourceLoggedModel:
    model_id: str
    name: str
    source_run_id: str
    status: str
    created_at: int
    model_type: str
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceVersion:
    version: int
    source: str
    run_id: str | None
    model_id: str | None
    stage: str
    description: str | None
    tags: Mapping[str, str]


@dataclass(frozen=True)
class SourceModel:
    name: str
    description: str | None
    tags: Mapping[str, str]
    aliases: Mapping[str, int]


class MlflowSource(Protocol):
    """What the importer reads from an MLflow store."""

    description: str

    def experiments(self) -> list[SourceExperiment]: ...
    def runs(self, experiment_id: str) -> list[SourceRun]: ...
    def metric_history(self, run: SourceRun, key: str) -> list[tuple[float, int, int]]: ...
    def run_artifacts(self, run: SourceRun) -> Iterator[tuple[str, bytes]]: ...
    def logged_models(self, experiment_id: str) -> list[SourceLoggedModel]: ...
    def model_artifacts(self, model: SourceLoggedModel) -> Iterator[tuple[str, bytes]]: ...
    def registered_models(self) -> list[SourceModel]: ...
    def versions(self, name: str) -> list[SourceVersion]: ...
    def close(self) -> None: ...


def open_source(location: str, *, token: str | None = None) -> MlflowSource:
    """A reader for ``location``: an ``http(s)://`` tracking URI, or an mlruns folder (path or ``file:`` URI)."""
    if location.startswith(("http://", "https://")):
        return RestSource(location, token=token)
    path = Path(unquote(urlparse(location).path) if location.startswith("file:") else location)
    if not path.is_dir():
        raise InvalidValueError(
            f"--from must be an MLflow tracking URI (http://...) or an mlruns folder; {location!r} is neither."
        )
    return FolderSource(path)


# -- the mlruns folder ------------------------------------------------------------------------
def _yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourceGone(f"{path.parent.name}: {path.name} disappeared") from exc
    if not isinstance(loaded, dict):
        raise SourceGone(f"{path.parent.name}: {path.name} is not a mapping")
    return loaded


def _key_files(folder: Path) -> dict[str, str]:
    """``params/``, ``tags/``: one file per key (a ``/`` in a key is a sub-folder), its text the value."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
    return out


def _files(root: Path) -> Iterator[tuple[str, bytes]]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except FileNotFoundError as exc:
                raise SourceGone(f"artifact {path.relative_to(root).as_posix()} disappeared") from exc
            yield path.relative_to(root).as_posix(), data


def _local_artifacts(uri: str, fallback: Path) -> Path:
    """The folder a ``file:`` artifact URI names (or ``fallback`` when the URI is not local)."""
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    if uri.startswith("/"):
        return Path(uri)
    return fallback


class FolderSource:
    """An ``mlruns`` folder written by MLflow's file store (``MLFLOW_ALLOW_FILE_STORE``, or MLflow 2)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"mlruns folder {root}"

    def close(self) -> None:
        return None

    def experiments(self) -> list[SourceExperiment]:
        found = []
        for meta in sorted(self.root.glob("*/meta.yaml")):
            data = _yaml(meta)
            if data.get("lifecycle_stage", "active") != "active" or "experiment_id" not in data:
                continue
            found.append(
                SourceExperiment(str(data["experiment_id"]), str(data["name"]), int(data.get("creation_time") or 0))
            )
        return found

    def runs(self, experiment_id: str) -> list[SourceRun]:
        runs = []
        for meta in sorted((self.root / experiment_id).glob("*/meta.yaml")):
            if meta.parent.name in ("models", "datasets", "traces"):
                continue
            try:
                data = _yaml(meta)
            except SourceGone:
                continue
            if "run_id" not in data or data.get("lifecycle_stage", "active") != "active":
                continue
            folder = meta.parent
            tags = _key_files(folder / "tags")
            runs.append(
                SourceRun(
                    run_id=str(data["run_id"]),
                    experiment_id=experiment_id,
                    name=str(data.get("run_name") or tags.get("mlflow.runName") or data["run_id"]),
                    status=_FILE_STATUS.get(int(data.get("status") or 1), "RUNNING"),
                    start_time=int(data.get("start_time") or 0),
                    end_time=None if data.get("end_time") is None else int(data["end_time"]),
                    user=str(data.get("user_id") or tags.get("mlflow.user") or "mlflow"),
                    params=_key_files(folder / "params"),
                    tags=tags,
                    metric_keys=tuple(sorted(_key_files(folder / "metrics"))),
                )
            )
        return runs

    def _run_folder(self, run: SourceRun) -> Path:
        folder = self.root / run.experiment_id / run.run_id
        if not (folder / "meta.yaml").is_file():
            raise SourceGone(f"run {run.run_id} disappeared from the source")
        return folder

    def metric_history(self, run: SourceRun, key: str) -> list[tuple[float, int, int]]:
        path = self._run_folder(run) / "metrics" / key
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as exc:
            raise SourceGone(f"run {run.run_id}: metric {key!r} disappeared") from exc
        points = []
        for line in lines:
            parts = line.split()
            if len(parts) >= 2:
                points.append((float(parts[1]), int(parts[0]), int(parts[2]) if len(parts) > 2 else 0))
        return points

    def run_artifacts(self, run: SourceRun) -> Iterator[tuple[str, bytes]]:
        folder = self._run_folder(run)
        uri = str(_yaml(folder / "meta.yaml").get("artifact_uri") or "")
        yield from _files(_local_artifacts(uri, folder / "artifacts"))

    def logged_models(self, experiment_id: str) -> list[SourceLoggedModel]:
        models = []
        for meta in sorted((self.root / experiment_id / "models").glob("*/meta.yaml")):
            data = _yaml(meta)
            if not data.get("source_run_id"):
                continue
            models.append(
                SourceLoggedModel(
                    model_id=str(data["model_id"]),
                    name=str(data.get("name") or "model"),
                    source_run_id=str(data["source_run_id"]),
                    status=_MODEL_STATUS.get(int(data.get("status") or 2), "LOGGED_MODEL_READY"),
                    created_at=int(data.get("creation_timestamp") or 0),
                    model_type=str(data.get("model_type") or ""),
                    params=_key_files(meta.parent / "params"),
                    tags=_key_files(meta.parent / "tags"),
                )
            )
        return models

    def model_artifacts(self, model: SourceLoggedModel) -> Iterator[tuple[str, bytes]]:
        for experiment in self.root.glob(f"*/models/{model.model_id}/meta.yaml"):
            uri = str(_yaml(experiment).get("artifact_location") or "")
            yield from _files(_local_artifacts(uri, experiment.parent / "artifacts"))
            return
        raise SourceGone(f"logged model {model.model_id} disappeared from the source")

    def registered_models(self) -> list[SourceModel]:
        models = []
        for meta in sorted((self.root / "models").glob("*/meta.yaml")):
            data = _yaml(meta)
            aliases = {str(k): int(v) for k, v in (data.get("aliases") or {}).items()}
            for alias_file in sorted((meta.parent / "aliases").glob("*")):
                aliases.setdefault(alias_file.name, int(alias_file.read_text().strip()))
            models.append(
                SourceModel(
                    name=str(data["name"]),
                    description=data.get("description") or None,
                    tags=_key_files(meta.parent / "tags"),
                    aliases=aliases,
                )
            )
        return models

    def versions(self, name: str) -> list[SourceVersion]:
        versions = []
        for meta in sorted((self.root / "models" / name).glob("version-*/meta.yaml")):
            data = _yaml(meta)
            if data.get("current_stage") == "Deleted_Internal":
                continue
            versions.append(
                SourceVersion(
                    version=int(data["version"]),
                    source=str(data.get("source") or ""),
                    run_id=data.get("run_id") or None,
                    model_id=data.get("model_id") or None,
                    stage=str(data.get("current_stage") or "None"),
                    description=data.get("description") or None,
                    tags=_key_files(meta.parent / "tags"),
                )
            )
        return sorted(versions, key=lambda v: v.version)


# -- a tracking server ------------------------------------------------------------------------
def _pairs(items: Any) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value", "")) for i in items or []}


class RestSource:
    """An MLflow tracking server (or anything speaking its REST API), read with httpx."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base = url.rstrip("/")
        self.description = f"MLflow tracking server {self.base}"
        self._http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, f"/api/2.0/mlflow{path}", **kwargs)
        if response.status_code == 404:
            raise SourceGone(f"{path}: {response.text[:200]}")
        if response.status_code >= 400:
            raise InvalidValueError(
                f"The MLflow server answered {response.status_code} to {path}: {response.text[:300]}"
            )
        body: dict[str, Any] = response.json()
        return body

    def _pages(self, method: str, path: str, key: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page_body = {**body, **({"page_token": token} if token else {})}
            page = self._call(method, path, **({"json": page_body} if method == "POST" else {"params": page_body}))
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def experiments(self) -> list[SourceExperiment]:
        found = self._pages(
            "POST", "/experiments/search", "experiments", {"max_results": 1000, "view_type": "ACTIVE_ONLY"}
        )
        return [
            SourceExperiment(str(e["experiment_id"]), str(e["name"]), int(e.get("creation_time") or 0)) for e in found
        ]

    def runs(self, experiment_id: str) -> list[SourceRun]:
        body = {"experiment_ids": [experiment_id], "max_results": 1000, "run_view_type": "ACTIVE_ONLY"}
        runs = []
        for raw in self._pages("POST", "/runs/search", "runs", body):
            info, data = raw["info"], raw.get("data", {})
            tags = _pairs(data.get("tags"))
            runs.append(
                SourceRun(
                    run_id=str(info["run_id"]),
                    experiment_id=experiment_id,
                    name=str(info.get("run_name") or tags.get("mlflow.runName") or info["run_id"]),
                    status=str(info.get("status") or "RUNNING"),
                    start_time=int(info.get("start_time") or 0),
                    end_time=None if info.get("end_time") is None else int(info["end_time"]),
                    user=str(info.get("user_id") or tags.get("mlflow.user") or "mlflow"),
                    params=_pairs(data.get("params")),
                    tags=tags,
                    metric_keys=tuple(sorted({str(m["key"]) for m in data.get("metrics") or []})),
                )
            )
        return runs

    def metric_history(self, run: SourceRun, key: str) -> list[tuple[float, int, int]]:
        body = {"run_id": run.run_id, "metric_key": key, "max_results": 25000}
        return [
            (float(p["value"]), int(p.get("timestamp") or 0), int(p.get("step") or 0))
            for p in self._pages("GET", "/metrics/get-history", "metrics", body)
        ]

    def _proxy_files(self, uri: str) -> Iterator[tuple[str, bytes]]:
        """Every file under an ``mlflow-artifacts:`` URI, through the server's artifact proxy."""
        root = uri.split(":", 1)[1].lstrip("/")
        if "/mlflow-artifacts/artifacts" in uri:  # the http form of the same URI
            root = uri.split("/mlflow-artifacts/artifacts", 1)[1].lstrip("/")
        pending = [""]
        while pending:
            folder = pending.pop()
            params = {"path": posixpath.join(root, folder) if folder else root}
            listed = self._http.get("/api/2.0/mlflow-artifacts/artifacts", params=params)
            if listed.status_code >= 400:
                raise SourceGone(f"artifacts under {folder or '/'} could not be listed ({listed.status_code})")
            for entry in listed.json().get("files", []):
                relpath = posixpath.join(folder, entry["path"]) if folder else entry["path"]
                if entry.get("is_dir"):
                    pending.append(relpath)
                    continue
                got = self._http.get(f"/api/2.0/mlflow-artifacts/artifacts/{root}/{relpath}")
                if got.status_code >= 400:
                    raise SourceGone(f"artifact {relpath} could not be read ({got.status_code})")
                yield relpath, got.content

    def _files_at(self, uri: str, what: str) -> Iterator[tuple[str, bytes]]:
        if uri.startswith("mlflow-artifacts:") or "/mlflow-artifacts/artifacts" in uri:
            yield from self._proxy_files(uri)
        elif uri.startswith("file:") or uri.startswith("/"):
            local = _local_artifacts(uri, Path("/nonexistent"))
            if not local.is_dir():
                if os.path.exists(local):
                    raise SourceGone(f"{what}: artifact folder is not a folder")
                return
            yield from _files(local)
        else:
            raise SourceGone(f"{what}: artifacts at {urlparse(uri).scheme}: URIs cannot be read by loopml's importer")

    def run_artifacts(self, run: SourceRun) -> Iterator[tuple[str, bytes]]:
        info = self._call("GET", "/runs/get", params={"run_id": run.run_id})["run"]["info"]
        yield from self._files_at(str(info.get("artifact_uri") or ""), f"run {run.run_id}")

    def logged_models(self, experiment_id: str) -> list[SourceLoggedModel]:
        found = []
        for raw in self._pages("POST", "/logged-models/search", "models", {"experiment_ids": [experiment_id]}):
            info = raw["info"]
            if not info.get("source_run_id"):
                continue
            found.append(
                SourceLoggedModel(
                    model_id=str(info["model_id"]),
                    name=str(info.get("name") or "model"),
                    source_run_id=str(info["source_run_id"]),
                    status=str(info.get("status") or "LOGGED_MODEL_READY"),
                    created_at=int(info.get("creation_timestamp_ms") or 0),
                    model_type=str(info.get("model_type") or ""),
                    params=_pairs(raw.get("data", {}).get("params")),
                    tags=_pairs(info.get("tags")),
                )
            )
        return found

    def model_artifacts(self, model: SourceLoggedModel) -> Iterator[tuple[str, bytes]]:
        info = self._call("GET", f"/logged-models/{model.model_id}")["model"]["info"]
        yield from self._files_at(str(info.get("artifact_uri") or ""), f"logged model {model.model_id}")

    def registered_models(self) -> list[SourceModel]:
        return [
            SourceModel(
                name=str(raw["name"]),
                description=raw.get("description") or None,
                tags=_pairs(raw.get("tags")),
                aliases={str(a["alias"]): int(a["version"]) for a in raw.get("aliases") or []},
            )
            for raw in self._pages("GET", "/registered-models/search", "registered_models", {"max_results": 1000})
        ]

    def versions(self, name: str) -> list[SourceVersion]:
        escaped = name.replace("'", "\\'")
        body = {"filter": f"name = '{escaped}'", "max_results": 10000}
        versions = [
            SourceVersion(
                version=int(raw["version"]),
                source=str(raw.get("source") or ""),
                run_id=raw.get("run_id") or None,
                model_id=raw.get("model_id") or None,
                stage=str(raw.get("current_stage") or "None"),
                description=raw.get("description") or None,
                tags=_pairs(raw.get("tags")),
            )
            for raw in self._pages("GET", "/model-versions/search", "model_versions", body)
        ]
        return sorted(versions, key=lambda v: v.version)
