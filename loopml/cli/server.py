"""``loopml server``: the shared tracking and registry service for a team."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from loopml.cli import output
from loopml.config import hide_password

HELP = (
    "Serve the tracking and registry API over REST (FastAPI + uvicorn) under /api/v1, with the OpenAPI "
    "document at /api/v1/openapi.json. Clients use it with LOOPML_TRACKING_URI=http://HOST:PORT."
)

# The CLI and the server are sibling shells: uvicorn imports the app factory by name,
# and the factory reads the auth switch from the environment in every worker.
APP_FACTORY = "loopml.server.main:app_from_env"
AUTH_ENV = "LOOPML_SERVER_AUTH"
MAX_UPLOAD_ENV = "LOOPML_SERVER_MAX_UPLOAD_BYTES"
PRESIGN_ENV = "LOOPML_SERVER_ARTIFACTS_PRESIGN_S"  # loopml.server.main.PRESIGN_ENV
UI_ENV = "LOOPML_SERVER_UI"  # loopml.server.main.UI_ENV
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024**3  # loopml.server.body_limit's default
#: uvicorn's log levels; checked here, since uvicorn answers another one with a KeyError traceback
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


def _warn_without_admin(console: Any) -> None:
    """With --auth and no admin token yet, nobody could manage tokens: say how to make the first one."""
    from loopml.auth.tokens import list_tokens
    from loopml.config import get_settings
    from loopml.entities.auth import Role
    from loopml.store import open_store

    settings = get_settings()
    store = open_store(settings.db_url, artifacts_url=settings.artifacts_url)
    try:
        if not any(t.role is Role.ADMIN for t in list_tokens(store)):
            console.print(
                "  [yellow]no admin token yet[/]: on this machine run "
                "[bold]loopml tokens create --name admin --role admin[/] (it writes to the store directly)"
            )
    finally:
        store.close()


def _max_upload_bytes() -> int:
    """The upload limit every worker will read from the environment; checked here so a bad value fails once."""
    import os

    from loopml.errors import InvalidValueError

    raw = os.environ.get(MAX_UPLOAD_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidValueError(f"{MAX_UPLOAD_ENV} must be a whole number of bytes from 1, got {raw!r}.")
    return int(raw)


def tls_options(certfile: str | None, keyfile: str | None) -> dict[str, str]:
    """uvicorn's ``ssl_certfile``/``ssl_keyfile``, checked here: both or neither, and each readable."""
    from loopml.errors import InvalidValueError

    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        raise InvalidValueError("--ssl-certfile and --ssl-keyfile go together: give both, or neither.")
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise InvalidValueError(f"{flag}: the file cannot be read ({exc.strerror}).") from None
    return {"ssl_certfile": certfile, "ssl_keyfile": keyfile}


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
    auth: Annotated[
        bool, typer.Option("--auth/--no-auth", help="Require API tokens (create them with 'loopml tokens create').")
    ] = False,
    max_upload_bytes: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="BYTES",
            help="Largest artifact upload (default: LOOPML_SERVER_MAX_UPLOAD_BYTES or 5 GiB); JSON bodies stay at 32 MiB.",
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(case_sensitive=False, help="uvicorn log level.")] = "info",
    allow_insecure_ui: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-ui",
            help="Serve the web UI on a non-loopback --host without --auth (anyone who reaches it may read and write).",
        ),
    ] = False,
    artifacts_presign: Annotated[
        bool,
        typer.Option(
            "--artifacts-presign",
            help="Answer artifact downloads with a presigned S3 URL (307) instead of proxying the bytes.",
        ),
    ] = False,
    presign_expires: Annotated[
        int, typer.Option("--presign-expires", min=1, max=7 * 24 * 3600, metavar="SECONDS", help="Presigned URL lifetime.")
    ] = 300,
    ssl_certfile: Annotated[
        str | None, typer.Option("--ssl-certfile", metavar="FILE", help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    ssl_keyfile: Annotated[
        str | None, typer.Option("--ssl-keyfile", metavar="FILE", help="The certificate's private key (PEM).")
    ] = None,
    log_sink: Annotated[
        str | None,
        typer.Option(
            "--log-sink",
            metavar="SINK",
            help="Where predictions logged through this server live: sql or parquet (default: "
            "LOOPML_PREDICTION_LOG or sql).",
        ),
    ] = None,
) -> None:
    import os

    import uvicorn

    from loopml.config import get_settings, is_loopback_host

    if db_url:
        os.environ["LOOPML_DB_URL"] = db_url
    if artifacts_url:
        os.environ["LOOPML_ARTIFACTS_URL"] = artifacts_url
    if log_sink is not None:  # read by the store each worker opens
        from loopml.store.predictions import SINK_ENV, check_sink

        os.environ[SINK_ENV] = check_sink(log_sink)
    os.environ[AUTH_ENV] = "1" if auth else "0"
    os.environ[PRESIGN_ENV] = str(presign_expires) if artifacts_presign else ""
    tls = tls_options(ssl_certfile, ssl_keyfile)
    ui = auth or allow_insecure_ui or is_loopback_host(host)
    os.environ[UI_ENV] = "1" if ui else "0"
    if max_upload_bytes is not None:
        os.environ[MAX_UPLOAD_ENV] = str(max_upload_bytes)
    upload_limit = _max_upload_bytes()
    settings = get_settings()
    shown = hide_password(settings.db_url)
    console = output.console()
    scheme = "https" if tls else "http"
    console.print(f"[bold]loopml server[/] at [cyan]{scheme}://{host}:{port}/api/v1[/]  (docs: /api/v1/docs)")
    console.print(f"  store      {shown}")
    console.print(f"  artifacts  {settings.artifacts_url}" + ("  (downloads presigned)" if artifacts_presign else ""))
    if auth:
        console.print("  auth       API tokens (Authorization: Bearer …; roles viewer, editor, admin)")
        _warn_without_admin(console)
    else:
        console.print("  auth       none (every client may read and write; use --auth to require tokens)")
    if ui:
        console.print(f"  web UI     [cyan]{scheme}://{host}:{port}/[/]")
    else:
        console.print(
            f"  web UI     [yellow]off[/]: {host} is not a loopback address and auth is off; "
            "use --auth (or --allow-insecure-ui on a trusted network)"
        )
    console.print(f"  uploads    up to {upload_limit:,} bytes per artifact (--max-upload-bytes)")
    console.print(f"  workers    {workers}")
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        ssl_certfile=tls.get("ssl_certfile"),
        ssl_keyfile=tls.get("ssl_keyfile"),
    )
