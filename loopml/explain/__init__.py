"""Responsible ML: explanations (permutation importance, SHAP), fairness by segment, business metrics.

* ``explain_model(version, data)`` stores a version's global explanation as evidence;
  ``explain(model, X)`` (and ``LoadedModel.explain``) gives per-row SHAP attributions
  that add up to the output minus the expected value.
* ``fairness(y_true, y_pred, sensitive)`` gives fairlearn's group figures with
  "not enough data" for small groups.
* ``@metric`` registers a business metric that gates, canaries and monitors name
  like a built-in one.

Gates over these live in ``loopml.validation.responsible`` and ``loopml.loop.gates``.
See ``docs/responsible.md``. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "AttributionDrift": "loopml.explain.drift",
    "Attributions": "loopml.explain.explainers",
    "BusinessMetric": "loopml.explain.metrics",
    "ExplanationBudget": "loopml.explain.budget",
    "Explainer": "loopml.explain.explainers",
    "FairnessReport": "loopml.explain.fairness",
    "GlobalExplanation": "loopml.explain.importance",
    "GroupFigures": "loopml.explain.fairness",
    "MetricValue": "loopml.explain.metrics",
    "attribution_drift": "loopml.explain.drift",
    "evaluate_metric": "loopml.explain.metrics",
    "explain": "loopml.explain.local",
    "explain_model": "loopml.explain.importance",
    "fairness": "loopml.explain.fairness",
    "get_business_metric": "loopml.explain.metrics",
    "global_explanation": "loopml.explain.importance",
    "metric": "loopml.explain.metrics",
    "registered_metrics": "loopml.explain.metrics",
}

__all__ = [
    "AttributionDrift",
    "Attributions",
    "BusinessMetric",
    "Explainer",
    "ExplanationBudget",
    "FairnessReport",
    "GlobalExplanation",
    "GroupFigures",
    "MetricValue",
    "attribution_drift",
    "evaluate_metric",
    "explain",
    "explain_model",
    "fairness",
    "get_business_metric",
    "global_explanation",
    "metric",
    "registered_metrics",
]

if TYPE_CHECKING:
    from loopml.explain.budget import ExplanationBudget
    from loopml.explain.drift import AttributionDrift, attribution_drift
    from loopml.explain.explainers import Attributions, Explainer
    from loopml.explain.fairness import FairnessReport, GroupFigures, fairness
    from loopml.explain.importance import GlobalExplanation, explain_model, global_explanation
    from loopml.explain.local import explain
    from loopml.explain.metrics import (
        BusinessMetric,
        MetricValue,
        evaluate_metric,
        get_business_metric,
        metric,
        registered_metrics,
    )

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
