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


def beats_champion(
    metric: str = "roc_auc", *, margin: float = 0.0, segment_tolerance: float = 0.02, **options: Any
) -> Gate:
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


def no_group_worse(
    sensitive: str | Callable[[Any], Any] | None = None,
    *,
    metric: str = "tpr",
    tolerance: float = 0.05,
    **options: Any,
) -> Gate:
    """No group of the sensitive attribute may be worse off under the challenger than under the champion.

    ``sensitive`` is a column of the holdout (default: the candidate's ``segments``), or a function of
    the holdout's features giving one group per row (e.g. an age band cut from an age column); see
    ``loopml.validation.responsible.fairness_gate`` for ``options`` (``max_parity_difference``,
    ``max_equalized_odds_difference``, ``min_group_value``, ``min_rows``). Groups too small are
    "not enough data", neither pass nor fail.
    """

    def gate(candidate: Candidate, champion: Any) -> Any:
        from loopml.errors import InvalidValueError
        from loopml.validation.responsible import fairness_gate

        column = sensitive(candidate.X) if callable(sensitive) else sensitive or candidate.segments
        if column is None:
            raise InvalidValueError(
                "no_group_worse() needs sensitive=<a column of the holdout> (or the candidate's segments)."
            )
        return fairness_gate(candidate.model, champion, candidate.X, candidate.y, column, metric=metric,
                             tolerance=tolerance, **options)  # fmt: skip

    gate.__name__ = "no_group_worse"
    return gate


def business_metric(metric: str, *, max_relative_loss: float = 0.01, min_value: float | None = None) -> Gate:
    """The challenger may lose at most ``max_relative_loss`` (default 1%) of the champion's ``@loopml.metric`` value.

    A metric that raises or returns a non-number fails the gate, with its traceback as evidence.
    """

    def gate(candidate: Candidate, champion: Any) -> Any:
        from loopml.validation.responsible import business_metric_gate

        return business_metric_gate(metric, candidate.model, champion, candidate.X, candidate.y,
                                    max_relative_loss=max_relative_loss, min_value=min_value)  # fmt: skip

    gate.__name__ = "business_metric"
    return gate


def explained(*, max_rows: int = 500, **options: Any) -> Gate:
    """Not a test but a record: the challenger's global explanation (permutation importance, SHAP) on the
    holdout, stored with the gates' evidence. It passes unless explaining itself is impossible."""
    return ExplainedGate({"max_rows": max_rows, **options})


class ExplainedGate:
    """The gate :func:`explained` makes.

    The agent explains every candidate when it registers it (evidence ``"explanations"`` on the
    version); with this gate in the policy it does so with the gate's ``options`` and judges that
    record with :meth:`verdict`, rather than explaining the same model on the same holdout twice.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.__name__ = "explained"
        self.options = dict(options)

    def __call__(self, candidate: Candidate, champion: Any) -> Any:
        from loopml.explain.importance import global_explanation

        found = global_explanation(candidate.model, candidate.X, candidate.y, **self.options)
        return self.verdict(found.to_evidence())

    @staticmethod
    def verdict(record: Mapping[str, Any]) -> Any:
        """The gate's result over an explanation's evidence (failed when explaining failed)."""
        from loopml.explain.importance import GlobalExplanation
        from loopml.validation.gates import GateCheck, GateResult

        # the version's own evidence keeps the background rows; the gate's record need not
        evidence = {key: value for key, value in record.items() if key != "background"}
        error = record.get("error")
        if error:
            check = GateCheck("explanations", False, str(error), {}, skipped=False)
            return GateResult("explanations", False, (check,), {"explanations": evidence})
        top = ", ".join(GlobalExplanation.from_evidence(record).ranking()[:3]) or "none"
        check = GateCheck("explanations", True, f"most important: {top}", {}, skipped=False)
        return GateResult("explanations", True, (check,), {"explanations": evidence})
