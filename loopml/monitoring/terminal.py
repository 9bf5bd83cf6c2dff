"""Terminal summaries of monitoring reports as ``rich`` tables (what ``loopml monitor`` prints).

Strings from the data (column names, categories in problem messages) are markup-escaped: rich reads
``[...]`` as a style tag, so a column ``price[usd]`` would lose its brackets and one named ``[/]``
would raise ``MarkupError``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from loopml.monitoring.drift import DriftReport
    from loopml.monitoring.quality import QualityReport


def drift_table(report: DriftReport) -> Table:
    """One row per column (drifted ones in red), captioned with the dataset verdict."""
    from rich.markup import escape
    from rich.table import Table

    verdict = "[bold red]dataset drift[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    table = Table(
        title="Drift",
        caption=f"{verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns drifted "
        f"({report.share_drifted:.0%}; threshold {report.drift_share:.0%})",
    )
    table.add_column("column")
    table.add_column("kind")
    table.add_column("test")
    table.add_column("statistic", justify="right")
    table.add_column("p-value", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("drifted")
    for result in report.results:
        name = f"{result.column} (prediction)" if result is report.prediction else result.column
        table.add_row(
            escape(name),
            result.kind,
            result.test,
            _number(result.statistic),
            _number(result.p_value),
            _number(result.threshold),
            "[bold red]yes[/]" if result.drifted else "no",
            style="red" if result.drifted else None,
        )
    return table


def quality_table(report: QualityReport) -> Table:
    """One row per problem found (a single green row when there is none)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Data quality", caption=f"{report.n_current:,} rows checked against {report.n_reference:,}")
    table.add_column("column")
    table.add_column("check")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    table.add_column("what")
    if report.ok:
        table.add_row("[green]all columns[/]", "[green]no problems[/]", "", "", "")
    for problem in report.problems:
        table.add_row(
            escape(problem.column), problem.check, f"{problem.count:,}", f"{problem.share:.1%}", escape(problem.message)
        )
    return table


def _number(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.3g}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"
