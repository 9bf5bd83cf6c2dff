"""The web UI: server-rendered pages over the Store, served by ``loopml server`` at ``/``.

``mount_ui(app)`` adds the pages (``loopml.ui.tracking``, ``loopml.ui.registry``,
``loopml.ui.audit``, ``loopml.ui.deployments``, ``loopml.ui.loop``, ``loopml.ui.monitoring``,
``loopml.ui.charts``, ``loopml.ui.compare``, ``loopml.ui.features``), the login and
logout routes (``loopml.ui.login``) and the static assets under
``/ui/static/`` (our stylesheet and scripts, and the vendored htmx and uPlot
with their licence files) to an app made by ``loopml.server.app.create_app``.
Pages are Jinja templates under ``loopml/templates/ui/``; they read through the
same Store the REST routes call, and every route but the login page and the
static files passes ``loopml.ui.guard.ui_authorize`` first. docs/ui.md says
why it is built this way.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from loopml.ui import (
    artifacts,
    audit,
    charts,
    compare,
    deployments,
    features,
    login,
    loop,
    monitoring,
    registry,
    tracking,
)
from loopml.ui.guard import LoginRequired, login_redirect, ui_authorize
from loopml.ui.sessions import SessionStore

__all__ = ["STATIC_PREFIX", "mount_ui", "ui_routers"]

STATIC_PREFIX = "/ui/static"


def ui_routers() -> tuple[object, ...]:
    """The routers whose every route needs a session when auth is on (for tests that enumerate them)."""
    return (
        tracking.router,
        artifacts.router,
        registry.router,
        audit.router,
        deployments.router,
        loop.router,
        monitoring.router,
        login.router,
        charts.router,
        compare.router,
        features.router,
    )


def mount_ui(app: FastAPI) -> None:
    """Add the UI's pages, login and static assets to ``app`` (call after ``app.state.authenticator`` is set)."""
    app.state.ui_sessions = SessionStore()
    app.add_exception_handler(LoginRequired, login_redirect)
    guarded = [Depends(ui_authorize)]
    app.include_router(login.public)
    app.include_router(login.router, dependencies=guarded)
    app.include_router(tracking.router, dependencies=guarded)
    app.include_router(charts.router, dependencies=guarded)
    app.include_router(compare.router, dependencies=guarded)
    app.include_router(artifacts.router, dependencies=guarded)
    app.include_router(registry.router, dependencies=guarded)
    app.include_router(monitoring.router, dependencies=guarded)
    app.include_router(audit.router, dependencies=guarded)
    app.include_router(deployments.router, dependencies=guarded)
    app.include_router(loop.router, dependencies=guarded)
    app.include_router(features.router, dependencies=guarded)
    base_css = files("loopml.templates").joinpath("base.css").read_bytes()

    # the stylesheet the monitoring report inlines, linked here: the UI's pages allow no inline style
    @app.get(f"{STATIC_PREFIX}/base.css", include_in_schema=False)
    def shared_stylesheet() -> Response:
        return Response(base_css, media_type="text/css")

    app.mount(STATIC_PREFIX, StaticFiles(packages=[("loopml.ui", "static")]), name="ui-static")
