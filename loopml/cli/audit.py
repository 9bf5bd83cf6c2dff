"""``loopml audit``: who changed what in the registry, when and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.text import Text

from loopml.cli import output

if TYPE_CHECKING:
    from loopml.entities.audit import AuditEvent

HELP = (
    "Show the audit log: every registry decision (register, alias, transition, approval, evidence) "
    "with its time, actor, before → after and reason; the newest --limit events, oldest first."
)

#: the store answers oldest first; to show the newest N we read up to this many and keep the tail
_READ_AT_MOST = 100_000


def audit(
    target: Annotated[
        str | None,
        typer.Option(
            "--target", "-t", metavar="T", help="A model (also finds its versions and aliases), NAME/3 or NAME@alias."
        ),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", "-a", metavar="A", help="e.g. alias.move, or alias.* for every alias event."),
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", metavar="X", help="Only events by this actor.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="ISO", help="Only events at or after this local time, e.g. 2026-11-23T09:00."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="ISO", help="Only events before this local time.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=_READ_AT_MOST, help="Show the newest N events.")
    ] = 50,
) -> None:
    import loopml

    events = cast(
        "list[AuditEvent]",
        loopml.search_audit_events(
            target=target, action=action, actor=actor, since=since, until=until, max_results=_READ_AT_MOST
        ),
    )
    out = output.console()
    if not events:
        filtered = any(value is not None for value in (target, action, actor, since, until))
        out.print(Text("No audit events match." if filtered else "No audit events yet.", style=""))
        return
    shown = events[-limit:]
    out.print(output.audit_table(shown))
    footer = Text(f"{len(shown)} event{'s' if len(shown) != 1 else ''}, oldest first", style="dim")
    if len(events) > len(shown):
        footer.append(f"; {len(events) - len(shown)} earlier not shown (raise --limit)")
    out.print(footer)
