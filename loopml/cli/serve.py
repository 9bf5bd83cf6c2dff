"""``loopml serve``, ``loopml deploy``, ``loopml rollback`` and ``loopml deployments list``.

``serve`` starts the prediction service (``loopml.serving``), a process of
its own apart from ``loopml server``; the others record and show the
deployments it follows, in the store the environment names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output
from loopml.cli.server import LogLevel

if TYPE_CHECKING:
    from rich.console import Console

SERVE_HELP = (
    "Serve predictions from registered models (FastAPI + uvicorn): POST /v1/models/NAME/predict, "
    "NAME@ALIAS/predict, NAME/versions/V/predict, the KServe v2 /v2/models/NAME/infer, /v1/feedback, "
    "/v1/models, /healthz, /readyz, /metrics. Follows deployments (loopml deploy) and alias moves without a "
    "restart, and logs every prediction to the store."
)
DEPLOY_HELP = (
    "Serve NAME with a version or an alias (servers follow the alias when it moves). "
    "--canary V:PERCENT sends that share of requests to version V; --shadow V runs V on a copy of the traffic."
)
ROLLBACK_HELP = "Return NAME to the deployment before the current one."

deployments_app = typer.Typer(help="Show what is deployed.", no_args_is_help=True)


def serve(
    specs: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME@ALIAS|NAME/VERSION|NAME]...", help="Models to serve (same as --models)."),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            "-m",
            metavar="NAME@ALIAS",
            help="A model to serve: NAME@ALIAS, NAME/VERSION or NAME (repeat, or separate with commas). "
            "They load before the server is ready; a deployment in the store takes precedence.",
        ),
    ] = None,
    all_models: Annotated[
        bool, typer.Option("--all", help="Serve every model of the store, each loaded on its first request (default).")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, each with its own model cache.")] = 1,
    max_loaded: Annotated[int, typer.Option("--max-loaded", min=1, help="Most model versions in memory.")] = 100,
    max_memory: Annotated[
        str | None,
        typer.Option("--max-memory", metavar="SIZE", help="Most memory for models, e.g. 4G (by package size)."),
    ] = None,
    auth: Annotated[
        bool, typer.Option("--auth/--no-auth", help="Require API tokens: viewer predicts, editor sends feedback.")
    ] = False,
    log_predictions: Annotated[
        bool, typer.Option("--log/--no-log", help="Log every request and answer to the store (in the background).")
    ] = True,
    log_queue: Annotated[
        int, typer.Option("--log-queue", min=1, help="Records the log queue holds before it sheds (counted).")
    ] = 10_000,
    log_queue_bytes: Annotated[
        str | None,
        typer.Option(
            "--log-queue-bytes",
            metavar="SIZE",
            help="Most bytes of request bodies and answers the log holds while the store is slow or down, e.g. 1G "
            "(default 512M); past it, records are shed (counted).",
        ),
    ] = None,
    log_sink: Annotated[
        str | None,
        typer.Option(
            "--log-sink",
            metavar="SINK",
            help="Where the log lives: sql (the store's table) or parquet (files by model and day beside the "
            "artifacts). Default: LOOPML_PREDICTION_LOG or sql.",
        ),
    ] = None,
    log_retention: Annotated[
        str | None,
        typer.Option(
            "--log-retention",
            metavar="AGE",
            help="Prune logged predictions older than AGE (e.g. 30d) once an hour. Default: "
            "LOOPML_PREDICTION_LOG_RETENTION, or keep everything.",
        ),
    ] = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.05, help="Seconds between reads of deployments and aliases.")
    ] = 1.0,
    trust: Annotated[
        list[str] | None, typer.Option("--trust", metavar="TYPE", help="A type skops may load (repeat).")
    ] = None,
    unsafe_pickle: Annotated[bool, typer.Option("--unsafe-pickle", help="Allow models saved with pickle.")] = False,
    db_url: Annotated[
        str | None, typer.Option("--db-url", metavar="URL", help="Metadata store (default: LOOPML_DB_URL or SQLite).")
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(case_sensitive=False, help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option("--access-log", help="uvicorn's per-request access log.")] = False,
    ssl_certfile: Annotated[
        str | None, typer.Option("--ssl-certfile", metavar="FILE", help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    ssl_keyfile: Annotated[
        str | None, typer.Option("--ssl-keyfile", metavar="FILE", help="The certificate's private key (PEM).")
    ] = None,
) -> None:
    import os

    from loopml.cli.server import tls_options
    from loopml.config import get_settings, hide_password
    from loopml.errors import InvalidValueError
    from loopml.serving.cache import parse_size
    from loopml.serving.main import serve as run
    from loopml.serving.watcher import parse_model_spec

    names = [part.strip() for item in [*(specs or []), *(models or [])] for part in item.split(",") if part.strip()]
    if names and all_models:
        raise InvalidValueError("Use either --models (or NAME arguments) or --all, not both.")
    parsed = [parse_model_spec(name) for name in names]  # refuse a typo before uvicorn starts
    memory = parse_size(max_memory) if max_memory else None
    queue_bytes = parse_size(log_queue_bytes) if log_queue_bytes else None
    tls = tls_options(ssl_certfile, ssl_keyfile)
    if db_url:  # the flag wins over the environment (the service and its workers read these)
        os.environ["LOOPML_DB_URL"] = db_url
        os.environ["LOOPML_TRACKING_URI"] = db_url
    if log_sink is not None:  # read by the store each worker opens
        from loopml.store.predictions import SINK_ENV, check_sink

        os.environ[SINK_ENV] = check_sink(log_sink)  # a typo is refused before uvicorn starts
    if log_retention is not None:  # read by each worker's log writer
        from loopml.serving.predlog import RETENTION_ENV
        from loopml.store.serving import parse_retention

        parse_retention(log_retention)
        os.environ[RETENTION_ENV] = log_retention.strip()
    settings = get_settings()
    console = output.console()
    scheme = "https" if tls else "http"
    console.print(f"[bold]loopml serve[/] at [cyan]{scheme}://{host}:{port}[/]  (docs: /docs, metrics: /metrics)")
    console.print(f"  store      {hide_password(settings.tracking_uri)}")
    serving = ", ".join(map(str, parsed)) if parsed else "every deployed model, loaded on first request"
    console.print(f"  models     {serving}")
    limit = f"{max_loaded} versions" + (f", {output.fmt_bytes(memory)}" if memory else "")
    console.print(f"  cache      {limit}")
    if log_predictions:
        from loopml.serving.predlog import DEFAULT_CAPACITY_BYTES

        held = output.fmt_bytes(queue_bytes or DEFAULT_CAPACITY_BYTES)
        console.print(f"  log        every prediction, to the store (queue: {log_queue:,} records, {held} of text)")
    else:
        console.print("  log        off")
    console.print(f"  auth       {'API tokens (viewer predicts, editor sends feedback)' if auth else 'none'}")
    console.print(f"  workers    {workers}")
    run(
        names or None,
        host=host,
        port=port,
        workers=workers,
        auth=auth,
        max_loaded=max_loaded,
        max_memory=memory,
        log_predictions=log_predictions,
        log_capacity=log_queue,
        log_capacity_bytes=queue_bytes,
        poll_interval_s=poll_interval,
        trusted=trust,
        unsafe_pickle=unsafe_pickle,
        log_level=log_level,
        access_log=access_log,
        **tls,
    )


def _canary(text: str | None) -> dict[str, Any] | None:
    from loopml.errors import InvalidValueError

    if text is None:
        return None
    version, sep, percent = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return {"version": int(version), "percent": float(percent.rstrip("%"))}
    except ValueError:
        raise InvalidValueError(f"--canary takes VERSION:PERCENT (e.g. 7:10), got {text!r}.") from None


def deploy(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version_or_alias: Annotated[str, typer.Argument(metavar="VERSION_OR_ALIAS", help="A version, an alias or latest.")],
    canary: Annotated[
        str | None, typer.Option("--canary", metavar="V:PERCENT", help="Send PERCENT% of requests to version V.")
    ] = None,
    shadow: Annotated[
        int | None, typer.Option("--shadow", metavar="V", min=1, help="Run version V on a copy of every request.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
) -> None:
    import loopml

    deployment = loopml.deploy(name, version_or_alias, canary=_canary(canary), shadow=shadow, reason=reason)
    output.console().print(Text.assemble(("✓ ", "bold green"), "Deployed ", _describe(deployment)), soft_wrap=True)


def rollback(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
) -> None:
    import loopml

    deployment = loopml.rollback(name, reason=reason)
    output.console().print(Text.assemble(("✓ ", "bold green"), "Rolled back: ", _describe(deployment)), soft_wrap=True)


def _describe(deployment: Any) -> Text:
    text = Text.assemble((deployment.name, "bold"), " → ")
    if deployment.alias:
        text.append(f"@{deployment.alias}", style="magenta")
        text.append(f" (v{deployment.version})" if deployment.version is not None else " (alias missing)")
    else:
        text.append(f"v{deployment.version}", style="green")
    if deployment.canary_version is not None:
        text.append(f", canary v{deployment.canary_version} at {deployment.canary_percent:g}%")
    if deployment.shadow_version is not None:
        text.append(f", shadow v{deployment.shadow_version}")
    text.append(f"  (deployment {deployment.deployment_id})", style="dim")
    return text


@deployments_app.command("list", help="Current deployments (or one model's history with NAME --history).")
def list_deployments(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Every deployment, newest first, not just current.")
    ] = False,
    replicas: Annotated[
        bool, typer.Option("--replicas/--no-replicas", help="Also list the serving replicas seen in the last minute.")
    ] = True,
) -> None:
    import loopml

    found = loopml.list_deployments(name, current=not history)
    console = output.console()
    if replicas:
        _print_replicas(console, name)
    if not found:
        console.print("No deployments yet. Deploy with [bold]loopml deploy NAME VERSION_OR_ALIAS[/].")
        return
    table = Table(header_style="bold")
    for column in ("Model", "Target", "Version", "Canary", "Shadow", "ID", "When", "By", "Action", "Reason"):
        table.add_column(column, no_wrap=column in ("When", "ID"))
    for d in found:
        table.add_row(
            Text(d.name, style="bold"),
            Text(f"@{d.alias}" if d.alias else d.target, style="magenta" if d.alias else ""),
            "—" if d.version is None else f"v{d.version}",
            "" if d.canary_version is None else f"v{d.canary_version} ({d.canary_percent:g}%)",
            "" if d.shadow_version is None else f"v{d.shadow_version}",
            str(d.deployment_id),
            output.fmt_time(d.created_at),
            Text(d.created_by),
            d.action,
            Text(d.reason or ""),
        )
    console.print(table)


def _print_replicas(console: Console, name: str | None) -> None:
    """The replicas that sent a heartbeat in the last minute, and which versions of each model they serve."""
    import loopml
    from loopml.timestamps import now_ms

    seen = loopml.get_tracking_client().store.replicas.list_replicas(seen_since=now_ms() - 60_000)
    if name is not None:
        seen = [r for r in seen if name in r.serving]
    if not seen:
        return
    table = Table(header_style="bold", title=f"{len(seen)} serving replica{'s' if len(seen) != 1 else ''}")
    for column in ("Replica", "Address", "Host", "PID", "Serving", "Started", "Last seen"):
        table.add_column(column, no_wrap=column not in ("Serving",))
    for r in seen:
        serving = ", ".join(f"{model} v{'/v'.join(str(v) for v in versions)}" for model, versions in sorted(r.serving.items())
                            if name is None or model == name)  # fmt: skip
        table.add_row(Text(r.replica_id, style=output.ID_STYLE), Text(r.address), Text(r.hostname), str(r.pid),
                      Text(serving or "—"), output.fmt_time(r.started_at), output.fmt_time(r.last_seen))  # fmt: skip
    console.print(table)
