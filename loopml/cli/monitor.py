"""``loopml monitor``: list monitors, run a check now, show recent results, write the HTML report.

Monitors are defined in Python (``loopml.monitor(...)``); these commands are
thin shells over ``loopml.run_monitor``, ``loopml.search_monitor_results`` and
``loopml.write_monitor_report``.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

app = typer.Typer(
    help="Watch deployed models: drift, data quality, performance and operations, with alerts and reports. "
    "Define monitors in Python with loopml.monitor(...).",
    no_args_is_help=True,
)

STATUS_STYLES = {"ok": "green", "alert": "bold red", "error": "yellow"}
SHOWN = (
    ("share_drifted", "drift share"), ("drifted_columns", "drifted"), ("prediction_drift", "pred. drift"),
    ("quality_problems", "quality"), ("accuracy", "accuracy"), ("rmse", "rmse"), ("error_rate", "errors"),
    ("latency_p99_ms", "p99 ms"),
)  # fmt: skip
ORDER = (  # figures in the order a reader scans them
    "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "r2", "mape",
    "error_rate", "client_errors", "server_errors", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms",
)  # fmt: skip


@app.command("list", help="Every monitor: model, checks, window, thresholds and its latest result.")
def list_monitors(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only the monitors of this model.")] = None,
) -> None:
    import loopml
    from loopml.monitoring.monitors import list_monitors as find

    found = find(model)
    out = output.console()
    if not found:
        out.print('No monitors yet. Define one in Python: [bold]loopml.monitor("name", "model", ...)[/].')
        return
    store = loopml.get_tracking_client().store
    table = Table(header_style="bold")
    for column in ("Monitor", "Model", "Checks", "Window", "Thresholds", "Schedule", "Last check", "Status"):
        table.add_column(column, no_wrap=column in ("Monitor", "Last check"))
    for monitor in found:
        spec = monitor.spec
        latest = store.monitoring.list_results(monitor.name, max_results=1)
        last = latest[-1] if latest else None
        table.add_row(
            Text(monitor.name, style="bold"),
            Text(monitor.model + _watched(spec.get("version"), " v")),
            Text(", ".join(spec.get("checks", []))),
            Text(_window(spec.get("window") or {})),
            Text(", ".join(f"{k}={v:g}" for k, v in (spec.get("thresholds") or {}).items()) or "defaults"),
            Text(spec.get("schedule") or "—"),
            output.fmt_time(last.time) if last else "never",
            _status(last.status) if last else output.MISSING,
        )
    out.print(table)


@app.command("check", help="Run the monitor now: store the result, raise and act on alerts, print a summary.")
def check(
    name: Annotated[str, typer.Argument(help="The monitor.")],
    reference: Annotated[
        str | None, typer.Option("--reference", "-r", metavar="NAME@SHA", help="Compare with this logged dataset.")
    ] = None,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="Exit 1 when the check is not ok (for cron and CI).")
    ] = False,
) -> None:
    from loopml.monitoring.monitors import run_monitor as run_check
    from loopml.monitoring.terminal import drift_table, quality_table

    result = run_check(name, reference=reference)
    out = output.console()
    summary = result.summary
    out.print(Text.assemble(f"Monitor {name}: check {result.result.result_id} ", _status(result.status),
                            f" ({_scope(result)})"))  # fmt: skip
    if result.drift is not None and result.drift.results:
        out.print(drift_table(result.drift))
    if result.quality is not None:
        out.print(quality_table(result.quality))
    figures = _figures_table(result.figures)
    if figures is not None:
        out.print(figures)
    for note in [*summary.get("notes", []), *summary.get("errors", [])]:
        out.print(Text(f"note: {note}", style="dim"))
    if result.alerts:
        out.print(Text(f"{len(result.alerts)} alert(s) raised:", style="bold red"))
        for alert in result.alerts:
            out.print(Text.assemble(("  ", ""), (alert.kind, "bold"), f" (alert {alert.alert_id}): {alert.message}"))
    else:
        out.print(Text("No alert raised.", style="green"))
    failed = [a for a in result.actions if not a.ok]
    if result.actions:
        style = "yellow" if failed else "dim"
        out.print(Text(f"Actions: {len(result.actions) - len(failed)} ran, {len(failed)} failed", style=style))
        for outcome in failed:
            out.print(Text(f"  {outcome.action} on alert {outcome.alert_id}: {outcome.error}", style="yellow"))
    if fail_on_alert and not result.ok:
        raise typer.Exit(1)


@app.command("show", help="The monitor's definition and its recent results.")
def show(
    name: Annotated[str, typer.Argument(help="The monitor.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many recent results.")] = 20,
) -> None:
    from loopml.monitoring.monitors import get_monitor
    from loopml.monitoring.results import search_monitor_results

    monitor = get_monitor(name)
    spec = monitor.spec
    out = output.console()
    out.print(output.kv_table(f"Monitor {name}", [
        ("model", monitor.model + _watched(spec.get("version"), " version ")),
        ("checks", ", ".join(spec.get("checks", []))),
        ("columns", ", ".join(spec["columns"]) if spec.get("columns") else "every reference column requests carry"),
        ("window", _window(spec.get("window") or {})),
        ("reference", spec.get("reference") or "training data of the version (lineage)"),
        ("thresholds", ", ".join(f"{k}={v:g}" for k, v in (spec.get("thresholds") or {}).items()) or "defaults"),
        ("schedule", spec.get("schedule") or "—"),
        ("actions", ", ".join(_action(a) for a in spec.get("actions", [])) or "—"),
        ("defined", f"{output.fmt_time(monitor.updated_at)} by {monitor.created_by}"),
    ]))  # fmt: skip
    frame = search_monitor_results(name, max_results=limit)
    if frame.empty:
        out.print(f"No results yet: run [bold]loopml monitor check {name}[/].")
        return
    table = Table(header_style="bold", title=f"Last {len(frame)} result(s), oldest first", title_justify="left")
    table.add_column("Result", justify="right", style=output.ID_STYLE)
    table.add_column("Time", no_wrap=True)
    table.add_column("Version", justify="right")
    table.add_column("Status")
    table.add_column("Alerts")
    shown = [(key, header) for key, header in SHOWN if key in frame.columns and frame[key].notna().any()]
    for _, header in shown:
        table.add_column(header, justify="left" if header == "drifted" else "right")
    for row in frame.itertuples(index=False):
        values = row._asdict()  # type: ignore[operator, misc]  # pandas-stubs give the rows no namedtuple methods
        table.add_row(
            str(values["result_id"]),
            output.fmt_time(int(values["time"].timestamp() * 1000)),
            "—" if _missing(values["version"]) else str(int(values["version"])),
            _status(values["status"]),
            Text(values["alerts"] or "—", style="red" if values["alerts"] else "dim"),
            *(_cell(values.get(key)) for key, _ in shown),
        )
    out.print(table)


@app.command("report", help="Write one self-contained HTML report (distributions, drift and performance over time).")
def report(
    name: Annotated[str, typer.Argument(help="The monitor.")],
    out_path: Annotated[
        Path, typer.Option("--out", "-o", dir_okay=False, help="Where to write the report (an HTML file).")
    ] = Path("report.html"),
    since: Annotated[
        str | None, typer.Option("--since", metavar="TIME", help="Only results from this ISO time on.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100_000, help="At most this many results.")] = 1000,
) -> None:
    from loopml.monitoring.results import write_monitor_report

    try:
        written = write_monitor_report(name, out_path, since=since, max_results=limit)
    except OSError as exc:  # a folder, a missing or read-only place: one line, not a traceback
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out_path) else ""
        raise typer.BadParameter(
            f"cannot write {out_path}: {exc.strerror or exc}{where}.", param_hint="'--out'"
        ) from None
    output.console().print(Text.assemble("Report of monitor ", (name, "bold"), f" written to {written}"))


# -- helpers --------------------------------------------------------------------------------------------------


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _scope(result: Any) -> str:
    window = result.figures.get("window") or {}
    reference = result.figures.get("reference") or {}
    if window.get("n_rows", 0) is None:  # an operations-only check reads the requests alone
        parts = [f"{window.get('n_requests') or 0:,} requests"]
    else:
        parts = [f"{window.get('n_rows', 0):,} rows"]
        if window.get("n_requests") is not None:
            parts[0] += f" of {window['n_requests']:,} requests"
    if result.result.version is not None:
        parts.append(f"{result.result.model} v{result.result.version}")
    if reference.get("source") == "not needed":
        parts.append("no reference (not needed by these checks)")
    elif reference:
        ref = reference.get("dataset") or "a DataFrame"
        parts.append(f"against {ref} ({reference.get('source')}, {reference.get('n_rows', 0):,} rows)")
    return "; ".join(parts)


def _figures_table(figures: Any) -> Table | None:
    performance, operations = figures.get("performance") or {}, figures.get("operations") or {}
    rows = []
    if performance.get("n"):
        scope = f"{performance['n']:,} labelled rows"
        rows += [("performance", k, performance[k], scope) for k in ORDER if performance.get(k) is not None]
    if operations.get("n"):
        scope = f"{operations['n']:,} requests"
        rows += [("operations", k, operations[k], scope) for k in ORDER if operations.get(k) is not None]
    if not rows:
        return None
    table = Table(title="Performance and operations", header_style="bold")
    for column in ("check", "figure", "value", "over"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for check_name, key, value, scope in rows:
        table.add_row(check_name, key, output.fmt_number(value), Text(scope, style="dim"))
    return table


def _watched(version: int | str | None, prefix: str) -> str:
    """The watched version after the model name: `` v3`` (or ``prefix`` 3), ``@champion`` for an alias."""
    if version is None:
        return ""
    if isinstance(version, str) and not version.isdigit():
        return f"@{version}"
    return f"{prefix}{version}"


def _window(window: dict[str, Any]) -> str:
    parts = [f"last {window['last']:,}"] if window.get("last") else []
    parts += [f"{key} {window[key]}" for key in ("since", "until") if window.get(key) is not None]
    return " ".join(parts) or "—"


def _action(action: dict[str, Any]) -> str:
    kind = action.get("type")
    if kind == "webhook":
        return f"webhook {action.get('url')}"
    if kind == "callable":
        return f"call {action.get('target')}"
    return str(kind)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any) -> Text:
    if _missing(value):
        return output.MISSING
    if type(value).__name__ in ("bool", "bool_"):
        return Text("yes", style="red") if value else Text("no")
    if isinstance(value, numbers.Number):
        return Text(output.fmt_number(float(value)))  # type: ignore[arg-type]
    return Text(output.shorten(str(value), 40))
