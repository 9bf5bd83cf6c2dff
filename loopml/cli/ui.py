"""``loopml ui``: the web UI (and the API) on the embedded store, on this machine only."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output

HELP = (
    "Open the web UI on the embedded store (LOOPML_HOME, LOOPML_DB_URL): experiments, runs, run pages with "
    "their artifacts. It listens on 127.0.0.1 only, without auth; the REST API is served beside it under "
    "/api/v1. For a team, use 'loopml server --auth' instead."
)
# the same factory and switches as 'loopml server' (loopml.cli.server), read by every uvicorn worker
APP_FACTORY = "loopml.server.main:app_from_env"
AUTH_ENV = "LOOPML_SERVER_AUTH"
UI_ENV = "LOOPML_SERVER_UI"
HOST = "127.0.0.1"


def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port on 127.0.0.1.")] = 5000,
) -> None:
    import os

    import uvicorn

    from loopml.config import get_settings, hide_password

    os.environ[AUTH_ENV] = "0"
    os.environ[UI_ENV] = "1"
    settings = get_settings()
    console = output.console()
    console.print(f"[bold]loopml ui[/] at [cyan]http://{HOST}:{port}/[/]  (Ctrl+C to stop)")
    console.print(f"  store      {hide_password(settings.db_url)}")
    console.print(f"  artifacts  {settings.artifacts_url}")
    console.print("  auth       none: this machine only (use 'loopml server --auth' to share it)")
    uvicorn.run(APP_FACTORY, factory=True, host=HOST, port=port, log_level="warning")
