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
from typer.core import TyperGroup, TyperOption

from loopml.cli import (
    artifacts,
    audit,
    batch,
    db,
    demo,
    experiments,
    features,
    imports,
    lineage,
    loop,
    models,
    monitor,
    pipelines,
    predictions,
    reproduce,
    runs,
    serve,
    server,
    tokens,
    ui,
)
from loopml.cli.output import print_error
from loopml.errors import LoopMLError

ABOUT = (
    "loopml runs the machine-learning lifecycle as one closed loop: track training runs, register and "
    "validate models, deploy and serve them, monitor drift and performance, and retrain automatically, "
    "with every decision recorded in one metadata store.\n\n"
    "Each command below has its own --help with the details."
)

EPILOG = (
    "Examples:\n\n"
    "  loopml demo    [dim]# the whole loop end to end on bundled data, offline[/dim]\n\n"
    '  loopml runs list -e breast-cancer-demo -o "metrics.roc_auc DESC"\n\n'
    "  loopml runs compare RUN_ID RUN_ID\n\n"
    "  loopml models show breast-cancer-classifier@champion\n\n"
    "  loopml lineage models:/breast-cancer-classifier@champion\n\n"
    "  loopml monitor report breast-cancer-drift --out report.html\n\n"
    "The store comes from LOOPML_HOME (default ./.loopml), LOOPML_DB_URL and LOOPML_TRACKING_URI."
)


def _hide_flag_types(command: Any, ctx: Any) -> None:
    """Show no value placeholder after flags, in this command's help and every subcommand's.

    Typer's rich help prints a flag's type as ``<bool>`` (``--version <bool>``,
    ``--help <bool>``), which reads as if the flag took a value; an empty
    metavar leaves the column blank. The help option exists only once asked for.
    (Typer vendors its own click, whose classes are private: hence ``Any``.)
    """
    params = [*command.params, command.get_help_option(ctx)]
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub, ctx)


class LoopMLGroup(TyperGroup):
    """The root group: turns a LoopMLError from any subcommand into one line and an exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # before the root's own --help is handled, and before any subcommand parses its arguments
        _hide_flag_types(self, ctx)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        # Typer lists plain commands before sub-apps; the root lists both in the order of the loop
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: ORDER.index(name) if name in ORDER else len(ORDER))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LoopMLError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="loopml",
    cls=LoopMLGroup,
    help=ABOUT,
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
ORDER = (
    "demo", "experiments", "runs", "pipelines", "features", "reproduce", "lineage", "models", "audit", "deploy", "rollback",
    "deployments", "predictions", "serve", "batch-predict", "monitor", "loop", "ui", "server", "db", "tokens",
    "artifacts", "import",
)  # fmt: skip

# Grouped in panels in the order of the loop. short_help is the one line the root listing shows; the
# full text stays in each command's own --help.
START, TRACK, REGISTER, SERVE, MONITOR, OPERATE = (
    "Start here", "Track and reproduce", "Register and approve", "Deploy and serve", "Monitor and retrain",
    "Operate",
)  # fmt: skip
app.command("demo", help=demo.HELP, short_help="Run the whole loop end to end on bundled data, offline.",
            rich_help_panel=START)(demo.demo)  # fmt: skip
app.add_typer(experiments.app, name="experiments", short_help="List experiments (named groups of runs).",
              rich_help_panel=TRACK)  # fmt: skip
app.add_typer(runs.app, name="runs", short_help="List, inspect and compare tracked runs.", rich_help_panel=TRACK)
app.add_typer(pipelines.app, name="pipelines", short_help="List, run and inspect pipelines.", rich_help_panel=TRACK)
app.add_typer(features.app, name="features", short_help="Apply, list and show feature definitions.", rich_help_panel=TRACK)
app.command("reproduce", help=reproduce.HELP, short_help="Re-run what produced a model version and compare.",
            rich_help_panel=TRACK)(reproduce.reproduce)  # fmt: skip
app.command("lineage", help=lineage.HELP, short_help="Show where a model version or run came from.",
            rich_help_panel=TRACK)(lineage.lineage)  # fmt: skip
app.add_typer(models.app, name="models", short_help="Register versions, set aliases, move stages, approve.",
              rich_help_panel=REGISTER)  # fmt: skip
app.command("audit", help=audit.HELP, short_help="Show the audit log of registry decisions.",
            rich_help_panel=REGISTER)(audit.audit)  # fmt: skip
app.command("deploy", help=serve.DEPLOY_HELP, short_help="Deploy a version or alias, with canary or shadow.",
            rich_help_panel=SERVE)(serve.deploy)  # fmt: skip
app.command("rollback", help=serve.ROLLBACK_HELP, short_help="Return a model to its previous deployment.",
            rich_help_panel=SERVE)(serve.rollback)  # fmt: skip
app.add_typer(serve.deployments_app, name="deployments", short_help="Show what is deployed.", rich_help_panel=SERVE)
app.add_typer(predictions.app, name="predictions", short_help="Redact, erase and prune the prediction log.", rich_help_panel=SERVE)  # fmt: skip
app.command("serve", help=serve.SERVE_HELP, short_help="Serve predictions from registered models.",
            rich_help_panel=SERVE)(serve.serve)  # fmt: skip
app.command("batch-predict", help=batch.HELP, short_help="Score a parquet dataset with a registered model (local or Ray).",
            rich_help_panel=SERVE)(batch.batch_predict)  # fmt: skip
app.add_typer(monitor.app, name="monitor", short_help="Check drift, quality and performance; alerts, reports.",
              rich_help_panel=MONITOR)  # fmt: skip
app.add_typer(loop.app, name="loop", short_help="Run the continuous-training agent (retrain, gate, promote).",
              rich_help_panel=MONITOR)  # fmt: skip
app.command("ui", help=ui.HELP, short_help="Open the web UI on the embedded store (127.0.0.1).",
            rich_help_panel=OPERATE)(ui.ui)  # fmt: skip
app.command("server", help=server.HELP, short_help="Serve the REST API and the web UI for a team.",
            rich_help_panel=OPERATE)(server.server)  # fmt: skip
app.add_typer(db.app, name="db", short_help="Inspect and migrate the metadata database.", rich_help_panel=OPERATE)
app.add_typer(tokens.app, name="tokens", short_help="Create, list and revoke API tokens.", rich_help_panel=OPERATE)
app.add_typer(artifacts.app, name="artifacts", short_help="Artifact store upkeep: encryption keys, rotation.",
              rich_help_panel=OPERATE)  # fmt: skip
app.add_typer(imports.app, name="import", short_help="Import runs and models from MLflow (server or mlruns folder).",
              rich_help_panel=OPERATE)  # fmt: skip


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
    """Track, register, validate, serve and monitor ML models in one closed loop."""


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
