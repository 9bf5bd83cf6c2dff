"""``loopml tokens``: API tokens for a server started with ``--auth``.

Against the store directly (``LOOPML_DB_URL``) anyone who can open the
database may manage tokens, which is how the first admin token is made;
against a server (``LOOPML_TRACKING_URI=http://…``) it takes an admin token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

if TYPE_CHECKING:
    from loopml.store import Store

app = typer.Typer(
    help=(
        "Create, list and revoke API tokens. Clients send them as 'Authorization: Bearer …' "
        "(LOOPML_TOKEN); roles: viewer (read), editor (write runs, register), admin (production, approvals, tokens)."
    ),
    no_args_is_help=True,
)

ROLE_STYLES = {"viewer": "cyan", "editor": "green", "admin": "bold magenta"}


def _store() -> Store:
    import loopml

    return loopml.get_tracking_client().store


@app.command("create", help="Create a token and print it once; only its scrypt hash is stored.")
def create(
    name: Annotated[str, typer.Option("--name", help="A name for the token (who or what uses it, e.g. ci).")],
    role: Annotated[str, typer.Option("--role", help="viewer, editor or admin.")] = "viewer",
) -> None:
    from loopml.auth.tokens import create_token

    issued = create_token(_store(), name, role)
    out = output.console()
    out.print(
        f"Created token [bold]{issued.token.name}[/] with role "
        f"[{ROLE_STYLES[issued.token.role.value]}]{issued.token.role.value}[/]. "
        "Copy it now; it is not shown again:"
    )
    # soft_wrap keeps the token on one line so it copies intact
    out.print(Text(issued.secret, style="bold yellow"), soft_wrap=True)
    out.print(f"Use it with: [cyan]export LOOPML_TOKEN={issued.secret[:12]}…[/]")


@app.command("list", help="List tokens (never their secrets).")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
) -> None:
    from loopml.auth.tokens import list_tokens

    tokens = list_tokens(_store(), include_revoked=all_)
    out = output.console()
    if not tokens:
        out.print("No tokens yet. Create one with [bold]loopml tokens create --name NAME --role ROLE[/].")
        return
    table = Table(header_style="bold")
    table.add_column("Name", style="bold")
    table.add_column("Role")
    table.add_column("ID", style=output.ID_STYLE)
    table.add_column("Created", no_wrap=True)
    table.add_column("By")
    table.add_column("Revoked", no_wrap=True)
    for token in tokens:
        table.add_row(
            Text(token.name),
            Text(token.role.value, style=ROLE_STYLES[token.role.value]),
            token.token_id,
            output.fmt_time(token.created_at),
            Text(token.created_by),
            output.fmt_time(token.revoked_at) if token.revoked_at else "",
        )
    out.print(table)


@app.command("revoke", help="Revoke a token by name; servers refuse it within seconds.")
def revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    from loopml.auth.tokens import revoke_token

    token = revoke_token(_store(), name)
    output.console().print(f"Revoked token [bold]{token.name}[/] ({token.role.value}).")


@app.command("whoami", help="Show the token in LOOPML_TOKEN as the server sees it.")
def whoami() -> None:
    import os

    from loopml.errors import AuthenticationError

    token = os.environ.get("LOOPML_TOKEN")
    if not token:
        raise AuthenticationError("LOOPML_TOKEN is not set.")
    found = _store().tokens.authenticate(token)
    if found is None:
        raise AuthenticationError("The token in LOOPML_TOKEN is unknown, malformed or revoked.")
    output.console().print(
        Text.assemble(
            (found.name, "bold"),
            " (",
            (found.role.value, ROLE_STYLES[found.role.value]),
            f"), created {output.fmt_time(found.created_at)} by {found.created_by}",
        )
    )
