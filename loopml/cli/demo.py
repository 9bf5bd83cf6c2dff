"""``loopml demo``: a small tracked sweep, to see loopml at work in under a minute."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output

HELP = (
    "Train 9 scikit-learn classifiers on the bundled breast-cancer data as child runs of one sweep run, "
    "rank them, and register the best as breast-cancer-classifier@champion. Writes to the configured store "
    "(default ./.loopml); works offline."
)


def demo(
    experiment: Annotated[
        str, typer.Option("--experiment", "-e", metavar="NAME", help="Experiment to record the sweep in.")
    ] = "breast-cancer-demo",
) -> None:
    from loopml.demo import run_demo

    run_demo(
        output.console(), experiment=experiment, render_lineage=output.lineage_tree, render_audit=output.audit_table
    )
