"""The report's figures, drawn with matplotlib and returned as inline SVG text.

Figures are built on ``matplotlib.figure.Figure`` directly, not through
``pyplot``: no global figure registry, no GUI backend, safe in a server thread.
Text stays text in the SVG (``svg.fonttype = none``), which keeps a figure to a
few kilobytes and lets the browser render it with the page's font.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.monitoring.samples import Distribution

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"
LINE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
MAX_LEGEND = 12  # more lines than this get no legend: it would cover the plot
_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 9,
    "legend.fontsize": 7,
    "legend.frameon": False,
    # Titles and tick labels are column names and categories from the data: "$5-$10" is text, not mathtext
    # (which would mangle it, or raise on "$\frac$" and break the whole report).
    "text.parse_math": False,
}


def distribution_svg(dist: Distribution, title: str) -> str:
    """Reference against current, as shares of rows: overlaid histograms, or side-by-side bars per category."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context(_RC):
        fig = Figure(figsize=(4.2, 2.4))
        ax = fig.add_subplot()
        ref = np.asarray(dist.reference, dtype=np.float64)
        cur = np.asarray(dist.current, dtype=np.float64)
        ref_share = ref / ref.sum() if ref.sum() else ref
        cur_share = cur / cur.sum() if cur.sum() else cur
        if dist.edges is not None:
            edges = np.asarray(dist.edges)
            ax.stairs(ref_share, edges, fill=True, color=REFERENCE_COLOR, alpha=0.45, label="reference")
            ax.stairs(cur_share, edges, fill=True, color=CURRENT_COLOR, alpha=0.45, label="current")
        elif dist.labels:
            positions = np.arange(len(dist.labels))
            ax.bar(positions - 0.2, ref_share, width=0.4, color=REFERENCE_COLOR, label="reference")
            ax.bar(positions + 0.2, cur_share, width=0.4, color=CURRENT_COLOR, label="current")
            ax.set_xticks(
                positions,
                [_short(label) for label in dist.labels],
                rotation=45 if len(dist.labels) > 6 else 0,
                ha="right" if len(dist.labels) > 6 else "center",
            )
        else:
            ax.text(0.5, 0.5, "no values to plot", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title, loc="left")
        ax.set_ylabel("share of rows")
        if dist.edges is not None or dist.labels:  # with nothing drawn, legend() would warn "no artists"
            ax.legend(loc="upper right")
        return _svg(fig)


def lines_svg(
    frame: pd.DataFrame,
    x: str,
    panels: Sequence[tuple[str, Sequence[str]]],
    series: Sequence[str] = (),
    title: str = "",
) -> str:
    """Small panels over ``x`` (time): each panel is (title, metric columns), one line per metric and per
    combination of the ``series`` columns. Panels whose metrics are all missing are left out."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    panels = [(name, [m for m in metrics if m in frame.columns]) for name, metrics in panels]
    panels = [(name, metrics) for name, metrics in panels if metrics and frame[metrics].notna().any().any()]
    columns = min(3, max(1, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    frame = frame.assign(**{x: _naive(frame[x])})  # matplotlib's date axis is much slower on tz-aware values
    with rc_context(_RC):
        fig = Figure(figsize=(3.6 * columns, 2.5 * rows + (0.3 if title else 0)))
        fig.subplots_adjust(
            left=0.07, right=0.98, bottom=0.16 / rows, top=1 - (0.2 if title else 0.12) / rows, wspace=0.28, hspace=0.75
        )
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        groups: list[tuple[Any, pd.DataFrame]] = (
            list(frame.groupby(list(series), sort=True)) if series else [("", frame)]
        )
        for ax, (name, metrics) in zip(axes, panels, strict=False):
            for i, (label, part, metric) in enumerate(
                (label, part, metric) for label, part in groups for metric in metrics
            ):
                part = part.sort_values(x)
                key = ", ".join(map(str, label)) if isinstance(label, tuple) else str(label)
                shown = " · ".join(t for t in (key, metric if len(metrics) > 1 else "") if t)
                ax.plot(
                    part[x],
                    part[metric],
                    marker="o",
                    markersize=2.5,
                    linewidth=1.2,
                    color=LINE_COLORS[i % len(LINE_COLORS)],
                    label=shown or None,
                )
            ax.set_title(name, loc="left")
            ax.tick_params(axis="x", labelrotation=30)
            if (len(metrics) > 1 or series) and len(groups) * len(metrics) <= MAX_LEGEND:
                ax.legend(loc="best")
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        if not panels:
            axes[0].set_visible(True)
            axes[0].text(0.5, 0.5, "nothing to plot", ha="center", va="center", transform=axes[0].transAxes)
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=9)
        return _svg(fig)


def _naive(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        naive: pd.Series = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return naive
    return values


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: the SVG sits inside HTML


def _short(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
