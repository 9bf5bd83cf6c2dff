"""``loopml features``: apply definitions from a Python file, list and show what is applied.

Thin shells over ``loopml.apply_features`` and the store's feature definitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

app = typer.Typer(
    help="Feature store: apply entity, feature view and feature service definitions; list and show them.",
    no_args_is_help=True,
)


def _store() -> Any:
    import loopml

    return loopml.get_tracking_client().store


@app.command("apply", help="Run a Python file of definitions and store each changed one as a new version.")
def apply(
    path: Annotated[Path, typer.Argument(help="The Python file defining Entity, FeatureView, FeatureService objects.")],
    force: Annotated[
        bool, typer.Option("--force", help="Apply breaking changes to views that registered models use (audited).")
    ] = False,
) -> None:
    from loopml.features.apply import apply_features, load_definitions

    records = apply_features(load_definitions(path), force=force)
    table = Table(header_style="bold")
    for column in ("Kind", "Name", "Version", "Change"):
        table.add_column(column)
    for record in records:
        change = Text("new version", style="green") if record.changed else Text("unchanged", style="dim")
        table.add_row(record.kind, Text(record.name, style="bold"), str(record.version), change)
    output.console().print(table)


@app.command("list", help="Every applied feature view (latest versions) and feature service.")
def list_features() -> None:
    store = _store()
    views, services = store.features.list_feature_views(), store.features.list_feature_services()
    out = output.console()
    if not views and not services:
        out.print("No feature definitions yet. Apply some: [bold]loopml features apply features.py[/].")
        return
    table = Table(header_style="bold", title="Feature views")
    for column in ("View", "Version", "Join keys", "Features", "TTL", "Source", "Applied"):
        table.add_column(column, no_wrap=column in ("View", "Applied"))
    for record in views:
        spec = record.spec
        keys = [k for entity in spec.get("entities", []) for k in entity.get("join_keys", [])]
        table.add_row(
            Text(record.name, style="bold"),
            str(record.version),
            ", ".join(keys),
            ", ".join(spec.get("schema", {})),
            str(spec.get("ttl", "")),
            _source(spec.get("source", {})),
            f"{output.fmt_time(record.created_at)} by {record.created_by}",
        )
    out.print(table)
    if services:
        table = Table(header_style="bold", title="Feature services")
        for column in ("Service", "Version", "Features"):
            table.add_column(column)
        for record in services:
            parts = [f"{item['view']}[{', '.join(item['features'])}]" for item in record.spec.get("features", [])]
            table.add_row(Text(record.name, style="bold"), str(record.version), "; ".join(parts))
        out.print(table)


def _source(source: dict[str, Any]) -> str:
    kind = source.get("kind")
    if kind == "file":
        return f"parquet {source.get('path')}"
    if kind == "sql":
        return f"sql {source.get('table') or 'query'}"
    if kind == "dataframe":
        return f"DataFrame {str(source.get('sha256', ''))[:12]}"
    return str(kind)


@app.command("show", help="One feature view: its schema, source and every version.")
def show(
    name: Annotated[str, typer.Argument(help="The feature view.")],
    version: Annotated[int | None, typer.Option("--version", "-v", help="This version (default: the latest).")] = None,
) -> None:
    store = _store()
    record = store.features.get_feature_view(name, version)
    spec = record.spec
    out = output.console()
    keys = [k for entity in spec.get("entities", []) for k in entity.get("join_keys", [])]
    out.print(
        output.kv_table(
            f"Feature view {record.name} v{record.version}",
            [
                ("Join keys", ", ".join(keys)),
                ("Timestamp", spec.get("timestamp")),
                ("TTL", spec.get("ttl")),
                ("Source", _source(spec.get("source", {}))),
                ("Description", spec.get("description") or output.MISSING),
                ("Fingerprint", record.fingerprint[:16]),
                ("Applied", f"{output.fmt_time(record.created_at)} by {record.created_by}"),
            ],
        )
    )
    schema = Table(header_style="bold", title="Features")
    schema.add_column("Feature")
    schema.add_column("Type")
    for feature, dtype in spec.get("schema", {}).items():
        schema.add_row(feature, dtype)
    out.print(schema)
    history = Table(header_style="bold", title="Versions")
    for column in ("Version", "Fingerprint", "Features", "Applied"):
        history.add_column(column)
    for older in store.features.feature_definition_history("view", name):
        history.add_row(
            str(older.version),
            older.fingerprint[:16],
            ", ".join(f"{f}:{t}" for f, t in older.spec.get("schema", {}).items()),
            f"{output.fmt_time(older.created_at)} by {older.created_by}",
        )
    out.print(history)


# materialize / materialize-incremental (the online store) live in loopml/cli/materialize.py
from loopml.cli import materialize as _materialize  # noqa: E402

_materialize.register(app)
