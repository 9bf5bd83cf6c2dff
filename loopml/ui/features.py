"""Feature store pages: the catalogue of applied definitions, a feature view's page and a feature service's page.

``/features`` lists the latest version of every feature view, entity and
feature service, each list paged on the server (``PAGE_SIZE`` rows). A view's
page (``/features/views/<name>``, ``?version=N`` for an older one) shows its
schema, entities, ttl, source, every version with who applied it and what the
audit log recorded about it (the breaking changes of a forced apply), how far
it is materialized, and the services and model versions that use it.
``/features/services/<name>`` shows what a service selects and the model
versions that declare it. Everything is read through ``store.features``,
``store.audit`` and ``store.registry``, as the REST routes read it.

A source is described without its location: the file name of a parquet source
(never its folder, as no page shows where artifacts are stored), the dialect
and table of a SQL source (never its URL), a DataFrame's size and digest.
How far a view is materialized lives in the online store beside the rows (its
watermark), so the pages read it there: from ``LOOPML_ONLINE_STORE_URL`` when
set, else the ``online.db`` beside an embedded metadata database when it exists
(as ``loopml.features.online.default_online_url`` places it). A page never
creates an online store.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from loopml.entities.audit import AuditEvent
from loopml.entities.features import FeatureDefinitionRecord
from loopml.errors import FeatureDefinitionError, OnlineStoreError
from loopml.features.definitions import parse_ttl
from loopml.features.online import OnlineStore, default_online_url, open_online_store
from loopml.serving.entities import FEATURE_SERVICE_TAG, FEATURE_VIEW_TAG
from loopml.store import Store
from loopml.tracking.search import parse_filter
from loopml.ui import table
from loopml.ui.errors import PageRoute
from loopml.ui.render import page

router = APIRouter(route_class=PageRoute)
#: Rows of each list on the catalogue page.
PAGE_SIZE = 50
#: Most registered models searched for versions declaring a feature service (one query each).
MAX_MODELS = 500
#: Most model versions a view's page lists as trained on it.
MAX_USERS = 200
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
T = TypeVar("T")
_opening = threading.Lock()


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@dataclass(frozen=True, slots=True, kw_only=True)
class Paged:
    """One page of a list: its rows, its number, how many pages there are."""

    rows: list[Any]
    number: int
    pages: int
    total: int


def paged(items: Sequence[T], number: int) -> Paged:
    """Page ``number`` (from 1; past the end: the last) of ``items``."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    number = min(number, pages)
    start = (number - 1) * PAGE_SIZE
    return Paged(rows=list(items[start : start + PAGE_SIZE]), number=number, pages=pages, total=len(items))


def join_keys(spec: Mapping[str, Any]) -> list[str]:
    """Every entity's join keys of a view spec, in order."""
    return [key for entity in spec.get("entities", []) for key in entity.get("join_keys", [])]


def describe_source(source: Mapping[str, Any]) -> str:
    """A view's source in a few words, without where it lives: no folder, no URL, no credential."""
    kind = source.get("kind")
    if kind == "file":
        path = str(source.get("path", ""))
        scheme, remote, _ = path.partition("://")
        name = re.split(r"[\\/]", path.rstrip("/\\"))[-1]
        return f"parquet {name}" + (f" ({scheme})" if remote else "")
    if kind == "sql":
        dialect = str(source.get("url", "")).partition("://")[0].partition("+")[0] or "SQL"
        return f"{dialect} table {source['table']}" if source.get("table") else f"{dialect} query"
    if kind == "dataframe":
        return f"DataFrame of {source.get('rows')} rows, sha256 {str(source.get('sha256', ''))[:12]}"
    return str(kind)


_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def ttl_text(ttl: str) -> str:
    """A stored ttl (``"2592000s"``, ``"1500ms"``) in the largest unit it is a whole number of: ``30 d``."""
    try:
        seconds = parse_ttl(ttl).total_seconds()
    except FeatureDefinitionError:
        return ttl
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


# ---- materialization: the watermark each view has in the online store


def _online_url(store: Store) -> str | None:
    """The online store this server's materializations write to, or None when there is none to read."""
    explicit = os.environ.get("LOOPML_ONLINE_STORE_URL")
    if explicit:
        return explicit
    if store.url.startswith("sqlite:///"):
        beside = Path(store.url.removeprefix("sqlite:///")).parent / "online.db"
        return f"sqlite:///{beside}" if beside.is_file() else None
    url = default_online_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None  # opening it would create it: nothing has been materialized there
    return url


def _online(request: Request) -> OnlineStore | None:
    """The online store, opened once per app and URL."""
    url = _online_url(_store(request))
    if url is None:
        return None
    with _opening:  # pages render in a thread pool: open each store once
        opened: dict[str, OnlineStore] | None = getattr(request.app.state, "ui_online_stores", None)
        if opened is None:
            opened = request.app.state.ui_online_stores = {}
        if url not in opened:
            opened[url] = open_online_store(url)
        return opened[url]


@dataclass(frozen=True, slots=True, kw_only=True)
class Materialization:
    """How far a view is materialized: ``until`` and the lag behind now, or why it is not known."""

    until: str = ""
    lag: str = ""
    note: str = ""


def _materialization(request: Request, views: Sequence[str]) -> dict[str, Materialization]:
    """Per view, its watermark and lag (one read per view), or a note saying why there is none."""
    try:
        online = _online(request)
        if online is None:
            return {view: Materialization(note="not materialized") for view in views}
        marks = {view: online.get_watermark(view) for view in views}
    except OnlineStoreError as exc:  # the page still shows the definitions; the message names no credential
        return {view: Materialization(note=f"online store unavailable: {exc.headline}") for view in views}
    now = datetime.now(UTC)
    out = {}
    for view, mark in marks.items():
        if mark is None:
            out[view] = Materialization(note="not materialized")
        else:
            lag_ms = max(0, int((now - mark).total_seconds() * 1000))
            out[view] = Materialization(until=table.format_time(int(mark.timestamp() * 1000)),
                                        lag=table.format_duration(lag_ms))  # fmt: skip
    return out


# ---- who uses what


def declared_services(store: Store) -> dict[str, list[tuple[str, int]]]:
    """Per feature service, the (model, version)s whose version tag ``loopml.feature_service`` names it.

    The tag is on versions, which the registry searches per model: one query per registered model
    (at most ``MAX_MODELS``).
    """
    query = parse_filter(f"tags.`{FEATURE_SERVICE_TAG}` like '%'")
    declared: dict[str, list[tuple[str, int]]] = {}
    for model in store.registry.search_models(None, MAX_MODELS):
        for version in store.registry.list_versions(model.name, filter=query):
            declared.setdefault(version.tags[FEATURE_SERVICE_TAG], []).append((version.name, version.version))
    return declared


def trained_on(store: Store, view: str) -> list[tuple[str, int, str]]:
    """(model, version, view versions) of the model versions whose run's training data came from ``view``."""
    query = parse_filter(f"tags.`{FEATURE_VIEW_TAG}{view}` like '%'")
    runs = store.tracking.search_runs(None, query, [], MAX_USERS, None).runs
    tags = {run.run_id: run.tags.get(f"{FEATURE_VIEW_TAG}{view}", "") for run in runs}
    versions = store.registry.versions_of_runs(sorted(tags)) if tags else []
    return sorted((v.name, v.version, tags.get(v.run_id, "")) for v in versions)[:MAX_USERS]


def _applies(store: Store, kind: str, name: str) -> dict[int, AuditEvent]:
    """The audit event of each applied version of one definition, by version."""
    events = store.audit.list_events(action=f"feature.{kind}.apply", target=name, max_results=10_000)
    out = {}
    for event in events:
        _, _, version = event.target.rpartition("/")
        if event.target == f"{name}/{version}" and version.isdigit():
            out[int(version)] = event
    return out


def _history(store: Store, kind: str, name: str) -> list[dict[str, Any]]:
    """Every version of one definition, newest first, with what its audit event says about the change."""
    events = _applies(store, kind, name)
    rows = []
    for record in reversed(store.features.feature_definition_history(kind, name)):
        event = events.get(record.version)
        evidence = dict(event.evidence or {}) if event is not None else {}
        rows.append({"record": record, "changes": list(evidence.get("breaking_changes", [])),
                     "forced": bool(evidence.get("forced")), "used_by": list(evidence.get("used_by", []))})  # fmt: skip
    return rows


# ---- the pages


def _selections(record: FeatureDefinitionRecord) -> list[tuple[str, list[str]]]:
    return [(str(item["view"]), list(item["features"])) for item in record.spec.get("features", [])]


@router.get("/features", include_in_schema=False)
def catalogue_page(
    request: Request, views: PageNumber = 1, entities: PageNumber = 1, services: PageNumber = 1
) -> Response:
    store = _store(request)
    view_page = paged(store.features.list_feature_views(), views)
    entity_page = paged(store.features.list_feature_definitions("entity"), entities)
    service_page = paged(store.features.list_feature_services(), services)
    declared = declared_services(store) if service_page.rows else {}
    query = dict(request.query_params)
    return page(
        request,
        "features.html",
        title="Features · loopml",
        views=view_page,
        entities=entity_page,
        services=service_page,
        materialized=_materialization(request, [r.name for r in view_page.rows]),
        declared=declared,
        selections=_selections,
        join_keys=join_keys,
        describe_source=describe_source,
        ttl_text=ttl_text,
        page_url=lambda name, number: table.url_with("/features", query, **{name: str(number)}),
        format_time=table.format_time,
    )


@router.get("/features/views/{name}", include_in_schema=False)
def view_page(request: Request, name: str, version: Version = None) -> Response:
    store = _store(request)
    record = store.features.get_feature_view(name, version)
    latest = store.features.get_feature_view(name)
    using = [s for s in store.features.list_feature_services() if any(v == name for v, _ in _selections(s))]
    declared = declared_services(store) if using else {}
    return page(
        request,
        "feature_view.html",
        title=f"{name} · feature view · loopml",
        record=record,
        spec=record.spec,
        latest=latest.version,
        keys=join_keys(record.spec),
        source=describe_source(record.spec.get("source", {})),
        ttl=ttl_text(str(record.spec.get("ttl", ""))),
        history=_history(store, "view", name),
        materialized=_materialization(request, [name])[name],
        services=[(s.name, dict(_selections(s))[name], declared.get(s.name, [])) for s in using],
        trained=trained_on(store, name),
        format_time=table.format_time,
    )


@router.get("/features/services/{name}", include_in_schema=False)
def service_page(request: Request, name: str) -> Response:
    store = _store(request)
    record = store.features.get_feature_service(name)
    return page(
        request,
        "feature_service.html",
        title=f"{name} · feature service · loopml",
        record=record,
        selections=_selections(record),
        history=_history(store, "service", name),
        declared=declared_services(store).get(name, []),
        format_time=table.format_time,
    )
