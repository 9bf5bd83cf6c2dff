"""``loopml features materialize`` and ``materialize-incremental``: fill the online store, with a progress bar."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli import output

if TYPE_CHECKING:
    from loopml.features.materialize import MaterializeResult


def _when(text: str, option: str) -> datetime:
    from loopml.errors import InvalidValueError

    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValueError(f"{option} {text!r} is not an ISO time such as 2026-01-31T12:00 (or 'now').") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _run(call: object, views: list[str] | None, **kwargs: object) -> list[MaterializeResult]:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=output.err_console(),
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(view: str, rows: int) -> None:
            if view not in tasks:
                tasks[view] = bar.add_task(view, total=None)
            bar.advance(tasks[view], rows)

        results: list[MaterializeResult] = call(views=views or None, progress=progress, **kwargs)  # type: ignore[operator]
    return results


def _report(results: list[MaterializeResult]) -> None:
    from rich.table import Table

    table = Table(title="Materialized")
    for column in ("View", "From", "Up to", "Rows read", "Keys written", "Seconds"):
        table.add_column(column, justify="right" if column in ("Rows read", "Keys written", "Seconds") else "left")
    for r in results:
        table.add_row(
            r.view,
            "-" if r.start is None else r.start.isoformat(timespec="seconds"),
            r.end.isoformat(timespec="seconds"),
            f"{r.rows_read:,}",
            f"{r.keys_written:,}",
            f"{r.seconds:.2f}",
        )
    output.console().print(table)


def materialize(
    start: Annotated[str, typer.Argument(help="Earliest event time to copy (ISO, UTC if no offset).")],
    end: Annotated[str, typer.Argument(help="Event times before this are copied (ISO, or 'now').")] = "now",
    view: Annotated[
        list[str] | None, typer.Option("--view", "-v", help="A view to materialize (repeat; default: all).")
    ] = None,
    batch_rows: Annotated[int, typer.Option(help="Source rows per batch: bounds the memory used.")] = 200_000,
) -> None:
    """Copy the latest value per entity key with event time in [START, END) into the online store."""
    import loopml

    _report(_run(loopml.materialize, view, start=_when(start, "START"), end=_when(end, "END"), batch_rows=batch_rows))


def materialize_incremental(
    end: Annotated[str, typer.Argument(help="Event times before this are copied (ISO, or 'now').")] = "now",
    view: Annotated[
        list[str] | None, typer.Option("--view", "-v", help="A view to materialize (repeat; default: all).")
    ] = None,
    batch_rows: Annotated[int, typer.Option(help="Source rows per batch: bounds the memory used.")] = 200_000,
) -> None:
    """Continue each view from where the last materialization stopped (its watermark) up to END."""
    import loopml

    _report(_run(loopml.materialize_incremental, view, end=_when(end, "END"), batch_rows=batch_rows))


def register(app: typer.Typer) -> None:
    """Add the two commands to the ``loopml features`` app."""
    app.command("materialize")(materialize)
    app.command("materialize-incremental")(materialize_incremental)
