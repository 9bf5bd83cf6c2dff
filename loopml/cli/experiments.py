"""``loopml experiments``: the experiments in the store."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

app = typer.Typer(help="List experiments (named groups of runs).", no_args_is_help=True)


@app.command("list", help="List every experiment in the store, oldest first.")
def list_experiments() -> None:
    import loopml

    experiments = loopml.get_tracking_client().list_experiments()
    out = output.console()
    if not experiments:
        out.print("No experiments yet. Start one with [bold]loopml demo[/bold] or loopml.start_run().")
        return
    table = Table(header_style="bold")
    table.add_column("ID", justify="right", style=output.ID_STYLE)
    table.add_column("Name", style="bold")
    table.add_column("Created", no_wrap=True)
    for experiment in experiments:
        table.add_row(str(experiment.experiment_id), Text(experiment.name), output.fmt_time(experiment.created_at))
    out.print(table)
