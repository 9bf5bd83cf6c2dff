"""What the model and monitor pages show of responsible ML: explanations, fairness by group, business metrics.

Pure functions over stored JSON (a version's evidence, a monitor's results), so the pages only lay
them out: the model page's summary sits above the raw evidence, the monitor page's beside drift
and performance (the same rows as the HTML report, ``loopml.monitoring.report_responsible``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loopml.entities.monitoring import MonitorResult
from loopml.monitoring.report_responsible import responsible_history, responsible_section

TOP_FEATURES = 10


def _gates(evidence: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every gate result in the evidence: the loop's ``gates`` list and gates recorded under their own key."""
    found = (
        [g for g in evidence.get("gates", []) if isinstance(g, Mapping)]
        if isinstance(evidence.get("gates"), list)
        else []
    )
    found += [v for v in evidence.values() if isinstance(v, Mapping) and "gate" in v and "checks" in v]
    return found


def model_view(evidence: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Top features, fairness checks per group and business metrics of a version's evidence; None if none."""
    if not evidence:
        return None
    view: dict[str, Any] = {}
    explained = evidence.get("explanations")
    gates = _gates(evidence)
    if not isinstance(explained, Mapping):  # the loop's explained() gate keeps it in its figures
        explained = next((g["figures"]["explanations"] for g in gates if g.get("gate") == "explanations"
                          and isinstance(g.get("figures"), Mapping) and "explanations" in g["figures"]), None)  # fmt: skip
    if isinstance(explained, Mapping):
        shap = explained.get("shap") if isinstance(explained.get("shap"), Mapping) else None
        permutation = explained.get("permutation") if isinstance(explained.get("permutation"), Mapping) else None
        rows = shap["mean_abs"][:TOP_FEATURES] if shap else []
        top = max((float(r["value"]) for r in rows), default=0.0) or 1.0
        view["explanations"] = {
            "method": shap.get("method") if shap else None,
            "output": shap.get("output") if shap else None,
            "features": [
                {"feature": r["feature"], "value": float(r["value"]), "width": round(100 * float(r["value"]) / top)}
                for r in rows
            ],
            "permutation": (permutation or {}).get("importances", [])[:TOP_FEATURES],
            "scoring": (permutation or {}).get("scoring"),
        }
    fairness = [g for g in gates if g.get("gate") == "fairness" or "sensitive" in (g.get("figures") or {})]
    if fairness:
        view["fairness"] = [
            {"gate": g.get("gate"), "passed": g.get("passed"), "sensitive": g.get("figures", {}).get("sensitive"),
             "metric": g.get("figures", {}).get("metric"), "checks": g.get("checks", [])}
            for g in fairness
        ]  # fmt: skip
    business = [g for g in gates if str(g.get("gate", "")).startswith("business:")]
    if business:
        view["business"] = [
            {"gate": g.get("gate"), "passed": g.get("passed"), "metric": g.get("figures", {}).get("metric"),
             "code_hash": str(g.get("figures", {}).get("code_hash", ""))[:12], "checks": g.get("checks", [])}
            for g in business
        ]  # fmt: skip
    return view or None


def monitor_view(results: Sequence[MonitorResult]) -> dict[str, Any] | None:
    """The newest check's fairness, business metrics and attribution drift, and their history; None if none."""
    latest = next((r for r in reversed(results) if r.figures.get("responsible")), None)
    if latest is None:
        return None
    import pandas as pd

    frame = pd.DataFrame([{"time": pd.Timestamp(r.time, unit="ms", tz="UTC"), **dict(r.summary)} for r in results])
    return responsible_section(latest.figures["responsible"], responsible_history(frame))
