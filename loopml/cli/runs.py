"""``loopml runs``: list, show and compare tracked runs."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

app = typer.Typer(help="List, inspect and compare runs.", no_args_is_help=True)

SYSTEM_PREFIX = "loopml."
MAX_METRIC_COLUMNS = 4
_KEY_REF = re.compile(r"\b(metrics?|m|params?|p)\.([A-Za-z0-9_\-./:]+)|\b(metrics?|m|params?|p)\.`([^`]+)`")

FILTER_HELP = (
    "Only runs matching this, e.g. \"metrics.acc > 0.9 and params.model = 'rf'\" "
    "(keys: metrics.*, params.*, tags.*, attributes.status/name/parent_run_id/...)."
)
ORDER_HELP = 'Sort key, e.g. "metrics.acc DESC" or "attributes.start_time"; repeat for ties. Default: newest first.'


@app.command("list", help="List runs, newest first, with their status, duration and main metrics.")
def list_runs(
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment", "-e", metavar="NAME", help="Only runs of this experiment (default: every experiment)."
        ),
    ] = None,
    filter: Annotated[str | None, typer.Option("--filter", "-f", metavar="TEXT", help=FILTER_HELP)] = None,
    order_by: Annotated[list[str] | None, typer.Option("--order-by", "-o", metavar="TEXT", help=ORDER_HELP)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="Show at most this many runs.")] = 20,
) -> None:
    import loopml

    client = loopml.get_tracking_client()
    page = client.search_runs(experiment, filter=filter, order_by=order_by or None, max_results=limit, as_frame=False)
    out = output.console()
    runs = list(page)
    if not runs:
        where = f" in experiment {experiment!r}" if experiment else ""
        out.print(Text(f"No runs{where} match." if filter else f"No runs{where} yet."))
        return
    names = None if experiment else {e.experiment_id: e.name for e in client.list_experiments()}
    referenced = _referenced_keys(" ".join([filter or "", *(order_by or [])]))
    metric_keys = _metric_columns(runs, referenced["metric"])
    param_keys = [key for key in referenced["param"] if any(key in run.params for run in runs)]
    table, hidden = output.fitted_runs_table(
        out, runs, experiment_names=names, metric_keys=metric_keys, param_keys=param_keys
    )
    out.print(table)
    footer = Text(f"{len(runs)} run{'s' if len(runs) != 1 else ''}", style="dim")
    if page.next_page_token:
        footer.append(", more match (raise --limit)")
    total_metrics = len({key for run in runs for key in run.metrics})
    hidden += total_metrics - len(metric_keys)
    if hidden:
        footer.append(f"; {hidden} column{'s' if hidden > 1 else ''} hidden (loopml runs show RUN_ID)")
    out.print(footer)


@app.command("show", help="Show one run: attributes, params, latest metrics, tags, datasets and artifacts.")
def show_run(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The full 32-character run id (from 'loopml runs list').")
    ],
) -> None:
    import loopml
    from loopml.errors import NotFoundError

    client = loopml.get_tracking_client()
    run = client.get_run(run_id.strip())
    info = run.info
    experiment = client.get_experiment(info.experiment_id)
    parent: Any = output.MISSING
    if info.parent_run_id:
        parent = Text(info.parent_run_id, style=output.ID_STYLE)
        with contextlib.suppress(NotFoundError):  # the parent may have been deleted
            parent.append(f"  ({client.get_run(info.parent_run_id).info.name})", style="")
    children = client.search_runs(
        None, filter=f"attributes.parent_run_id = '{info.run_id}'", max_results=1000, as_frame=False
    )
    attributes: list[tuple[str, Any]] = [
        ("run id", Text(info.run_id, style=output.ID_STYLE)),
        ("name", Text(info.name, style="bold")),
        ("experiment", f"{experiment.name} (id {experiment.experiment_id})"),
        ("status", output.status_text(info.status.value)),
        ("user", info.user),
        ("started", output.fmt_time(info.start_time)),
        ("ended", output.fmt_time(info.end_time)),
        ("duration", output.fmt_duration(info.duration_ms)),
        ("parent run", parent),
    ]
    if len(children):
        more = "+" if children.next_page_token else ""
        attributes.append(
            (
                "child runs",
                f"{len(children)}{more}  (loopml runs list -f \"attributes.parent_run_id = '{info.run_id}'\")",
            )
        )
    parts: list[Any] = [output.kv_table("Run", attributes, key_header="Attribute")]
    if run.params:
        parts.append(output.kv_table("Params", sorted(run.params.items()), key_header="Param"))
    if run.metrics:
        rows = [(key, output.fmt_number(value)) for key, value in sorted(run.metrics.items())]
        parts.append(output.kv_table("Metrics (latest)", rows, key_header="Metric"))
    user_tags = sorted((k, v) for k, v in run.tags.items() if not k.startswith(SYSTEM_PREFIX))
    system_tags = sorted((k, output.shorten(v)) for k, v in run.tags.items() if k.startswith(SYSTEM_PREFIX))
    if user_tags:
        parts.append(output.kv_table("Tags", user_tags, key_header="Tag"))
    if system_tags:
        parts.append(output.kv_table("System tags", system_tags, key_header="Tag", style="dim"))
    if run.inputs:
        parts.append(_datasets_table(client, run.inputs))
    artifacts = client.list_artifacts(info.run_id)
    if artifacts:
        parts.append(_artifacts_table(artifacts))
    out = output.console()
    for part in parts:
        out.print(part)


@app.command("compare", help="Compare runs side by side: params and latest metrics, one column per run.")
def compare_runs(
    run_ids: Annotated[
        list[str], typer.Argument(metavar="RUN_ID", help="Two or more full run ids (from 'loopml runs list').")
    ],
) -> None:
    import loopml

    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids to compare.", param_hint="RUN_ID")
    client = loopml.get_tracking_client()
    runs = [client.get_run(run_id.strip()) for run_id in run_ids]
    out = output.console()
    out.print(output.compare_table(runs))
    out.print(
        Text.assemble(
            ("Rows in ", "dim"),
            ("bold yellow", output.DIFF_STYLE),
            (" differ between runs; ", "dim"),
            ("★", output.BEST_STYLE),
            (" marks the best value of each metric (lower is better for keys naming ", "dim"),
            (", ".join(output.LOWER_IS_BETTER[:5]) + ", …).", "dim"),
        )
    )


# -- helpers -------------------------------------------------------------------------


def _referenced_keys(text: str) -> dict[str, list[str]]:
    """Metric and param keys a filter or order-by string mentions, in order of appearance."""
    found: dict[str, list[str]] = {"metric": [], "param": []}
    for match in _KEY_REF.finditer(text):
        prefix = match.group(1) or match.group(3)
        key = match.group(2) or match.group(4)
        kind = "metric" if prefix.startswith("m") else "param"
        if key not in found[kind]:
            found[kind].append(key)
    return found


def _metric_columns(runs: list[Any], referenced: list[str]) -> list[str]:
    """Referenced metrics first, then those most runs have (by name on ties), at most MAX_METRIC_COLUMNS."""
    counts: dict[str, int] = {}
    for run in runs:
        for key in run.metrics:
            counts[key] = counts.get(key, 0) + 1
    first = [key for key in referenced if key in counts]
    rest = sorted((key for key in counts if key not in first), key=lambda key: (-counts[key], key))
    return (first + rest)[: max(MAX_METRIC_COLUMNS, len(first))]


def _datasets_table(client: Any, inputs: Any) -> Any:
    from loopml.errors import NotFoundError

    table = Table(title="Dataset inputs", title_justify="left", title_style="bold", header_style="bold")
    table.add_column("Dataset", style="cyan", no_wrap=True)
    table.add_column("Context")
    table.add_column("Rows", justify="right")
    table.add_column("Columns", justify="right")
    table.add_column("Source", overflow="fold")
    for item in inputs:
        ref = f"{item.name}@{item.digest[:12]}"
        try:
            dataset = client.get_dataset(item.digest)
            table.add_row(
                Text(ref), Text(item.context), str(dataset.n_rows), str(len(dataset.schema)), Text(dataset.source)
            )
        except NotFoundError:
            table.add_row(Text(ref), Text(item.context), output.MISSING, output.MISSING, output.MISSING)
    return table


def _artifacts_table(artifacts: Any) -> Any:
    table = Table(title="Artifacts", title_justify="left", title_style="bold", header_style="bold")
    table.add_column("Path", overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    for entry in artifacts:
        table.add_row(Text(entry.path), output.fmt_bytes(entry.size))
    total = sum(entry.size for entry in artifacts)
    table.add_section()
    table.add_row(Text(f"{len(artifacts)} files", style="dim"), Text(output.fmt_bytes(total), style="dim"))
    return table
