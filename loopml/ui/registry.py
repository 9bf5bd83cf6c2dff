"""Registry pages: the models list, a model's page, and its lifecycle actions (request, approve, reject, transition).

The pages read through the Store the REST routes call. The actions are htmx
posts (the CSRF header rides on ``hx-headers``) that answer the re-rendered
lifecycle section; each has the role its API route has (editor to request,
admin to decide or to move a version to production), checked by the UI guard
before anything is looked up. The registry's own rules apply unchanged: a
model that requires approval cannot reach production without an approved
request, and the requester cannot approve it too. A refusal is shown in the
section, in the store's words.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopml.auth.guard import actor_for, needs, principal
from loopml.config import default_actor
from loopml.entities.auth import Role
from loopml.entities.registry import ModelVersion, RequestStatus, Stage
from loopml.errors import InvalidFilterError, LoopMLError
from loopml.registry.client import RegistryClient
from loopml.registry.lineage import LineageNode, lineage
from loopml.serving.entities import FEATURE_SERVICE_TAG
from loopml.store import Store
from loopml.tracking.client import TrackingClient
from loopml.tracking.search import parse_filter
from loopml.ui import table
from loopml.ui.errors import PageRoute
from loopml.ui.render import page
from loopml.ui.responsible import model_view

router = APIRouter(route_class=PageRoute)
#: Most models on the list; past it the page says so and asks for a narrower search.
MAX_MODELS = 500


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _may(request: Request, role: Role) -> bool:
    """Whether this request's principal has ``role`` (everyone, with auth off): what the buttons follow."""
    token = principal(request)
    return token is None or token.role.allows(role)


def _actor(request: Request) -> str:
    return actor_for(request, default_actor())


@router.get("/models", include_in_schema=False)
def models_page(request: Request, filter: str = "") -> Response:
    error: InvalidFilterError | None = None
    models = []
    try:
        models = _store(request).registry.search_models(parse_filter(filter), MAX_MODELS + 1)
    except InvalidFilterError as exc:  # shown above the list, with a caret under its position
        error = exc
    return page(
        request,
        "models.html",
        title="Models · loopml",
        filter=filter,
        error=error,
        models=models[:MAX_MODELS],
        more=len(models) > MAX_MODELS,
        format_time=table.format_time,
    )


def _selected(versions: list[ModelVersion], aliases: dict[str, int], version: int | None) -> ModelVersion | None:
    """The version asked for, else the champion, else the newest."""
    wanted = version if version is not None else aliases.get("champion")
    for v in versions:
        if v.version == wanted:
            return v
    return versions[0] if versions else None


def _lifecycle(request: Request, name: str, *, error: str | None = None, notice: str | None = None) -> dict[str, Any]:
    """What the lifecycle section shows: versions, aliases, requests and which actions this user may take."""
    store = _store(request)
    model = store.registry.get_model(name)
    versions = store.registry.list_versions(name, stage=None, filter=None)
    requests = store.registry.list_requests(name)
    approved = {r.version for r in requests if r.status is RequestStatus.APPROVED and r.to_stage is Stage.PRODUCTION}
    pending = {r.version for r in requests if r.status is RequestStatus.PENDING and r.to_stage is Stage.PRODUCTION}
    return {
        "model": model,
        "versions": versions,
        "requests": requests,
        "approved": approved,
        "pending": pending,
        "can_request": _may(request, Role.EDITOR),
        "can_decide": _may(request, Role.ADMIN),
        "action_error": error,
        "notice": notice,
        "format_time": table.format_time,
    }


def _lineage_rows(node: LineageNode) -> dict[str, Any]:
    """A lineage node for the template: its kind, label, a few readable attributes and its children."""
    attributes = {k: v for k, v in node.attributes.items() if k != "evidence" and v not in (None, "", {}, [])}
    for key, value in attributes.items():
        if (key.endswith("_at") or key.endswith("_time")) and isinstance(value, int):
            attributes[key] = table.format_time(value)
    return {
        "kind": node.kind,
        "id": node.id,
        "label": node.label,
        "attributes": attributes,
        "children": [_lineage_rows(child) for child in node.children],
    }


@router.get("/models/{name}", include_in_schema=False)
def model_page(request: Request, name: str, version: int | None = None) -> Response:
    store = _store(request)
    context = _lifecycle(request, name)
    selected = _selected(context["versions"], dict(context["model"].aliases), version)
    tree = None
    if selected is not None:
        tree = _lineage_rows(lineage(RegistryClient(TrackingClient(store)), selected.uri))
    return page(
        request,
        "model.html",
        title=f"{name} · model · loopml",
        selected=selected,
        lineage=tree,
        responsible=None if selected is None else model_view(selected.evidence),
        feature_service=None if selected is None else selected.tags.get(FEATURE_SERVICE_TAG),
        format_number=table.format_number,
        **context,
    )


def _section(request: Request, name: str, action: Any) -> Response:
    """Run ``action``; answer the re-rendered lifecycle section, with the store's refusal if it refused."""
    error = notice = None
    try:
        notice = action()
    except LoopMLError as exc:
        error = str(exc)
    # a refusal is the section's content, not a failed request: htmx swaps 200s only
    return page(request, "model_lifecycle.html", title="", **_lifecycle(request, name, error=error, notice=notice))


@router.post("/models/{name}/versions/{version}/request", include_in_schema=False)
def request_production(request: Request, name: str, version: int) -> Response:
    def act() -> str:
        created = _store(request).registry.create_request(
            name, version, Stage.PRODUCTION, actor=_actor(request), comment=None
        )
        return f"Requested production for version {version} (request {created.request_id})."

    return _section(request, name, act)


def _decide(request: Request, name: str, request_id: int, *, approve: bool) -> Response:
    def act() -> str:
        decided = _store(request).registry.decide_request(
            request_id, approve=approve, actor=_actor(request), comment=None
        )
        return f"Request {request_id} {decided.status.value}."

    return _section(request, name, act)


@router.post("/models/{name}/requests/{request_id}/approve", include_in_schema=False)
@needs(Role.ADMIN)
def approve_request(request: Request, name: str, request_id: int) -> Response:
    return _decide(request, name, request_id, approve=True)


@router.post("/models/{name}/requests/{request_id}/reject", include_in_schema=False)
@needs(Role.ADMIN)
def reject_request(request: Request, name: str, request_id: int) -> Response:
    return _decide(request, name, request_id, approve=False)


@router.post("/models/{name}/versions/{version}/production", include_in_schema=False)
@needs(Role.ADMIN)
def to_production(request: Request, name: str, version: int) -> Response:
    """Move a version to production (which moves @champion to it), using its approved request if it has one."""

    def act() -> str:
        registry = _store(request).registry
        approved = [
            r
            for r in registry.list_requests(name, version=version, status=RequestStatus.APPROVED)
            if r.to_stage is Stage.PRODUCTION
        ]
        moved = registry.transition(
            name,
            version,
            Stage.PRODUCTION,
            actor=_actor(request),
            reason=None,
            archive_existing=True,
            request_id=approved[0].request_id if approved else None,
        )
        return f"Version {moved.version} is now {moved.stage.value} (@champion)."

    return _section(request, name, act)
