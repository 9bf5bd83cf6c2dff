"""mkdocs hook: the CLI reference page (``cli.md``), generated from the Typer app at build time.

It walks the command tree of ``loopml.cli.main.app`` and writes, for each command, its full help
text, its usage line and a table of its arguments and options, so the page is never out of date with
``loopml … --help``. Nothing is written to ``docs/``: the page exists only inside the build.
"""

from __future__ import annotations

import html
import inspect
from typing import Any

import typer
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from rich.text import Text

PAGE = "cli.md"

INTRO = """# CLI reference

Every `loopml` command, with the text of its `--help`. This page is generated from the command
itself when the site is built, so it always matches the installed `loopml`.

The store comes from `LOOPML_HOME` (default `./.loopml`), `LOOPML_DB_URL` and `LOOPML_TRACKING_URI`;
`loopml --version` prints the version.
"""


def escape(text: str) -> str:
    """Plain text made safe for a Markdown paragraph or table cell."""
    text = html.escape(text, quote=False)
    for char in "\\`*_[]|":
        text = text.replace(char, "\\" + char)
    return text


def plain(help_text: str | None) -> str:
    """Help text as the terminal shows it: rich markup applied (then dropped), click's ``\\b`` markers removed."""
    if not help_text:
        return ""
    return Text.from_markup(inspect.cleandoc(help_text).replace("\b\n", "").replace("\b", "")).plain


def type_label(param: Any, ctx: Any) -> str:
    """What the parameter takes: flag, its choices, its metavar or its type (Typer's ``<int>`` without brackets)."""
    if getattr(param, "is_flag", False):
        return "flag"
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        return " \\| ".join(f"`{getattr(choice, 'value', choice)}`" for choice in descriptor.choices)
    label = param.display_type(ctx).strip("<>")
    if param.param_type_name == "option" and param.metavar:
        label = param.metavar
    if (getattr(param, "multiple", False) or param.nargs == -1) and not label.startswith("list["):
        label += ", repeatable"
    return escape(label)


def default_label(param: Any) -> str:
    default = param.default
    if default is None or callable(default) or (getattr(param, "is_flag", False) and not default):
        return ""
    if isinstance(default, (list, tuple)):
        return ", ".join(f"`{item}`" for item in default) if default else ""
    return f"`{default}`"


def param_rows(command: Any, ctx: Any) -> list[str]:
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            name = f"`{param.display_name_raw}`"
        else:
            name = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        description = escape(plain(getattr(param, "help", None)).replace("\n", " "))
        if param.required:
            description = f"**required.** {description}"
        rows.append(f"| {name} | {type_label(param, ctx)} | {default_label(param)} | {description} |")
    return rows


def render_command(command: Any, path: list[str], ctx: Any, out: list[str]) -> None:
    depth = min(len(path) + 1, 4)
    out.append(f"{'#' * depth} `{' '.join(path)}`\n")
    text = plain(command.help)
    if text:
        out.append(escape(text) + "\n")
    out.append(f"```text\n{command.get_usage(ctx)}\n```\n")
    rows = param_rows(command, ctx)
    if rows:
        out.append("| Argument or option | Type | Default | Description |\n| --- | --- | --- | --- |")
        out.append("\n".join(rows) + "\n")
    subcommands = getattr(command, "commands", {})
    names = command.list_commands(ctx) if subcommands else []
    if names:
        out.append("| Command | Summary |\n| --- | --- |")
        for name in names:
            sub = subcommands[name]
            anchor = "-".join([*path, name]).lower()
            summary = sub.short_help or plain(sub.help).split("\n\n")[0].replace("\n", " ")
            out.append(f"| [`{name}`](#{anchor}) | {escape(summary)} |")
        out.append("")
        for name in names:
            sub = subcommands[name]
            render_command(sub, [*path, name], sub.context_class(sub, info_name=name, parent=ctx), out)


def render() -> str:
    from loopml.cli.main import app

    root = typer.main.get_command(app)
    out = [INTRO]
    render_command(root, ["loopml"], root.context_class(root, info_name="loopml"), out)
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, PAGE, content=render()))
    return files
