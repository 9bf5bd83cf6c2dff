"""The responsible-ML part of the monitoring report: fairness by group, business metrics, attribution drift.

Turns the ``responsible`` figures of a stored check (``loopml.monitoring.responsible``)
and the summary columns of earlier checks into rows of text for
``templates/monitoring/report.html``, beside drift and accuracy. Cells are
plain strings: the template escapes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

#: Summary columns that follow fairness and attribution drift over time (business metrics: ``metric.<name>``).
HISTORY_COLUMNS = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "attribution_rank_correlation",
    "attribution_share_shift",
)


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, int | float):
        return f"{value:.{digits}g}"
    return str(value)


def responsible_section(
    figures: Mapping[str, Any] | None, history: pd.DataFrame | None = None
) -> dict[str, Any] | None:
    """The template's ``responsible`` block, or None when there is nothing to show."""
    if not figures and (history is None or history.empty):
        return None
    figures = figures or {}
    section: dict[str, Any] = {}
    fair = figures.get("fairness")
    if isinstance(fair, Mapping) and fair.get("groups"):
        section["fairness"] = {
            "sensitive": str(fair.get("sensitive", "")),
            "parity": _number(fair.get("demographic_parity_difference")),
            "odds": _number(fair.get("equalized_odds_difference")),
            "head": ["group", "rows", "selection rate", "TPR", "FPR", "accuracy", "verdict"],
            "rows": [
                (
                    [
                        str(g["group"]),
                        str(g["n"]),
                        _number(g.get("selection_rate")),
                        _number(g.get("tpr")),
                        _number(g.get("fpr")),
                        _number(g.get("accuracy")),
                        "judged" if g.get("enough_data") else "not enough data",
                    ],
                    not g.get("enough_data"),
                )
                for g in fair["groups"]
            ],
        }
    business = figures.get("business")
    if isinstance(business, Mapping) and business:
        section["business"] = {
            "head": ["metric", "value", "labelled rows", "direction", "code hash"],
            "rows": [
                (
                    [
                        name,
                        _number(v.get("value"), 6) if v.get("error") is None else "failed",
                        str(v.get("n", "")),
                        "higher is better" if v.get("higher_is_better") else "lower is better",
                        str(v.get("code_hash", ""))[:12],
                    ],
                    v.get("error") is not None,
                )
                for name, v in business.items()
            ],
        }
    drift = figures.get("attribution_drift")
    if isinstance(drift, Mapping) and drift.get("features"):
        section["attribution"] = {
            "message": str(drift.get("message", "")),
            "drifted": bool(drift.get("drifted")),
            "head": ["feature", "reference share", "current share", "reference rank", "current rank"],
            "rows": [
                (
                    [
                        str(f["feature"]),
                        f"{f['reference_share']:.1%}",
                        f"{f['current_share']:.1%}",
                        str(f["reference_rank"]),
                        str(f["current_rank"]),
                    ],
                    f["reference_rank"] != f["current_rank"],
                )
                for f in drift["features"]
            ],
        }
    if history is not None and not history.empty:
        columns = [c for c in history.columns if c != "time"]
        section["history"] = {
            "head": ["time", *columns],
            "rows": [
                ([str(row["time"])[:19], *(_number(row[c]) for c in columns)], False) for _, row in history.iterrows()
            ],
        }
    return section or None


def responsible_history(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Fairness gaps, business metrics and attribution drift of each check over time (the summary columns)."""
    columns = [c for c in frame.columns if c in HISTORY_COLUMNS or str(c).startswith("metric.")]
    if not columns:
        return None
    rows = frame[frame[columns].notna().any(axis=1)]
    return None if rows.empty else rows[["time", *columns]].reset_index(drop=True)
