"""``loopml models``: the model registry: versions, aliases, stages and approvals."""

from __future__ import annotations

import contextlib
import enum
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from loopml.cli import output

app = typer.Typer(
    help="Register model versions, point aliases at them, move them through stages and approve promotions.",
    no_args_is_help=True,
)

STAGES = "candidate, staging, production, archived"


class RequestStatusChoice(enum.StrEnum):
    """The ``--status`` choices (mirrors loopml.entities.registry.RequestStatus, kept here so help stays cheap)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"


ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor", metavar="NAME", help="Who is acting, for the audit log (default: LOOPML_ACTOR, else the OS user)."
    ),
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", help="Version number (1, 2, ...).", min=1)]
StageArg = Annotated[str, typer.Argument(metavar="STAGE", help=f"Target stage: {STAGES}.")]


@app.command("list", help="List registered models with their latest version, aliases and tags.")
def list_models(
    filter: Annotated[
        str | None,
        typer.Option("--filter", "-f", metavar="TEXT", help="Only models matching this, e.g. \"tags.team = 'risk'\"."),
    ] = None,
) -> None:
    import loopml

    models = loopml.search_models(filter)
    out = output.console()
    if not models:
        if filter:
            out.print(Text("No registered models match."))
        else:
            out.print(
                "No registered models yet. Register one with [bold]loopml models register runs:/RUN_ID/model NAME[/bold]."
            )
        return
    table = Table(header_style="bold")
    table.add_column("Name", style="bold", no_wrap=True)
    table.add_column("Latest", justify="right", no_wrap=True)
    table.add_column("Aliases", no_wrap=True)
    table.add_column("Tags", overflow="fold")
    table.add_column("Approval", no_wrap=True)
    table.add_column("Updated", no_wrap=True)
    for model in models:
        table.add_row(
            Text(model.name),
            f"v{model.latest_version}" if model.latest_version else output.MISSING,
            _aliases_text(model.aliases) or output.MISSING,
            _tags_text(model.tags) or output.MISSING,
            Text("required", style="yellow") if model.require_approval else output.MISSING,
            output.fmt_time(model.updated_at),
        )
    out.print(table)
    out.print(Text(f"{len(models)} model{'s' if len(models) != 1 else ''}", style="dim"))


@app.command(
    "show", help="Show a model and its versions (NAME), or one version (NAME@ALIAS, NAME/VERSION, NAME/latest)."
)
def show(
    ref: Annotated[
        str,
        typer.Argument(metavar="NAME[@ALIAS|/VERSION]", help="A model name, or a version of it; models:/ optional."),
    ],
) -> None:
    import loopml
    from loopml.uris import parse_models_uri

    text = ref.strip()
    body = text.removeprefix("models:/").strip("/")
    if "@" not in body and "/" not in body:
        _show_model(body)
        return
    _show_version(loopml.get_registry_client().resolve(parse_models_uri(f"models:/{body}")))


@app.command("register", help="Register the packaged model at runs:/RUN_ID/PATH as the next version of NAME.")
def register(
    uri: Annotated[str, typer.Argument(metavar="URI", help="runs:/<run_id>/<model path>, e.g. runs:/3fa2…/model.")],
    name: NameArg,
    description: Annotated[
        str | None, typer.Option("--description", "-d", metavar="TEXT", help="What this version is.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", metavar="KEY=VALUE", help="A version tag; repeat for more.")
    ] = None,
    require_approval: Annotated[
        bool,
        typer.Option(
            "--require-approval",
            help="When this creates the model: promotions to production need another person's approval.",
        ),
    ] = False,
    actor: ActorOption = None,
    holdout: Annotated[
        str | None,
        typer.Option(
            "--holdout",
            metavar="PATH",
            help="A .csv or .parquet file of the model's input columns (and the labels, see --target): the version "
            "is explained on it (permutation importance, SHAP) and that stored as its evidence.",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="COL", help="The column of --holdout that holds the labels.")
    ] = None,
) -> None:
    import loopml

    tags = _parse_tags(tag or [])
    version = loopml.register_model(
        uri.strip(),
        name,
        description,
        tags,
        require_approval=True if require_approval else None,
        actor=actor,
        holdout=None if holdout is None else _read_frame(holdout, "--holdout"),
        target=target,
    )
    out = output.console()
    out.print(
        Text.assemble(
            ("Registered ", "green"),
            (version.source, "cyan"),
            " as ",
            (f"{version.name} v{version.version}", "bold"),
            f"  ({version.uri}, stage ",
            output.stage_text(version.stage),
            ")",
        ),
        soft_wrap=True,
    )
    explained = version.evidence.get("explanations") if holdout is not None else None
    if explained:
        from loopml.explain.importance import GlobalExplanation

        found = GlobalExplanation.from_evidence(explained)
        if explained.get("error"):
            out.print(Text(f"Not explained: {explained['error']}", style="yellow"), soft_wrap=True)
        else:
            top = ", ".join(found.ranking()[:5]) or "none"
            out.print(Text(f"Explained on {found.n_rows} rows; most important: {top}"), soft_wrap=True)
    out.print(Text(f"Next: loopml models alias {version.name} champion {version.version}", style="dim"), soft_wrap=True)


def _read_frame(path: str, option: str) -> Any:
    """A DataFrame from a .csv or .parquet file given to ``option``."""
    from pathlib import Path

    import pandas as pd

    from loopml.errors import InvalidValueError

    file = Path(path).expanduser()
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InvalidValueError(f"{option} takes a .csv or .parquet file, got a {suffix or 'suffix-less'} file.")
    if not file.is_file():
        raise InvalidValueError(f"{option}: no such file.")
    try:
        return pd.read_csv(file) if suffix == ".csv" else pd.read_parquet(file)
    except (ValueError, OSError) as exc:
        raise InvalidValueError(
            f"{option}: the file could not be read as {suffix[1:]} ({type(exc).__name__})."
        ) from exc


@app.command("alias", help="Point ALIAS (e.g. champion) at VERSION of NAME, moving it if it points elsewhere.")
def alias(
    name: NameArg,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. champion or challenger.")],
    version: Annotated[
        int | None, typer.Argument(metavar="[VERSION]", help="Version to point at (not with --delete).", min=1)
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", metavar="TEXT", help="Why, for the audit log.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead.")] = False,
    actor: ActorOption = None,
) -> None:
    import loopml
    from loopml.errors import AliasNotFoundError

    if delete == (version is not None):
        raise typer.BadParameter(
            "give a VERSION to point the alias at, or --delete to remove it (not both).", param_hint="VERSION"
        )
    out = output.console()
    if version is None:
        previous = loopml.get_model_version(name, alias_name)
        loopml.delete_alias(name, alias_name, reason=reason, actor=actor)
        out.print(Text(f"Deleted alias {name}@{alias_name} (it pointed at v{previous.version})."), soft_wrap=True)
        return
    was = None
    with contextlib.suppress(AliasNotFoundError):
        was = loopml.get_model_version(name, alias_name).version
    current = loopml.set_alias(name, alias_name, version, reason=reason, actor=actor)
    line = Text.assemble((f"{name}@{alias_name}", "bold"), " → ", (f"v{current.version}", "green"))
    if was is not None and was != current.version:
        line.append(f"  (was v{was})", style="dim")
    elif was == current.version:
        line.append("  (unchanged)", style="dim")
    out.print(line, soft_wrap=True)


@app.command("transition", help=f"Move VERSION of NAME to STAGE ({STAGES}).")
def transition(
    name: NameArg,
    version: VersionArg,
    stage: StageArg,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", metavar="TEXT", help="Why, for the audit log.")
    ] = None,
    keep_existing: Annotated[
        bool,
        typer.Option("--keep-existing", help="Moving to production: leave the current production version(s) there."),
    ] = False,
    actor: ActorOption = None,
) -> None:
    import loopml

    before = loopml.get_model_version(name, version)
    in_production = [v.version for v in loopml.search_model_versions(name, stage="production")]
    after = loopml.transition(name, version, stage, reason=reason, actor=actor, archive_existing=not keep_existing)
    out = output.console()
    out.print(
        Text.assemble(
            (f"{name} v{version}: ", "bold"), output.stage_text(before.stage), " → ", output.stage_text(after.stage)
        )
    )
    if after.stage.value == "production" and not keep_existing:
        archived = [number for number in in_production if number != version]
        if archived:
            listed = ", ".join(f"v{number}" for number in archived)
            out.print(Text(f"{listed} archived (superseded by v{version}).", style="dim"))


@app.command("request", help="Ask for VERSION of NAME to move to STAGE; another person approves it.")
def request(
    name: NameArg,
    version: VersionArg,
    stage: StageArg,
    comment: Annotated[
        str | None, typer.Option("--comment", "-c", metavar="TEXT", help="Why, for the approver.")
    ] = None,
    actor: ActorOption = None,
) -> None:
    import loopml

    made = loopml.request_transition(name, version, stage, comment=comment, actor=actor)
    out = output.console()
    out.print(
        Text.assemble(
            (f"Request #{made.request_id}", "bold"),
            f": move {made.name} v{made.version} to ",
            output.stage_text(made.to_stage),
            f", by {made.requested_by} (",
            output.request_status_text(made.status),
            ").",
        ),
        soft_wrap=True,
    )
    out.print(Text(f"Someone else approves it with: loopml models approve {made.request_id}", style="dim"))


@app.command("approve", help="Approve a pending transition request (not one you made yourself).")
def approve(
    request_id: Annotated[int, typer.Argument(metavar="REQUEST_ID", help="From 'loopml models requests NAME'.")],
    comment: Annotated[str | None, typer.Option("--comment", "-c", metavar="TEXT", help="Why.")] = None,
    actor: ActorOption = None,
) -> None:
    import loopml

    decided = loopml.approve(request_id, comment=comment, actor=actor)
    out = output.console()
    out.print(_decision_line(decided), soft_wrap=True)
    out.print(
        Text(
            f"Apply it with: loopml models transition {decided.name} {decided.version} {decided.to_stage.value}",
            style="dim",
        ),
        soft_wrap=True,
    )


@app.command("reject", help="Reject a pending transition request.")
def reject(
    request_id: Annotated[int, typer.Argument(metavar="REQUEST_ID", help="From 'loopml models requests NAME'.")],
    comment: Annotated[str | None, typer.Option("--comment", "-c", metavar="TEXT", help="Why.")] = None,
    actor: ActorOption = None,
) -> None:
    import loopml

    output.console().print(_decision_line(loopml.reject(request_id, comment=comment, actor=actor)), soft_wrap=True)


@app.command("requests", help="List the transition requests of a model, newest first.")
def list_requests(
    name: NameArg,
    status: Annotated[
        RequestStatusChoice | None,
        typer.Option("--status", "-s", case_sensitive=False, help="Only requests in this status."),
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", "-v", min=1, help="Only requests for this version.")
    ] = None,
) -> None:
    import loopml

    wanted = None if status is None else status.value
    requests = loopml.get_registry_client().list_transition_requests(name, version=version, status=wanted)
    out = output.console()
    if not requests:
        out.print(Text(f"No {wanted + ' ' if wanted else ''}transition requests for {name}."))
        return
    out.print(_requests_table(requests))


# -- views ------------------------------------------------------------------------------------


def _show_model(name: str) -> None:
    import loopml

    model = loopml.get_registered_model(name)
    versions = loopml.search_model_versions(name)
    pending = loopml.get_registry_client().list_transition_requests(name, status="pending")
    rows: list[tuple[str, Any]] = [
        ("name", Text(model.name, style="bold")),
        ("description", Text(model.description) if model.description else output.MISSING),
        ("latest version", f"v{model.latest_version}" if model.latest_version else output.MISSING),
        ("aliases", _aliases_text(model.aliases) or output.MISSING),
        ("tags", _tags_text(model.tags) or output.MISSING),
        ("approval", Text("required for production", style="yellow") if model.require_approval else "not required"),
        ("created", output.fmt_time(model.created_at)),
        ("updated", output.fmt_time(model.updated_at)),
    ]
    out = output.console()
    out.print(output.kv_table("Registered model", rows, key_header="Attribute"))
    if not versions:
        out.print(Text("No versions yet.", style="dim"))
    else:
        table, tags_hidden = _fitted_versions_table(out, name, versions)
        out.print(table)
        if tags_hidden:
            out.print(Text("Tags left out for width; see them per version.", style="dim"))
    if pending:
        out.print(_requests_table(pending, title="Pending requests"))
    out.print(Text(f"One version: loopml models show {name}/VERSION or {name}@ALIAS", style="dim"), soft_wrap=True)


def _show_version(version: Any) -> None:
    import loopml
    from loopml.errors import NotFoundError

    run: Any = Text(version.run_id, style=output.ID_STYLE)
    with contextlib.suppress(NotFoundError):  # the run may have been deleted
        found = loopml.get_run(version.run_id)
        experiment = loopml.get_tracking_client().get_experiment(found.info.experiment_id)
        run.append(f"  ({found.info.name} in {experiment.name})", style="")
    rows: list[tuple[str, Any]] = [
        ("model", Text(version.name, style="bold")),
        ("version", f"v{version.version}"),
        ("uri", Text(version.uri)),
        ("stage", output.stage_text(version.stage)),
        (
            "aliases",
            Text(", ".join(f"@{a}" for a in version.aliases), style="magenta") if version.aliases else output.MISSING,
        ),
        ("source", Text(version.source)),
        ("run", run),
        ("description", Text(version.description) if version.description else output.MISSING),
        ("tags", _tags_text(version.tags) or output.MISSING),
        ("created by", Text(version.created_by)),
        ("created", output.fmt_time(version.created_at)),
        ("updated", output.fmt_time(version.updated_at)),
    ]
    out = output.console()
    out.print(output.kv_table("Model version", rows, key_header="Attribute"))
    if version.evidence:
        from rich.panel import Panel

        body = output.json_text(dict(version.evidence), width=out.width - 4)  # the panel takes 4
        out.print(Panel(body, title="Evidence", title_align="left", expand=False, border_style="dim"))
    else:
        out.print(Text("No evidence recorded (loopml.set_evidence).", style="dim"))
    pending = loopml.get_registry_client().list_transition_requests(
        version.name, version=version.version, status="pending"
    )
    if pending:
        out.print(_requests_table(pending, title="Pending requests"))
    out.print(Text(f"Lineage: loopml lineage {version.uri}", style="dim"), soft_wrap=True)


def _versions_table(name: str, versions: list[Any], *, with_tags: bool = True) -> Table:
    table = Table(
        title=f"Versions of {name}",
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        show_edge=False,
    )
    table.add_column("Version", justify="right", no_wrap=True)
    table.add_column("Stage", no_wrap=True)
    table.add_column("Aliases", style="magenta", overflow="fold")
    table.add_column("Run ID", style=output.ID_STYLE, no_wrap=True)
    table.add_column("By", overflow="fold")
    table.add_column("Created", min_width=10)  # wraps between date and time when space is short
    if with_tags:
        table.add_column("Tags", overflow="fold")
    for version in versions:
        cells: list[Any] = [
            f"v{version.version}",
            output.stage_text(version.stage),
            Text("\n".join(f"@{a}" for a in version.aliases)) if version.aliases else output.MISSING,
            Text(version.run_id),
            Text(version.created_by),
            output.fmt_time(version.created_at),
        ]
        if with_tags:
            tags = sorted(version.tags.items())
            cells.append(Text("\n".join(f"{k}={v}" for k, v in tags)) if tags else output.MISSING)
        table.add_row(*cells)
    return table


def _fitted_versions_table(out: Any, name: str, versions: list[Any]) -> tuple[Table, bool]:
    """The versions table, without its Tags column when that would leave tags under 20 characters wide."""
    from rich.measure import Measurement

    bare = _versions_table(name, versions, with_tags=False)
    # measure unconstrained: a measurement against the console's options is clamped to its width
    needed = Measurement.get(out, out.options.update_width(10_000), bare).maximum
    if not any(v.tags for v in versions) or out.width - needed >= 20:
        return _versions_table(name, versions), False
    return bare, True


def _requests_table(requests: list[Any], *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Model", no_wrap=True)
    table.add_column("To stage", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Requested by", no_wrap=True)
    table.add_column("Requested", no_wrap=True)
    table.add_column("Comment", overflow="fold")
    table.add_column("Decided by", no_wrap=True)
    table.add_column("Decision comment", overflow="fold")
    for item in requests:
        table.add_row(
            str(item.request_id),
            Text(f"{item.name} v{item.version}"),
            output.stage_text(item.to_stage),
            output.request_status_text(item.status),
            Text(item.requested_by),
            output.fmt_time(item.requested_at),
            Text(item.comment) if item.comment else output.MISSING,
            Text(item.decided_by) if item.decided_by else output.MISSING,
            Text(item.decision_comment) if item.decision_comment else output.MISSING,
        )
    return table


# -- helpers ------------------------------------------------------------------------------------


def _decision_line(decided: Any) -> Text:
    return Text.assemble(
        (f"Request #{decided.request_id}", "bold"),
        f" ({decided.name} v{decided.version} to {decided.to_stage.value}) ",
        output.request_status_text(decided.status),
        f" by {decided.decided_by}.",
    )


def _aliases_text(aliases: Any) -> Text | None:
    """``@champion→v3 @challenger→v4``, or None when there are none."""
    if not aliases:
        return None
    text = Text()
    for index, (alias_name, number) in enumerate(sorted(aliases.items())):
        if index:
            text.append(" ")
        text.append(f"@{alias_name}", style="magenta")
        text.append(f"→v{number}")
    return text


def _tags_text(tags: Any) -> Text | None:
    if not tags:
        return None
    return Text(", ".join(f"{key}={value}" for key, value in sorted(tags.items())))


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}.", param_hint="--tag")
        tags[key.strip()] = value
    return tags
