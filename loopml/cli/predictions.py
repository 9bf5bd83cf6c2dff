"""``loopml predictions``: the prediction log's privacy and size controls (redaction, erasure, retention).

Against the store directly anyone who can open the database may run these;
against a server they take an admin token (they decide what personal data
is kept). Every change is an audit event.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

app = typer.Typer(
    help=(
        "Redact, erase and prune the prediction log. Redaction applies to rows logged from then on: "
        "'drop' removes a column, 'hash' keeps an HMAC-SHA256 of it (key: LOOPML_REDACTION_KEY, so joins still "
        "work), 'truncate:N' keeps its first N characters. The entity key is the input column erasure finds "
        "people by."
    ),
    no_args_is_help=True,
)


@app.command("redact", help="Declare a model's redaction rules and entity key (replaces the previous ones).")
def redact(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    rules: Annotated[
        list[str] | None,
        typer.Option("--rule", "-r", metavar="COLUMN=RULE", help="e.g. email=drop, ssn=hash, zip=truncate:3 (repeat)."),
    ] = None,
    entity_key: Annotated[
        str | None, typer.Option("--entity-key", metavar="COLUMN", help="The input column naming the person.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the audit log).")] = None,
) -> None:
    import loopml
    from loopml.errors import InvalidValueError

    parsed: dict[str, str] = {}
    for item in rules or []:
        column, sep, rule = item.partition("=")
        if not sep or not column:
            raise InvalidValueError(f"A rule is COLUMN=RULE (e.g. email=drop), got {item!r}.")
        parsed[column] = rule
    policy = loopml.set_redaction(name, parsed, entity_key=entity_key, reason=reason)
    _show(name, dict(policy.redact), policy.entity_key)


@app.command("policy", help="Show a model's redaction rules and entity key.")
def policy(name: Annotated[str, typer.Argument(help="The registered model.")]) -> None:
    import loopml

    found = loopml.get_redaction(name)
    _show(name, dict(found.redact), found.entity_key)


def _show(name: str, rules: dict[str, str], entity_key: str | None) -> None:
    out = output.console()
    if not rules and entity_key is None:
        out.print(f"[bold]{name}[/]: no redaction; inputs are logged as received and no entity key is declared.")
        return
    table = Table(header_style="bold", title=f"Prediction log policy of {name}")
    table.add_column("Column", style="bold")
    table.add_column("Rule")
    for column, rule in sorted(rules.items()):
        table.add_row(Text(column), Text(rule + (" (entity key)" if column == entity_key else "")))
    if entity_key is not None and entity_key not in rules:
        table.add_row(Text(entity_key), Text("kept (entity key)"))
    out.print(table)


@app.command("delete", help="Erase every logged request (and its feedback) whose entity key is KEY.")
def delete(
    key: Annotated[str, typer.Option("--key", help="The entity key value, e.g. user-42.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model's log (default: all).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the audit log, e.g. a ticket).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    import loopml

    where = f"model {model}" if model else "every model"
    if not yes:
        typer.confirm(f"Erase every logged prediction and feedback for this key in {where}?", abort=True)
    counts = loopml.erase_predictions(key, model=model, reason=reason)
    output.console().print(
        f"Erased {counts['predictions']} logged prediction(s) and {counts['feedback']} feedback row(s) in {where}."
    )


@app.command("prune", help="Apply a retention now: remove logged predictions and feedback older than it.")
def prune(
    older_than: Annotated[str, typer.Option("--older-than", metavar="AGE", help="e.g. 30d, 12h, 90m.")],
) -> None:
    import loopml

    counts = loopml.prune_predictions(older_than)
    parts = ", ".join(f"{value} {what}" for what, value in counts.items())
    output.console().print(f"Retention {older_than}: removed {parts}.")
