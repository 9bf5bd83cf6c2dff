"""``loopml import``: bring another tool's history into loopml (``loopml import mlflow --from ...``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from loopml.cli import output

app = typer.Typer(help="Import experiments, runs and models from other tools.", no_args_is_help=True)

MLFLOW_HELP = """Import an MLflow store into loopml: experiments, runs (params, metric histories, tags, times,
status, nesting), artifacts, MLflow 3 logged models, and registered models with their versions,
stages and aliases.

--from is an MLflow tracking URI (http://host:5000, read through MLflow's REST API) or an mlruns
folder written by MLflow's file store. Running it again imports nothing twice: imported runs carry the
tag mlflow.import.runId and versions mlflow.import.version. The final table compares what the source
holds with what loopml holds now; anything that could not be imported (e.g. a run deleted while the
import ran) is listed, and the command exits with status 1 when loopml does not hold all of the source.

Example:

  loopml import mlflow --from http://127.0.0.1:5000

  loopml import mlflow --from ./mlruns
"""


@app.command("mlflow", help=MLFLOW_HELP)
def import_mlflow_command(
    source: Annotated[
        str, typer.Option("--from", metavar="URI_OR_FOLDER", help="MLflow tracking URI (http://...) or mlruns folder.")
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="MLFLOW_TRACKING_TOKEN", show_envvar=True, help="Bearer token for the MLflow server."
        ),
    ] = None,
) -> None:
    import loopml
    from loopml.interop.mlflow_import import import_mlflow

    store = loopml.get_tracking_client().store
    out = output.console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.err_console(),
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"Importing {stage}", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = import_mlflow(source, store=store, token=token, progress=progress)
    table = Table(title=f"Imported from {report.source} in {report.seconds:.1f} s", header_style="bold")
    for column in ("What", "In the source", "Imported now", "Already in loopml", "Skipped", "In loopml", ""):
        table.add_column(column, justify="left" if column == "What" else "right")
    for kind, count in report.counts.items():
        mark = Text("✓", style="green") if count.verified else Text("✗", style="bold red")
        table.add_row(
            kind,
            *(f"{n:,}" for n in (count.source, count.imported, count.present, count.skipped, count.in_loopml)),
            mark,
        )
    out.print(table)
    for line in report.skipped:
        out.print(Text(f"skipped: {line}", style="yellow"))
    if not report.verified:
        out.print(Text("loopml does not hold everything the source held; see the skipped items above.", style="red"))
        raise typer.Exit(1)
