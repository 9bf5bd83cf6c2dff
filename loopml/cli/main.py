"""The ``loopml`` command: a root Typer app with one sub-app per noun.

Every module under ``loopml.cli`` imports only typer, rich and loopml.errors at
the top, and the loopml API inside each command, so ``loopml --help`` never
pulls in SQLAlchemy, pandas or scikit-learn. A LoopMLError raised anywhere
below ends the command with one red line and the error's exit code, never a
traceback; click usage errors keep their usage message and exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from loopml.cli import (
    audit,
    db,
    demo,
    experiments,
    lineage,
    loop,
    models,
    monitor,
    pipelines,
    reproduce,
    runs,
    serve,
    server,
    tokens,
)
from loopml.cli.output import print_error
from loopml.errors import LoopMLError

EPILOG = (
    "Examples:\n\n"
    "  loopml demo    [dim]# train a small sweep and see it tracked[/dim]\n\n"
    '  loopml runs list -e breast-cancer-demo -o "metrics.roc_auc DESC"\n\n'
    "  loopml runs compare RUN_ID RUN_ID\n\n"
    "  loopml models show breast-cancer-classifier@champion\n\n"
    "  loopml lineage models:/breast-cancer-classifier@champion\n\n"
    "  loopml monitor report breast-cancer-drift --out report.html\n\n"
    "The store comes from LOOPML_HOME (default ./.loopml), LOOPML_DB_URL and LOOPML_TRACKING_URI."
)


class LoopMLGroup(TyperGroup):
    """The root group: turns a LoopMLError from any subcommand into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LoopMLError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="loopml",
    cls=LoopMLGroup,
    help="Track runs, register models and see where they came from.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="tokens")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(monitor.app, name="monitor")
app.add_typer(loop.app, name="loop")
app.command("reproduce", help=reproduce.HELP)(reproduce.reproduce)
app.command("lineage", help=lineage.HELP)(lineage.lineage)
app.command("audit", help=audit.HELP)(audit.audit)
app.command("demo", help=demo.HELP)(demo.demo)
app.command("server", help=server.HELP)(server.server)
app.command("serve", help=serve.SERVE_HELP)(serve.serve)
app.command("deploy", help=serve.DEPLOY_HELP)(serve.deploy)
app.command("rollback", help=serve.ROLLBACK_HELP)(serve.rollback)
app.add_typer(serve.deployments_app, name="deployments")


def _version(value: bool) -> None:
    if value:
        from loopml import __version__

        typer.echo(f"loopml {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the loopml version and exit."),
    ] = False,
) -> None:
    """Track runs, register models and see where they came from."""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``loopml`` console script."""
    command = typer.main.get_command(app)
    try:
        # standalone mode: click prints usage errors with their usage line and exits 2 itself
        command.main(args=list(argv) if argv is not None else None, prog_name="loopml", standalone_mode=True)
    except LoopMLError as exc:  # raised outside a subcommand's invoke (e.g. while parsing)
        print_error(exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
