"""``loopml lineage``: where a model version or run came from, or where a dataset went."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from loopml.cli import output

HELP = (
    "Draw the lineage of a model version or run (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID): "
    "its run, datasets (by sha256), code commit, environment and parent runs; or, with --dataset, "
    "every run that used a dataset and the versions registered from them."
)

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def lineage(
    uri: Annotated[
        str | None,
        typer.Argument(
            metavar="[URI]", help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID (NAME@ALIAS works too)."
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", metavar="NAME@SHA", help="Follow a dataset instead, e.g. iris-train@3fa2b1."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tree as JSON (every attribute) instead.")] = False,
) -> None:
    import loopml

    node = loopml.get_lineage(None if uri is None else _normalise(uri), dataset=dataset)
    if as_json:
        import json

        # plain echo, not Rich: the JSON must reach pipes unwrapped and unstyled
        typer.echo(json.dumps(node.to_dict(), indent=2, default=str))
        return
    output.console().print(output.lineage_tree(node))


def _normalise(uri: str) -> str:
    """Accept the short forms people type: ``NAME@ALIAS``, ``NAME/3`` and a bare run id."""
    text = uri.strip()
    if ":/" in text:
        return text
    if _RUN_ID.match(text):
        return f"runs:/{text}"
    return f"models:/{text}"
