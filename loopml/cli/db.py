"""``loopml db``: the metadata database's schema revision, and migrating it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from loopml.cli import output

app = typer.Typer(
    help="Inspect and migrate the metadata database (LOOPML_DB_URL, default LOOPML_HOME/loopml.db).",
    no_args_is_help=True,
)


@app.command("upgrade", help="Migrate the database schema to the newest revision this loopml knows (safe to repeat).")
def upgrade_db(
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Target revision id; 'head' is the newest.")
    ] = "head",
) -> None:
    from loopml.store.sql.engine import head_revision, upgrade

    with _engine() as (engine, shown_url):
        before, after = upgrade(engine, revision)
        head = head_revision()
    out = output.console()
    out.print(Text.assemble(("Database  ", "bold"), shown_url))
    out.print(Text.assemble(("Before    ", "bold"), _rev(before, head)))
    out.print(Text.assemble(("After     ", "bold"), (_rev(after, head), "green")))
    out.print(Text("Already up to date." if before == after else "Schema upgraded.", style="dim"))


@app.command("current", help="Show the database's schema revision and the newest one this loopml knows.")
def current_db() -> None:
    from loopml.config import get_settings
    from loopml.store.sql.engine import current_revision, head_revision

    out = output.console()
    database = _sqlite_path(get_settings().db_url)
    if database is not None and not database.exists():
        out.print(Text.assemble(("Database  ", "bold"), str(database), ("  (not created yet)", "dim")))
        out.print(Text("It is created on first use, or now with: loopml db upgrade", style="dim"))
        return
    with _engine() as (engine, shown_url):
        current = current_revision(engine)
    head = head_revision()
    out.print(Text.assemble(("Database  ", "bold"), shown_url))
    out.print(Text.assemble(("Revision  ", "bold"), _rev(current, head)))
    if current != head:
        out.print(Text(f"Head is {head}: run 'loopml db upgrade'.", style="yellow"))


def _rev(revision: str | None, head: str) -> str:
    if revision is None:
        return "none (empty database)"
    return f"{revision} (head)" if revision == head else revision


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


@contextmanager
def _engine() -> Iterator[tuple[Any, str]]:
    """An engine on LOOPML_DB_URL and the URL with its password hidden; database failures become StoreError."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from loopml.config import get_settings
    from loopml.errors import InvalidValueError, StoreError
    from loopml.store.sql.engine import make_engine

    url = get_settings().db_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise InvalidValueError(
            f"LOOPML_DB_URL is not a database URL ({exc}); use sqlite:///path/to/loopml.db "
            "or postgresql+psycopg://user@host/db."
        ) from exc
    engine = make_engine(url)
    try:
        yield engine, shown
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"Cannot use the database at {shown}: {reason}") from exc
    finally:
        engine.dispose()
