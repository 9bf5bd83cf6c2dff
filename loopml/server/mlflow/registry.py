"""MLflow's model registry calls over loopml's registry: models, versions, aliases, stages.

A version registered through MLflow points at an MLflow model folder in a
run's artifacts. loopml pins every version by the sha256 of a package
manifest (``loopml-model.json``); an MLflow folder has none, so registering
one writes a manifest beside its files listing each file's sha256 with the
flavor ``mlflow``. The version is then pinned like any other, and loopml's own
``load_model`` refuses it (flavor ``mlflow``, pickle), while the MLflow client
downloads the files through the artifact proxy and loads them itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from loopml.auth.guard import actor_for, ensure_role, needs
from loopml.entities.auth import Role
from loopml.entities.registry import ModelVersion, Stage
from loopml.entities.search import And, Comparison
from loopml.errors import ModelAlreadyExistsError
from loopml.interop.mlflow_layout import ensure_manifest, model_folder
from loopml.paths import check_artifact_path
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.mlflow import messages as m
from loopml.server.mlflow.errors import MlflowApiError, invalid
from loopml.server.mlflow.logged_models import read_model
from loopml.store import Store
from loopml.tracking.search import parse_filter
from loopml.uris import check_alias, check_model_name

router = APIRouter(tags=["mlflow"], route_class=AuthorizedRoute)  # the role before the body
Msg = Annotated[m.Message, Depends(m.read_message)]
_CLIENT = "mlflow-client"


def _version(msg: m.Message) -> int:
    number = m.integer(msg, "version")
    if number is None:
        raise invalid("Missing value for required parameter 'version'.")
    return number


def _name(msg: m.Message) -> str:
    return check_model_name(m.required_text(msg, "name"))


# -- registered models ------------------------------------------------------------------------
@router.post("/mlflow/registered-models/create")
def create_registered_model(msg: Msg, store: StoreDep, request: Request) -> dict[str, Any]:
    name = _name(msg)
    try:
        model = store.registry.create_model(
            name,
            description=m.text(msg, "description", required=False),
            tags=m.key_values(msg, "tags"),
            require_approval=False,
            actor=actor_for(request, _CLIENT),
        )
    except ModelAlreadyExistsError:
        raise MlflowApiError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.") from None
    return {"registered_model": m.model_json(model)}


@router.get("/mlflow/registered-models/get")
def get_registered_model(msg: Msg, store: StoreDep) -> dict[str, Any]:
    name = _name(msg)
    model = store.registry.get_model(name)
    return {"registered_model": m.model_json(model, _latest_per_stage(store, name))}


@router.get("/mlflow/registered-models/search")
def search_registered_models(msg: Msg, store: StoreDep) -> dict[str, Any]:
    max_results = m.integer(msg, "max_results", 100) or 100
    models = store.registry.search_models(parse_filter(m.text(msg, "filter", required=False)), max_results)
    return {"registered_models": [m.model_json(x, _latest_per_stage(store, x.name)) for x in models]}


@router.get("/mlflow/registered-models/get-latest-versions")
@router.post("/mlflow/registered-models/get-latest-versions")
@needs(Role.VIEWER)
def get_latest_versions(msg: Msg, store: StoreDep) -> dict[str, Any]:
    name = _name(msg)
    stages = msg.get("stages") or []
    wanted = {m.stage_of(s) for s in (stages if isinstance(stages, list) else [stages])}
    latest = [v for v in _latest_per_stage(store, name) if not wanted or v.stage in wanted]
    return {"model_versions": [m.version_json(v) for v in latest]}


def _latest_per_stage(store: Store, name: str) -> list[ModelVersion]:
    seen: dict[Stage, ModelVersion] = {}
    for version in store.registry.list_versions(name):  # newest first
        seen.setdefault(version.stage, version)
    return sorted(seen.values(), key=lambda v: v.version)


# -- versions ---------------------------------------------------------------------------------
@router.post("/mlflow/model-versions/create")
def create_model_version(msg: Msg, store: StoreDep, request: Request) -> dict[str, Any]:
    name = _name(msg)
    run_id, path = _source(store, msg)
    ensure_manifest(store, run_id, path, actor_for(request, _CLIENT))
    version = store.registry.create_version(
        name,
        run_id=run_id,
        source=f"runs:/{run_id}/{path}",
        description=m.text(msg, "description", required=False),
        tags=m.key_values(msg, "tags"),
        actor=actor_for(request, _CLIENT),
    )
    return {"model_version": m.version_json(version)}


def _source(store: Store, msg: m.Message) -> tuple[str, str]:
    """(run id, run-relative folder) of the model files a new version names."""
    model_id = m.text(msg, "model_id", required=False)
    source = m.required_text(msg, "source")
    if model_id is None and source.startswith("models:/") and "/" not in source[len("models:/") :]:
        model_id = source[len("models:/") :]
    if model_id is not None:
        run, _ = read_model(store, model_id)
        return run.run_id, model_folder(model_id)
    for prefix in ("runs:/", f"{m.ARTIFACT_SCHEME}/", f"{m.ARTIFACT_SCHEME}"):
        if source.startswith(prefix):
            head, _, rest = source[len(prefix) :].strip("/").partition("/")
            run_id = m.check_run_id(head, "source")
            given = msg.get("run_id")
            if given not in (None, "", run_id):
                raise invalid(f"Parameter 'run_id' ({given}) is not the run of 'source' ({run_id}).")
            if not rest:
                raise invalid("Parameter 'source' names a run, not a model folder inside it.")
            return run_id, check_artifact_path(rest)
    raise invalid(
        f"Invalid value {source!r} for parameter 'source': use models:/<model id>, runs:/<run id>/<path> "
        "or mlflow-artifacts:/<run id>/<path> (files stored on this server)."
    )


@router.get("/mlflow/model-versions/get")
def get_model_version(msg: Msg, store: StoreDep) -> dict[str, Any]:
    return {"model_version": m.version_json(store.registry.get_version(_name(msg), _version(msg)))}


@router.get("/mlflow/model-versions/get-download-uri")
def get_download_uri(msg: Msg, store: StoreDep) -> dict[str, Any]:
    version = store.registry.get_version(_name(msg), _version(msg))
    return {"artifact_uri": m.version_source(version)}


@router.get("/mlflow/model-versions/search")
def search_model_versions(msg: Msg, store: StoreDep) -> dict[str, Any]:
    text = m.text(msg, "filter", required=False)
    parsed = parse_filter(text)
    parts = list(parsed.items) if isinstance(parsed, And) else [] if parsed is None else [parsed]
    named = [p for p in parts if isinstance(p, Comparison) and p.key in ("name", "run_id") and p.op == "="]
    if len(named) != 1 or not isinstance(named[0].value, str):
        raise invalid(f"Unsupported filter {text!r}: use name = '<model>' [and ...] or run_id = '<run id>'.")
    rest = [p for p in parts if p is not named[0]]
    if named[0].key == "name":
        extra = None if not rest else rest[0] if len(rest) == 1 else And(tuple(rest))
        versions = store.registry.list_versions(named[0].value, filter=extra)
    elif rest:
        raise invalid(f"Unsupported filter {text!r}: run_id = '<run id>' takes no other clause.")
    else:
        versions = store.registry.versions_of_runs([named[0].value])
    max_results = m.integer(msg, "max_results", 10_000) or 10_000
    return {"model_versions": [m.version_json(v) for v in versions[:max_results]]}


@router.post("/mlflow/model-versions/transition-stage")
def transition_stage(msg: Msg, store: StoreDep, request: Request) -> dict[str, Any]:
    stage = m.stage_of(m.required_text(msg, "stage"))
    if stage is Stage.PRODUCTION:
        ensure_role(request, Role.ADMIN, "move a model version to production")
    archive = msg.get("archive_existing_versions", False)
    version = store.registry.transition(
        _name(msg),
        _version(msg),
        stage,
        actor=actor_for(request, _CLIENT),
        reason="MLflow transition-stage",
        archive_existing=archive is True or archive == "true",
    )
    return {"model_version": m.version_json(version)}


# -- aliases ----------------------------------------------------------------------------------
@router.post("/mlflow/registered-models/alias")
def set_alias(msg: Msg, store: StoreDep, request: Request) -> dict[str, Any]:
    alias = check_alias(m.required_text(msg, "alias"))
    store.registry.set_alias(_name(msg), alias, _version(msg), actor=actor_for(request, _CLIENT), reason=None)
    return {}


@router.delete("/mlflow/registered-models/alias")
def delete_alias(msg: Msg, store: StoreDep, request: Request) -> dict[str, Any]:
    alias = m.required_text(msg, "alias")
    store.registry.delete_alias(_name(msg), alias, actor=actor_for(request, _CLIENT), reason=None)
    return {}


@router.get("/mlflow/registered-models/alias")
def get_version_by_alias(msg: Msg, store: StoreDep) -> dict[str, Any]:
    version = store.registry.get_version_by_alias(_name(msg), m.required_text(msg, "alias"))
    return {"model_version": m.version_json(version)}
