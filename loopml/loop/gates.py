"""Gates a policy puts a challenger through, over ``loopml.validation``: thresholds and beats-the-champion."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loopml.loop.policy import Candidate

Gate = Callable[[Candidate, Any], Any]  # (challenger candidate, champion model or None) -> GateResult


def thresholds(bounds: Mapping[str, float | str]) -> Gate:
    """The challenger's holdout metrics must meet ``bounds`` (see ``loopml.validation.validate_model``)."""

    def gate(candidate: Candidate, champion: Any) -> Any:
        from loopml.validation.gates import validate_model

        return validate_model(candidate.model, candidate.X, candidate.y, bounds)

    gate.__name__ = "thresholds"
    return gate


def beats_champion(metric: str = "roc_auc", *, margin: float = 0.0, segment_tolerance: float = 0.02, **options: Any) -> Gate:
    """The challenger must beat the champion on the same holdout (paired bootstrap, McNemar, per segment).

    With no champion yet, the gate passes and says so.
    """

    def gate(candidate: Candidate, champion: Any) -> Any:
        from loopml.validation.gates import GateCheck, GateResult, compare_models

        if champion is None:
            check = GateCheck("champion", True, "no champion yet: nothing to beat", {}, skipped=True)
            return GateResult("challenger_vs_champion", True, (check,), {})
        return compare_models(
            candidate.model,
            champion,
            candidate.X,
            candidate.y,
            metric,
            candidate.segments,
            margin=margin,
            segment_tolerance=segment_tolerance,
            **options,
        )

    gate.__name__ = "beats_champion"
    return gate
