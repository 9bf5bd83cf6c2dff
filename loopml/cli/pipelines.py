"""``loopml pipelines``: list the pipelines that have run, run one, show a run's steps."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from loopml.cli import output

if TYPE_CHECKING:
    from rich.console import JustifyMethod

app = typer.Typer(help="List, run and inspect pipelines (@loopml.pipeline).", no_args_is_help=True)

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
PIPELINE_TAG = "loopml.pipeline"


@app.command("list", help="List the pipelines that have run: runs, the last run's status, steps and duration.")
def list_pipelines(
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", metavar="NAME", help="Only runs of this experiment.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10_000, help="Look at this many recent pipeline runs.")
    ] = 1000,
) -> None:
    import loopml

    client = loopml.get_tracking_client()
    page = client.search_runs(experiment, filter=f"tags.{PIPELINE_TAG} is not null", max_results=limit, as_frame=False)
    out = output.console()
    runs = list(page)
    if not runs:
        out.print(Text("No pipeline has run yet. Run one with: loopml pipelines run MODULE:FUNCTION"))
        return
    latest: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for run in runs:  # newest first
        name = run.tags[PIPELINE_TAG]
        counts[name] = counts.get(name, 0) + 1
        latest.setdefault(name, run)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    columns: list[tuple[str, JustifyMethod]] = [
        ("Pipeline", "left"), ("Runs", "right"), ("Last run", "left"), ("Status", "left"),
        ("Steps", "right"), ("Cached", "right"), ("Duration", "right"), ("Last run ID", "left"),
    ]  # fmt: skip
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)
    for name in sorted(latest):
        run = latest[name]
        tags = run.tags
        table.add_row(
            Text(name, style="bold"),
            f"{counts[name]}{'+' if page.next_page_token else ''}",
            output.fmt_time(run.info.start_time),
            output.status_text(run.info.status.value),
            tags.get("loopml.pipeline.steps", "—"),
            tags.get("loopml.pipeline.steps_cached", "—"),
            output.fmt_duration(run.info.duration_ms),
            Text(run.info.run_id, style=output.ID_STYLE),
        )
    out.print(table)
    out.print(
        Text(f"{len(latest)} pipeline{'s' if len(latest) != 1 else ''} (loopml pipelines show NAME)", style="dim")
    )


@app.command("run", help="Run a pipeline given as MODULE:FUNCTION, e.g. mypkg.train:train_pipeline.")
def run_pipeline(
    ref: Annotated[str, typer.Argument(metavar="MODULE:FUNCTION", help="The @loopml.pipeline to run.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="NAME=VALUE", help="A pipeline param (VALUE read as JSON, else as text); repeat."
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, even those with cached outputs.")
    ] = False,
    runner: Annotated[str, typer.Option("--runner", "-r", metavar="local|ray", help="Where steps run.")] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", metavar="auto|ray://HOST:PORT|local", help="The Ray cluster (with --runner ray)."),
    ] = None,
    parallel: Annotated[
        bool, typer.Option("--parallel", help="Local runner: run independent steps in a process pool.")
    ] = False,
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", min=1, max=256, help="Processes of the local pool.")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", metavar="NAME", help="Where the runs go.")
    ] = None,
) -> None:
    from loopml.errors import InvalidValueError
    from loopml.pipelines import Pipeline

    if runner not in ("local", "ray"):
        raise typer.BadParameter(f"{runner!r} is not a runner; use local or ray.", param_hint="--runner")
    target = _import_ref(ref)
    if not isinstance(target, Pipeline):
        raise InvalidValueError(
            f"{ref} is a {type(target).__name__}, not a pipeline; decorate it with @loopml.pipeline."
        )
    params = dict(_parse_param(item) for item in param or [])
    result = target.run(
        params,
        cache=not no_cache,
        runner=runner,
        parallel=parallel,
        max_workers=max_workers,
        address=address,
        experiment=experiment,
    )
    import loopml

    out = output.console()
    run = loopml.get_tracking_client().get_run(result.run_id)
    out.print(
        Text.assemble(
            ("Pipeline ", ""),
            (result.pipeline, "bold"),
            (" ", ""),
            output.status_text(run.info.status.value),
            (f" in {output.fmt_duration(run.info.duration_ms)}: {result.n_executed} step(s) run, ", ""),
            (f"{result.n_cached} cached", "green" if result.n_cached else ""),
        )
    )
    out.print(_steps_table([_record_row(record) for record in result.steps.values()]))
    out.print(Text(f"output: {output.shorten(repr(result.output), 200)}", style="dim"))
    out.print(Text(f"run id: {result.run_id}  (loopml pipelines show {result.run_id})", style="dim"))


@app.command("show", help="Show one pipeline run's steps: status, cached or not, duration, attempts and outputs.")
def show_pipeline(
    run: Annotated[
        str, typer.Argument(metavar="RUN_ID|PIPELINE", help="A pipeline run id, or a pipeline name for its latest run.")
    ],
) -> None:
    import loopml
    from loopml.errors import ArtifactNotFoundError, RunNotFoundError

    client = loopml.get_tracking_client()
    target = run.strip()
    if _RUN_ID.match(target):
        found = client.get_run(target)
    else:
        from loopml.pipelines.cache import quote

        page = client.search_runs(None, filter=f"tags.{PIPELINE_TAG} = {quote(target)}", max_results=1, as_frame=False)
        if not len(page):
            raise RunNotFoundError(f"No run of a pipeline named {target!r}; see loopml pipelines list.")
        found = page[0]
    if PIPELINE_TAG not in found.tags:
        raise RunNotFoundError(f"Run {found.info.run_id} is not a pipeline run (it has no {PIPELINE_TAG} tag).")
    info = found.info
    attributes: list[tuple[str, Any]] = [
        ("pipeline", Text(found.tags[PIPELINE_TAG], style="bold")),
        ("run id", Text(info.run_id, style=output.ID_STYLE)),
        ("status", output.status_text(info.status.value)),
        ("started", output.fmt_time(info.start_time)),
        ("duration", output.fmt_duration(info.duration_ms)),
        ("runner", found.tags.get("loopml.pipeline.runner", "—")),
        ("source", found.tags.get("loopml.pipeline.source", "—")),
    ]
    attributes += [(f"param {k}", v) for k, v in sorted(found.params.items())]
    if "loopml.error" in found.tags:
        attributes.append(("error", Text(output.shorten(found.tags["loopml.error"], 300), style="red")))
    out = output.console()
    out.print(output.kv_table("Pipeline run", attributes, key_header="Attribute"))
    try:
        record = json.loads(client.read_artifact(info.run_id, "loopml/steps.json"))
        rows = [_json_row(item) for item in record.get("steps", [])]
    except ArtifactNotFoundError:  # still running, or the driver died: the child runs are all there is
        children = client.search_runs(
            None,
            filter=f"attributes.parent_run_id = '{info.run_id}'",
            order_by="attributes.start_time",
            max_results=1000,
            as_frame=False,
        )
        rows = [_child_row(child) for child in children]
    out.print(_steps_table(rows))


# -- helpers -------------------------------------------------------------------------------


def _import_ref(ref: str) -> Any:
    """The object ``module:attribute`` names; a module path ending in .py is imported from its folder."""
    from loopml.cli.modules import import_user_module
    from loopml.errors import InvalidValueError

    module_name, sep, attribute = ref.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidValueError(f"{ref!r} is not MODULE:FUNCTION, e.g. mypkg.train:train_pipeline.")
    target: Any = import_user_module(module_name)
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise InvalidValueError(f"Module {module_name!r} has no {attribute!r}.")
        target = getattr(target, part)
    return target


def _parse_param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f"{text!r} is not NAME=VALUE.", param_hint="--param")
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value


def _record_row(record: Any) -> dict[str, Any]:
    return {
        "node": record.node,
        "step": record.step,
        "status": record.status.value,
        "cached": record.cached,
        "duration_ms": record.duration_ms,
        "attempts": record.attempts,
        "run_id": record.run_id,
        "outputs": {name: out.digest for name, out in record.outputs.items()},
    }


def _json_row(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "outputs": {name: out.get("digest", "") for name, out in item.get("outputs", {}).items()}}


def _child_row(run: Any) -> dict[str, Any]:
    outputs = json.loads(run.tags.get("loopml.step.outputs", "{}"))
    return {
        "node": run.tags.get("loopml.step.node", run.info.name),
        "step": run.tags.get("loopml.step", "—"),
        "status": run.info.status.value,
        "cached": False,
        "duration_ms": run.info.duration_ms,
        "attempts": run.tags.get("loopml.step.attempts", "—"),
        "run_id": run.info.run_id,
        "outputs": {name: described[1] for name, described in outputs.items()},
    }


def _steps_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Steps", title_justify="left", title_style="bold", header_style="bold", box=box.SIMPLE_HEAD)
    columns: list[tuple[str, JustifyMethod]] = [
        ("Step", "left"), ("Status", "left"), ("Cached", "left"), ("Duration", "right"),
        ("Attempts", "right"), ("Run ID", "left"), ("Outputs (sha256)", "left"),
    ]  # fmt: skip
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=column != "Outputs (sha256)")
    for row in rows:
        label = Text(row["node"], style="bold")
        if row.get("step") and row["step"] != row["node"]:
            label.append(f" ({row['step']})", style="dim")
        status = row.get("status", "—")
        table.add_row(
            label,
            output.status_text(status) if status != "NOT_RUN" else Text("not run", style="dim"),
            Text("cached", style="green") if row.get("cached") else Text("—", style="dim"),
            output.fmt_duration(row.get("duration_ms")),
            str(row.get("attempts", "—")),
            Text(row.get("run_id") or "—", style=output.ID_STYLE),
            Text(", ".join(f"{name} {digest[:12]}" for name, digest in row.get("outputs", {}).items()) or "—"),
        )
    return table
