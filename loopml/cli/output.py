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
