"""Policies: what the continuous-training agent does for one model, and the candidate a pipeline hands it.

Example:
    >>> policy = loopml.policy(  # doctest: +SKIP
    ...     "churn", monitor="churn-drift", pipeline=train_churn,
    ...     gates=[loopml.loop.thresholds({"roc_auc": 0.8}), loopml.loop.beats_champion("roc_auc")],
    ...     rollout="canary:10%->100%", approval=False,
    ... )
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidValueError
from loopml.loop.cron import Cron
from loopml.loop.rollout import parse_rollout


@dataclass(frozen=True)
class Candidate:
    """What a retraining pipeline returns: the fitted model and the holdout the gates score it on.

    A pipeline may return this, or a mapping with the keys ``model``,
    ``holdout`` (a DataFrame holding the features and the target) and
    ``target`` (the target's column), plus optionally ``segments`` (a column
    of the holdout for per-segment checks) and ``train`` (the DataFrame the
    model was fitted on). The agent stores ``train`` as the new version's
    training dataset, which is what its monitors compare live traffic with
    once it is champion; without it they need an explicit reference.
    """

    model: Any
    holdout: Any
    target: str
    segments: str | None = None
    train: Any = None

    @classmethod
    def of(cls, output: Any) -> Candidate:
        if isinstance(output, Candidate):
            return output
        if isinstance(output, Mapping) and {"model", "holdout", "target"} <= set(output):
            candidate = cls(
                output["model"], output["holdout"], output["target"], output.get("segments"), output.get("train")
            )
            for key in ("holdout", "train"):
                frame = getattr(candidate, key)
                if key == "train" and frame is None:
                    continue
                columns = getattr(frame, "columns", None)
                if columns is None or candidate.target not in columns:
                    raise InvalidValueError(
                        f"A retraining pipeline's {key!r} must be a DataFrame holding the target column "
                        f"{candidate.target!r}; got {type(frame).__name__}"
                        + ("" if columns is None else f" with columns {list(columns)}") + "."
                    )
            return candidate
        raise InvalidValueError(
            "A retraining pipeline must return loopml.loop.Candidate(model, holdout, target) or a mapping with the "
            f"keys 'model', 'holdout' and 'target'; got {type(output).__name__}."
        )

    @property
    def X(self) -> Any:
        return self.holdout.drop(columns=[self.target])

    @property
    def y(self) -> Any:
        return self.holdout[self.target].to_numpy()


@dataclass(frozen=True)
class CanaryRules:
    """When a canary may grow: enough traffic over the window and no worse than the champion beside it.

    ``max_error_rate_increase`` compares the share of 5xx answers;
    ``max_accuracy_drop`` compares accuracy on requests whose labels came back
    (skipped while fewer than ``min_labelled`` of each side have labels). A drop
    beyond it fails the canary only when it is significant at ``confidence``
    (a one-sided two-proportion z-test): with 25 labelled canary rows one
    wrong answer moves accuracy by 4 points, which is noise, not a verdict.
    ``metrics`` names business metrics (``@loopml.metric``) judged on the same
    labelled requests: the canary may lose at most ``max_metric_loss`` of the
    champion's value, and a metric that fails fails the canary.
    """

    window_s: float = 60.0
    min_requests: int = 50
    max_error_rate_increase: float = 0.01
    max_accuracy_drop: float = 0.02
    min_labelled: int = 30
    confidence: float = 0.95
    timeout_s: float | None = None  # give up waiting for traffic after this long (default: 10 windows)
    metrics: tuple[str, ...] = ()  # @loopml.metric names the canary may not lose more than max_metric_loss of
    max_metric_loss: float = 0.01  # a share of the champion's value on its labelled requests


@dataclass(frozen=True)
class Policy:
    """Ties a model, the monitor that watches it, the pipeline that retrains it, its gates and its rollout."""

    model: str
    pipeline: Any
    monitor: str | None = None
    schedule: str | None = None
    gates: Sequence[Callable[..., Any]] = ()
    rollout: str = "canary:10%->100%"
    approval: bool = False
    params: Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]] = field(default_factory=dict)
    canary: CanaryRules = field(default_factory=CanaryRules)
    name: str = ""
    experiment: str | None = None
    timezone: str | None = None  # the IANA zone the schedule's times are in ("Europe/Berlin"); None is UTC

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InvalidValueError(f"A policy needs a registered model name, got {self.model!r}.")
        if not hasattr(self.pipeline, "trace"):
            raise InvalidValueError(
                f"A policy's pipeline must be a @loopml.pipeline function, got {type(self.pipeline).__name__}."
            )
        if self.monitor is None and self.schedule is None:
            raise InvalidValueError(f"Policy for {self.model!r} needs a monitor, a schedule, or both to trigger it.")
        if self.schedule is not None:
            Cron.parse(self.schedule, self.timezone)
        elif self.timezone is not None:
            raise InvalidValueError(
                f"Policy for {self.model!r} has timezone={self.timezone!r} but no schedule for it to apply to."
            )
        parse_rollout(self.rollout)
        if not self.name:
            object.__setattr__(self, "name", f"retrain-{self.model}")
        if not isinstance(self.name, str) or len(self.name) > 256 or self.name.strip() != self.name or "/" in self.name:
            # the store keys tasks and cursors by this name, and over REST it is one segment of a URL
            raise InvalidValueError(
                f"A policy name must be 1-256 characters without '/' or surrounding spaces, got {self.name!r}."
            )

    @property
    def steps(self) -> tuple[float, ...]:
        return parse_rollout(self.rollout)

    def pipeline_params(self, trigger: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.params(trigger) if callable(self.params) else self.params)


_registry: dict[str, Policy] = {}
_lock = threading.Lock()


def policy(model: str, *, pipeline: Any, **options: Any) -> Policy:
    """Define (and register in this process) the policy for ``model``; the agent runs registered policies."""
    made = Policy(model, pipeline, **options)
    with _lock:
        _registry[made.name] = made
    return made


def registered_policies() -> list[Policy]:
    with _lock:
        return list(_registry.values())


def clear_policies() -> None:
    """Forget every registered policy (tests, or reloading a policies module)."""
    with _lock:
        _registry.clear()
