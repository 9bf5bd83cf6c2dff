"""Everything the CLI prints goes through here: consoles, tables and value formatting.

Consoles are built per call rather than at import time: Rich decides on colour
when a Console is created, and a test runner (or a pipe) may have replaced
``sys.stdout`` since the module was imported.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from loopml.errors import LoopMLError

MISSING = Text("—", style="dim")
ID_STYLE = "dim"
STATUS_STYLES = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "bold red", "KILLED": "magenta"}
#: Metric keys containing one of these are "lower is better" when picking the best run.
LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse", "deviance", "time", "latency", "duration")
DIFF_STYLE = "bold yellow"
BEST_STYLE = "bold green"


PIPE_WIDTH = 200


def console() -> Console:
    """A console on the current stdout; when piped (and COLUMNS is unset) lines are not cut at 80."""
    out = Console(highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out.width = PIPE_WIDTH
    return out


def err_console() -> Console:
    """A console on the current stderr."""
    return Console(stderr=True, highlight=False)


def print_error(exc: LoopMLError) -> None:
    """``Error: <headline>: <message>`` on one red line; a filter's caret snippet follows it, dim."""
    first, _, rest = exc.message.partition("\n")
    text = first if first.lower().startswith(exc.headline.lower()) else f"{exc.headline}: {first}"
    err = err_console()
    err.print(Text(f"Error: {text}", style="bold red"), soft_wrap=True)
    if rest.strip():
        err.print(Text(rest, style="dim"), soft_wrap=True)


# -- values --------------------------------------------------------------------------------


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ISO time, to the second."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000).isoformat(sep=" ", timespec="seconds")


def fmt_duration(ms: int | float | None) -> str:
    """``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 04h``."""
    if ms is None:
        return "—"
    seconds = ms / 1000
    if seconds < 1:
        return f"{ms:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def fmt_number(value: float | int | None) -> str:
    """Four significant digits; integral values below 1e15 as integers."""
    if value is None:
        return "—"
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.4g}"


def fmt_bytes(size: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``2.3 MiB``."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def shorten(text: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters, saying how much was cut."""
    first = text.splitlines()[0] if text else ""
    if len(first) <= limit and first == text:
        return text
    return f"{first[:limit]}… ({len(text)} chars)"


def lower_is_better(key: str) -> bool:
    lowered = key.lower()
    return any(token in lowered for token in LOWER_IS_BETTER)


# -- tables ----------------------------------------------------------------------------------


def kv_table(title: str, rows: Iterable[tuple[str, Any]], *, style: str = "", key_header: str = "Key") -> Table:
    """A two-column table (key, value); values that are not Text are shown with str()."""
    table = Table(title=title, title_justify="left", title_style=f"bold {style}".strip(), style=style, expand=False)
    table.add_column(key_header, style=style or "cyan", no_wrap=True)
    table.add_column("Value", style=style, overflow="fold")
    for key, value in rows:
        table.add_row(Text(key), value if isinstance(value, Text) else Text(str(value)))
    return table


def runs_table(
    runs: Sequence[Any],
    *,
    experiment_names: Mapping[int, str] | None = None,
    metric_keys: Sequence[str] = (),
    param_keys: Sequence[str] = (),
    show_started: bool = True,
    show_duration: bool = True,
) -> Table:
    """One row a run: full id (dim), name, [experiment], status, start, duration, params, metrics."""
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    table.add_column("Run ID", style=ID_STYLE, no_wrap=True)
    table.add_column("Name", style="bold", no_wrap=True)
    if experiment_names is not None:
        table.add_column("Experiment", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    if show_started:
        table.add_column("Started", no_wrap=True)
    if show_duration:
        table.add_column("Duration", justify="right", no_wrap=True)
    for key in param_keys:
        table.add_column(key, style="cyan", no_wrap=True)
    for key in metric_keys:
        table.add_column(key, justify="right", no_wrap=True)
    for run in runs:
        info = run.info
        cells: list[Any] = [Text(info.run_id), Text(info.name)]
        if experiment_names is not None:
            cells.append(Text(experiment_names.get(info.experiment_id, str(info.experiment_id))))
        cells.append(status_text(info.status.value))
        if show_started:
            cells.append(fmt_time(info.start_time))
        if show_duration:
            cells.append(fmt_duration(info.duration_ms))
        cells += [Text(run.params[key]) if key in run.params else MISSING for key in param_keys]
        cells += [fmt_number(run.metrics[key]) if key in run.metrics else MISSING for key in metric_keys]
        table.add_row(*cells)
    return table


def fitted_runs_table(
    out: Console,
    runs: Sequence[Any],
    *,
    experiment_names: Mapping[int, str] | None,
    metric_keys: Sequence[str],
    param_keys: Sequence[str],
) -> tuple[Table, int]:
    """The runs table with as many columns as fit the console, the least useful dropped first.

    Returns the table and how many metric or param columns were left out. Squeezing
    every column instead would cut run names and ids into unreadable stubs.
    """
    # (show experiment, started, duration, params): each level gives up one more column
    levels = [
        (True, True, True, True),
        (True, False, True, True),
        (True, False, True, False),
        (True, False, False, False),
        (False, False, False, False),
    ]
    table = None
    for index, (with_names, started, duration, with_params) in enumerate(levels):
        params = list(param_keys) if with_params else []
        # on the first level keep at least three metrics, else a start time would crowd them out
        need = min(len(metric_keys), 3) if index == 0 else min(len(metric_keys), 1)
        for count in range(len(metric_keys), need - 1, -1):
            table = runs_table(
                runs,
                experiment_names=experiment_names if with_names else None,
                metric_keys=metric_keys[:count],
                param_keys=params,
                show_started=started,
                show_duration=duration,
            )
            # measure unconstrained: a measurement against the console's options is clamped to its width
            if Measurement.get(out, out.options.update_width(10_000), table).maximum <= out.width:
                return table, len(metric_keys) - count + len(param_keys) - len(params)
    assert table is not None
    return table, len(param_keys)


def compare_table(runs: Sequence[Any]) -> Table:
    """Params and latest metrics side by side: differing rows in yellow, each metric's best marked ★."""
    table = Table(header_style="bold", expand=False, show_lines=False)
    table.add_column("", no_wrap=True)
    for run in runs:
        header = Text(run.info.name, style="bold")
        header.append(f"\n{run.run_id[:12]}", style=ID_STYLE)
        table.add_column(header, justify="right", overflow="fold")
    table.add_row(Text("status", style="dim"), *(status_text(r.info.status.value) for r in runs))
    table.add_row(Text("duration", style="dim"), *(fmt_duration(r.info.duration_ms) for r in runs))
    param_keys = sorted({key for run in runs for key in run.params})
    if param_keys:
        table.add_section()
        table.add_row(Text("Params", style="bold underline"), *("" for _ in runs))
    for key in param_keys:
        values = [run.params.get(key) for run in runs]
        differ = len(set(values)) > 1
        cells = [MISSING if value is None else Text(value, style=DIFF_STYLE if differ else "") for value in values]
        table.add_row(Text(key, style=DIFF_STYLE if differ else "cyan"), *cells)
    metric_keys = sorted({key for run in runs for key in run.metrics})
    if metric_keys:
        table.add_section()
        table.add_row(Text("Metrics", style="bold underline"), *("" for _ in runs))
    for key in metric_keys:
        table.add_row(*_metric_row(key, [run.metrics.get(key) for run in runs]))
    return table


def _metric_row(key: str, values: list[float | None]) -> list[Text]:
    present = [v for v in values if v is not None and not math.isnan(v)]
    shown = [None if v is None else fmt_number(v) for v in values]
    differ = len(set(shown)) > 1
    best: float | None = None
    if len(present) > 1 and len(set(present)) > 1:
        best = min(present) if lower_is_better(key) else max(present)
    cells = [Text(key, style=DIFF_STYLE if differ else "cyan")]
    for value, text in zip(values, shown, strict=True):
        if text is None:
            cells.append(MISSING)
        elif best is not None and value == best:
            cells.append(Text(f"★ {text}", style=BEST_STYLE))
        else:
            cells.append(Text(text, style=DIFF_STYLE if differ else ""))
    return cells


# -- registry ----------------------------------------------------------------------------------

STAGE_STYLES = {"candidate": "cyan", "staging": "yellow", "production": "bold green", "archived": "dim"}
REQUEST_STYLES = {"pending": "yellow", "approved": "green", "rejected": "red", "applied": "dim green"}
#: icon and colour of each lineage node kind; unknown kinds get the last entry's look
LINEAGE_LOOKS = {
    "model_version": ("◆", "bold magenta"),
    "run": ("▶", "bold cyan"),
    "parent_run": ("↑", "cyan"),
    "dataset": ("▤", "bold green"),
    "code": ("⎇", "yellow"),
    "environment": ("⚙", "blue"),
    "experiment": ("▣", "white"),
    "": ("•", ""),
}
_INLINE_ITEMS = 6


def stage_text(stage: Any) -> Text:
    """A lifecycle stage in its colour (production green, archived dim)."""
    value = str(getattr(stage, "value", stage))
    return Text(value, style=STAGE_STYLES.get(value, ""))


def request_status_text(status: Any) -> Text:
    value = str(getattr(status, "value", status))
    return Text(value, style=REQUEST_STYLES.get(value, ""))


def compact_json(value: Any, limit: int = 200) -> str:
    """One-line JSON with sorted keys, cut at ``limit`` characters; ``—`` for None."""
    import json

    if value is None:
        return "—"
    # ", " and ": " keep it one line yet let a narrow column wrap between items, not inside them
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pretty_json(value: Any, width: int = 76, *, indent: int = 2, _used: int = 0, _level: int = 0) -> str:
    """Indented JSON where any object or array that fits in ``width`` stays on one line.

    Plain ``indent=2`` spends five lines on ``{"name": "a", "auc": 0.9}``; a list of
    nine of those would fill the screen. ``_used`` is how much of the line is taken already.
    """
    import json

    compact = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    if (
        not isinstance(value, Mapping | list | tuple) or not value or _used + len(compact) + 1 <= width
    ):  # +1: a comma may follow
        return compact
    pad = " " * (indent * (_level + 1))
    lines = []
    if isinstance(value, Mapping):
        for key, item in sorted(value.items(), key=lambda pair: str(pair[0])):
            head = f"{pad}{json.dumps(str(key), ensure_ascii=False)}: "
            lines.append(head + pretty_json(item, width, indent=indent, _used=len(head), _level=_level + 1))
        opening, closing = "{", "}"
    else:
        for item in value:
            lines.append(pad + pretty_json(item, width, indent=indent, _used=len(pad), _level=_level + 1))
        opening, closing = "[", "]"
    return opening + "\n" + ",\n".join(lines) + "\n" + " " * (indent * _level) + closing


def json_text(value: Any, width: int = 76) -> Text:
    """``pretty_json`` of ``value``, highlighted like Rich highlights JSON."""
    from rich.highlighter import JSONHighlighter

    return JSONHighlighter()(Text(pretty_json(value, max(width, 40))))


def change_text(before: Any, after: Any) -> Text:
    """``before → after`` as compact JSON; a side that is None is left out."""
    text = Text()
    if before is not None:
        text.append(compact_json(before), style="red")
        text.append(" → ", style="dim")
    elif after is not None:
        text.append("→ ", style="dim")
    if after is not None:
        text.append(compact_json(after), style="green")
    return text


def _short_mapping(values: Mapping[str, Any], *, numbers: bool) -> str:
    items = sorted(values.items())
    shown = [f"{key}={fmt_number(value) if numbers else value}" for key, value in items[:_INLINE_ITEMS]]
    if len(items) > _INLINE_ITEMS:
        shown.append(f"+{len(items) - _INLINE_ITEMS} more")
    return " ".join(shown)


def evidence_summary(evidence: Mapping[str, Any], limit: int = 8) -> str:
    """Evidence on one line: scalars as ``key=value``, then nested values as ``key{n}`` / ``key[n]``."""
    scalars, nested = [], []
    for key, value in sorted(evidence.items()):
        if isinstance(value, Mapping):
            nested.append(f"{key}{{{len(value)}}}")
        elif isinstance(value, list | tuple):
            nested.append(f"{key}[{len(value)}]")
        else:
            shown = str(fmt_number(value) if isinstance(value, float) else value)
            scalars.append(f"{key}={shown if len(shown) <= 40 else shown[:39] + '…'}")
    items = scalars + nested
    if len(items) > limit:
        items = [*items[:limit], f"+{len(items) - limit} more"]
    return " ".join(items)


def _lineage_details(kind: str, label: str, attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The key attributes of a node shown after its label (unless the label has them), as (text, style) pieces."""
    a = attributes
    parts: list[tuple[str, str]] = []
    if kind == "model_version":
        if a.get("stage"):
            parts.append((str(a["stage"]), STAGE_STYLES.get(str(a["stage"]), "")))
        if a.get("created_by"):
            parts.append((f"by {a['created_by']}", "dim"))
        if a.get("created_at"):
            parts.append((fmt_time(a["created_at"]), "dim"))
        if a.get("evidence"):
            parts.append((f"\nevidence {evidence_summary(a['evidence'])}", "dim"))
    elif kind in ("run", "parent_run"):
        if a.get("status"):
            parts.append((str(a["status"]), STATUS_STYLES.get(str(a["status"]), "")))
        if a.get("context"):
            parts.append((f"context {a['context']}", "dim"))
        # params and metrics go on lines of their own under the label: inline they would wrap mid-item
        if a.get("params"):
            parts.append(("\nparams  " + _short_mapping(a["params"], numbers=False), "cyan"))
        if a.get("metrics"):
            parts.append(("\nmetrics " + _short_mapping(a["metrics"], numbers=True), ""))
    elif kind == "dataset":
        if a.get("sha256") and str(a["sha256"])[:12] not in label:
            parts.append((f"sha256 {str(a['sha256'])[:12]}", "dim"))
        if a.get("rows") is not None:
            size = f"{a['rows']} rows"
            columns = a.get("columns", len(a["schema"]) if isinstance(a.get("schema"), Mapping) else None)
            parts.append((size if columns is None else f"{size}, {columns} columns", ""))
        if a.get("context") and f"({a['context']})" not in label:
            parts.append((str(a["context"]), "green"))
    elif kind == "code":
        if a.get("commit") and str(a["commit"])[:12] not in label:
            parts.append((str(a["commit"])[:12], "yellow"))
        if a.get("branch"):
            parts.append((f"on {a['branch']}", ""))
        if a.get("dirty"):
            parts.append(("uncommitted changes in " + str(a.get("diff") or "a diff"), "bold red"))
        else:
            parts.append(("clean", "green"))
    elif kind == "environment" and a.get("platform"):
        parts.append((str(a["platform"]), "dim"))
    return parts


def lineage_label(node: Any) -> Text:
    """One line for a lineage node: icon, label in the kind's colour, then its key attributes."""
    icon, style = LINEAGE_LOOKS.get(node.kind, LINEAGE_LOOKS[""])
    text = Text.assemble((f"{icon} ", style), (node.label, style))
    for piece, piece_style in _lineage_details(node.kind, node.label, node.attributes):
        if not piece.startswith("\n"):
            text.append("  ")
        text.append(piece, style=piece_style)
    return text


def lineage_tree(node: Any) -> Any:
    """A ``rich.tree.Tree`` of a LineageNode and its children, one icon and colour per kind."""
    from rich.tree import Tree

    def add(parent: Any, child: Any) -> None:
        branch = parent.add(lineage_label(child))
        for grandchild in child.children:
            add(branch, grandchild)

    tree = Tree(lineage_label(node), guide_style="dim")
    for child in node.children:
        add(tree, child)
    return tree


def audit_table(events: Sequence[Any], *, title: str | None = None) -> Table:
    """One row an event: local time, actor, action, target, before → after (or the evidence), reason."""
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        show_edge=False,
    )
    table.add_column("Time", min_width=10)  # wraps between date and time when space is short
    table.add_column("Actor", style="cyan", no_wrap=True)
    # action over target: side by side they would leave the change no room on an 80-column terminal
    table.add_column("Action / target", overflow="fold")
    table.add_column("Change", overflow="fold", min_width=20)
    table.add_column("Reason", overflow="fold", max_width=40)
    for event in events:
        change = change_text(event.before, event.after)
        if event.evidence is not None and event.after is None:
            change.append(f"evidence {evidence_summary(event.evidence)}", style="green")
        table.add_row(
            fmt_time(event.time),
            Text(event.actor),
            Text.assemble((event.action, "bold"), "\n", event.target),
            change,
            Text(event.reason) if event.reason else MISSING,
        )
    return table
