"""``loopml demo``: the whole loop on a bundled data set, from a tracked sweep to an automatic retrain."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output

HELP = (
    "The closed loop on the bundled breast-cancer data: train 9 classifiers as tracked runs, validate and "
    "register the best as breast-cancer-classifier@champion, deploy and serve it on 127.0.0.1, send live "
    "traffic, shift it for real, let the monitor raise a drift alert and the agent retrain, gate, canary and "
    "promote a new champion; prints every decision and the drift report's path. Writes to the configured "
    "store (default ./.loopml); works offline, in under a minute."
)


def demo(
    experiment: Annotated[
        str, typer.Option("--experiment", "-e", metavar="NAME", help="Experiment to record the sweep in.")
    ] = "breast-cancer-demo",
    loop: Annotated[
        bool, typer.Option("--loop/--no-loop", help="Close the loop after the sweep (monitor, retrain, promote).")
    ] = True,
) -> None:
    from loopml.demo import run_demo

    run_demo(
        output.console(),
        experiment=experiment,
        render_lineage=output.lineage_tree,
        render_audit=output.audit_table,
        close_loop=loop,
    )
