"""``loopml reproduce``: re-run the pipeline behind a model version and say whether it comes out the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

HELP = (
    "Re-run the pipeline that produced a model version (models:/NAME/VERSION, models:/NAME@ALIAS or a run id) "
    "from its recorded git commit (in a temporary worktree), params and data, without the cache, and compare "
    "each step's data hashes and metrics. Exits 1 when anything differs."
)


def reproduce(
    uri: Annotated[str, typer.Argument(help="models:/NAME/VERSION, models:/NAME@ALIAS or a pipeline run id.")],
    tolerance: Annotated[float, typer.Option(min=0.0, help="Largest metric difference still counted equal.")] = 1e-6,
    repo: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="The git checkout holding the code (a folder).")
    ] = Path("."),
) -> None:
    from loopml.pipelines.reproduce import reproduce as run_reproduction

    out = output.console()
    result = run_reproduction(uri, repo=repo, tolerance=tolerance)
    out.print(f"Re-ran pipeline run [bold]{result.original_run_id}[/] at commit [cyan]{result.commit[:12]}[/] "
              f"as run [bold]{result.reproduced_run_id}[/]")  # fmt: skip
    for note in result.notes:
        out.print(f"[yellow]note[/]: {note}")
    table = Table(header_style="bold")
    for column in ("Step", "Compared", "Original", "Reproduced", ""):
        table.add_column(column)
    for c in result.comparisons:
        mark = Text("same", style="green") if c.matches else Text("DIFFERS", style="bold red")
        table.add_row(c.step, c.what, output.shorten(str(c.original), 24), output.shorten(str(c.reproduced), 24), mark)
    out.print(table)
    if result.matches:
        out.print(f"[green]Reproduced[/]: every data hash equal, every metric within {tolerance:g}.")
        return
    if result.data_changed:
        out.print("[red]The data no longer matches[/]: " + ", ".join(f"{c.step} {c.what}" for c in result.data_changed))
    else:
        out.print(f"[red]Not reproduced[/]: some metrics moved by more than {tolerance:g}.")
    raise typer.Exit(1)
