"""Deployment pages: every served model's routing, a model's deployment history and live traffic, and rollback.

``/deployments`` lists the current deployment of every model (one query);
``/deployments/<model>`` shows its routing (target, the version it resolves
to, canary version and share, shadow), its history, and charts of the
prediction log per role (main, canary, shadow): requests per minute, latency
p50/p95/p99 and error rate. The chart data is ``/deployments/<model>/traffic.json``,
bucketed on the server by ``loopml.monitoring.operations.operations`` (the
operations summary the monitoring reports use), so a chart is at most a few
hundred points whatever the traffic. Rollback is an htmx post with the editor
role the API's rollback route has; the store audits it as it does for the API,
and a refusal (nothing to roll back) is shown in the routing section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from loopml.auth.guard import actor_for, needs, principal
from loopml.config import default_actor
from loopml.entities.auth import Role
from loopml.errors import LoopMLError
from loopml.store import Store
from loopml.timestamps import now_ms
from loopml.ui import table
from loopml.ui.errors import PageRoute
from loopml.ui.render import page

router = APIRouter(route_class=PageRoute)
#: Most history entries shown on a model's page.
HISTORY = 50
#: Most requests read for the charts of one window; past it the charts say so.
MAX_REQUESTS = 200_000
ROLES = ("main", "canary", "shadow")


@dataclass(frozen=True)
class Window:
    """A chart window: how far back it reaches and the bucket that keeps it under ~500 points."""

    label: str
    span_ms: int
    bucket: str  # a pandas offset alias, as operations() takes it
    bucket_ms: int


_MINUTE = 60_000
WINDOWS = {
    "1h": Window("last hour", 60 * _MINUTE, "1min", _MINUTE),
    "6h": Window("last 6 hours", 360 * _MINUTE, "1min", _MINUTE),
    "24h": Window("last 24 hours", 1440 * _MINUTE, "5min", 5 * _MINUTE),
    "7d": Window("last 7 days", 7 * 1440 * _MINUTE, "30min", 30 * _MINUTE),
}


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _may_rollback(request: Request) -> bool:
    token = principal(request)
    return token is None or token.role.allows(Role.EDITOR)


@router.get("/deployments", include_in_schema=False)
def deployments_page(request: Request) -> Response:
    current = sorted(_store(request).serving.current_deployments(None), key=lambda d: d.name)
    return page(request, "deployments.html", title="Deployments · loopml", deployments=current,
                format_time=table.format_time)  # fmt: skip


def _routing(request: Request, name: str, *, error: str | None = None, notice: str | None = None) -> dict[str, Any]:
    """What the routing section shows: the current deployment, its history and whether this user may roll back."""
    serving = _store(request).serving
    history = serving.list_deployments(name, max_results=HISTORY + 1)
    current = serving.current_deployment(name)
    return {
        "name": name,
        "current": current,
        "history": history[:HISTORY],
        "more_history": len(history) > HISTORY,
        "can_rollback": _may_rollback(request),
        "action_error": error,
        "notice": notice,
        "format_time": table.format_time,
    }


@router.get("/deployments/{name}", include_in_schema=False)
def deployment_page(request: Request, name: str, window: str = "24h") -> Response:
    chosen = window if window in WINDOWS else "24h"
    return page(
        request,
        "deployment.html",
        title=f"{name} · deployment · loopml",
        window=chosen,
        windows={key: w.label for key, w in WINDOWS.items()},
        **_routing(request, name),
    )


def _number(value: Any, digits: int = 4) -> float | None:
    """A JSON-safe float (None for NaN), rounded: the charts need no more."""
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


def traffic(store: Store, name: str, window: Window, *, until_ms: int) -> dict[str, Any]:
    """Per-role series over ``window`` ending at ``until_ms``, on a shared grid of bucket starts (seconds)."""
    import pandas as pd

    from loopml.monitoring.operations import operations

    since_ms = until_ms - window.span_ms
    records = store.serving.read_predictions(name, since=since_ms, until=until_ms, max_results=MAX_REQUESTS)
    log = pd.DataFrame(
        {
            "time": pd.to_datetime([r.time for r in records], unit="ms", utc=True),
            "role": [r.role for r in records],
            "latency_ms": [r.latency_ms for r in records],
            "status": [r.status for r in records],
        }
    )
    first = since_ms - since_ms % window.bucket_ms
    grid = list(range(first, until_ms, window.bucket_ms))
    index = {start: i for i, start in enumerate(grid)}
    series: dict[str, dict[str, list[float | None]]] = {}
    if len(log):
        summary = operations(log, bucket=window.bucket, by="role")
        per_minute = _MINUTE / window.bucket_ms
        for role in ROLES:
            rows = summary[summary["role"] == role]
            if rows.empty:
                continue
            columns: dict[str, list[float | None]] = {
                key: [None] * len(grid) for key in ("rate", "p50", "p95", "p99", "error_rate")
            }
            starts = rows["bucket"].dt.as_unit("ms").astype("int64").tolist()  # bucket starts in ms since the epoch
            figures = zip(starts, rows["n"].tolist(), rows["latency_p50_ms"].tolist(), rows["latency_p95_ms"].tolist(),
                          rows["latency_p99_ms"].tolist(), rows["error_rate"].tolist(), strict=True)  # fmt: skip
            for start, n, p50, p95, p99, errors in figures:
                at = index.get(int(start))
                if at is None:
                    continue
                columns["rate"][at] = _number(n * per_minute)
                columns["p50"][at] = _number(p50)
                columns["p95"][at] = _number(p95)
                columns["p99"][at] = _number(p99)
                columns["error_rate"][at] = _number(errors)
            series[role] = columns
    return {
        "model": name,
        "window": window.label,
        "bucket_s": window.bucket_ms // 1000,
        "x": [start / 1000 for start in grid],
        "series": series,
        "requests": len(records),
        "limited": len(records) >= MAX_REQUESTS,
    }


@router.get("/deployments/{name}/traffic.json", include_in_schema=False)
def traffic_data(request: Request, name: str, window: Annotated[str, Query(max_length=8)] = "24h") -> Response:
    chosen = WINDOWS.get(window, WINDOWS["24h"])
    return JSONResponse(traffic(_store(request), name, chosen, until_ms=now_ms()))


@router.post("/deployments/{name}/rollback", include_in_schema=False)
@needs(Role.EDITOR)
def rollback(request: Request, name: str) -> Response:
    """Return ``name`` to its previous deployment (audited by the store); answer the re-rendered routing section."""
    error = notice = None
    try:
        restored = _store(request).serving.rollback_deployment(
            name, actor=actor_for(request, default_actor()), reason="rolled back from the web UI"
        )
        notice = f"Rolled back: now serving {restored.target}" + (
            f" (version {restored.version})." if restored.version is not None and restored.alias else "."
        )
    except LoopMLError as exc:  # nothing to roll back: the section says why, in the store's words
        error = str(exc)
    return page(request, "deployment_routing.html", title="", **_routing(request, name, error=error, notice=notice))
