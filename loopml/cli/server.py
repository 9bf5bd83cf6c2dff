"""``loopml server``: the shared tracking and registry service for a team."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output

HELP = (
    "Serve the tracking and registry API over REST (FastAPI + uvicorn) under /api/v1, with the OpenAPI "
    "document at /api/v1/openapi.json. Clients use it with LOOPML_TRACKING_URI=http://HOST:PORT."
)

# The CLI and the server are sibling shells: uvicorn imports the app factory by name.
APP_FACTORY = "loopml.server.main:app_from_env"


def server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 5050,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (stateless; share the store).")] = 1,
    db_url: Annotated[
        str | None, typer.Option("--db-url", metavar="URL", help="Metadata store (default: LOOPML_DB_URL or SQLite).")
    ] = None,
    artifacts_url: Annotated[
        str | None, typer.Option("--artifacts-url", metavar="URL", help="Artifact store (default: LOOPML_ARTIFACTS_URL).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    import os

    import uvicorn

    from loopml.config import get_settings

    if db_url:
        os.environ["LOOPML_DB_URL"] = db_url
    if artifacts_url:
        os.environ["LOOPML_ARTIFACTS_URL"] = artifacts_url
    settings = get_settings()
    from sqlalchemy.engine import make_url

    shown = make_url(settings.db_url).render_as_string(hide_password=True)
    console = output.console()
    console.print(f"[bold]loopml server[/] at [cyan]http://{host}:{port}/api/v1[/]  (docs: /api/v1/docs)")
    console.print(f"  store      {shown}")
    console.print(f"  artifacts  {settings.artifacts_url}")
    console.print("  auth       none (every client may read and write; token auth is not implemented yet)")
    console.print(f"  workers    {workers}")
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level)
