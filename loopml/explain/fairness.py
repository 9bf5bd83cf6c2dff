"""Group fairness by segment: selection rate, true and false positive rates, and the gaps between groups.

The definitions are fairlearn's (``fairlearn.metrics``), which the tests
hold these figures to on the same data:

* selection rate: the share of rows predicted positive;
* true positive rate (recall) and false positive rate of each group;
* demographic parity difference: the largest minus the smallest selection rate;
* equalized odds difference: the larger of the TPR gap and the FPR gap.

A group with fewer than ``min_rows`` rows (or, for a rate, no row to divide
by) has no verdict: its figures are reported with ``enough_data: false`` and
it takes no part in the differences. Fewer than two groups with enough data
leave the differences as None ("not enough data"), never as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.errors import InvalidValueError

#: Group figures a gate or monitor may bound, and whether higher is better for each.
GROUP_METRICS: Mapping[str, bool] = {
    "selection_rate": True,
    "tpr": True,
    "fpr": False,
    "accuracy": True,
}
DEFAULT_MIN_ROWS = 30
NOT_ENOUGH_DATA = "not enough data"


@dataclass(frozen=True)
class GroupFigures:
    """One group's counts and rates; a rate is None where it has nothing to divide by."""

    group: str
    n: int
    positives: int
    negatives: int
    selection_rate: float | None
    tpr: float | None
    fpr: float | None
    accuracy: float | None
    enough_data: bool

    def value(self, metric: str) -> float | None:
        """The named figure (one of :data:`GROUP_METRICS`)."""
        found: float | None = getattr(self, metric)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n": self.n,
            "positives": self.positives,
            "negatives": self.negatives,
            "selection_rate": self.selection_rate,
            "tpr": self.tpr,
            "fpr": self.fpr,
            "accuracy": self.accuracy,
            "enough_data": self.enough_data,
        }


@dataclass(frozen=True)
class FairnessReport:
    """Every group's figures and the differences between the groups that had enough data."""

    sensitive: str
    groups: tuple[GroupFigures, ...]
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    min_rows: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def group(self, name: str) -> GroupFigures | None:
        return next((g for g in self.groups if g.group == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "fairness",
            "sensitive": self.sensitive,
            "min_rows": self.min_rows,
            "demographic_parity_difference": self.demographic_parity_difference,
            "equalized_odds_difference": self.equalized_odds_difference,
            "groups": [g.to_dict() for g in self.groups],
            "notes": list(self.notes),
        }


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _spread(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) - min(present) if len(present) >= 2 else None


def group_labels(values: Any, n: int, what: str = "sensitive") -> np.ndarray:
    """The sensitive attribute as an array of strings (missing values become ``"missing"``)."""
    import pandas as pd

    array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values, dtype=object)
    if array.ndim != 1 or len(array) != n:
        raise InvalidValueError(f"The {what} attribute has {array.shape} values for {n} rows; give one per row.")
    missing = np.asarray(pd.isna(array), dtype=bool)
    labels = np.array([str(v) for v in array], dtype=object)
    labels[missing] = "missing"
    return labels


def fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: Any,
    *,
    pos_label: Any = 1,
    min_rows: int = DEFAULT_MIN_ROWS,
    name: str = "sensitive",
) -> FairnessReport:
    """Group figures of predicted labels ``y_pred`` against ``y_true`` for each value of ``sensitive``."""
    truth = np.asarray(y_true.to_numpy() if hasattr(y_true, "to_numpy") else y_true)
    pred = np.asarray(y_pred.to_numpy() if hasattr(y_pred, "to_numpy") else y_pred)
    if truth.ndim != 1 or truth.shape != pred.shape or not len(truth):
        raise InvalidValueError(
            f"y_true and y_pred must be non-empty 1-D arrays of one length, got {truth.shape} and {pred.shape}."
        )
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise InvalidValueError(f"min_rows must be a whole number from 1, got {min_rows!r}.")
    labels = group_labels(sensitive, len(truth))
    actual, predicted = truth == pos_label, pred == pos_label
    groups = []
    for value in sorted(set(labels.tolist())):
        member = labels == value
        n = int(member.sum())
        positives = int((actual & member).sum())
        negatives = n - positives
        enough = n >= min_rows
        groups.append(
            GroupFigures(
                group=value,
                n=n,
                positives=positives,
                negatives=negatives,
                selection_rate=_rate(int((predicted & member).sum()), n),
                tpr=_rate(int((predicted & actual & member).sum()), positives),
                fpr=_rate(int((predicted & ~actual & member).sum()), negatives),
                accuracy=_rate(int(((pred == truth) & member).sum()), n),
                enough_data=enough,
            )
        )
    judged = [g for g in groups if g.enough_data]
    notes = tuple(
        f"group {g.group!r}: {NOT_ENOUGH_DATA} ({g.n} rows < {min_rows})" for g in groups if not g.enough_data
    )
    dp = _spread([g.selection_rate for g in judged])
    tpr_gap, fpr_gap = _spread([g.tpr for g in judged]), _spread([g.fpr for g in judged])
    eo = None if tpr_gap is None or fpr_gap is None else max(tpr_gap, fpr_gap)
    if dp is None:
        notes += (f"fewer than two groups with {min_rows} rows or more: the differences are {NOT_ENOUGH_DATA}",)
    return FairnessReport(name, tuple(groups), dp, eo, min_rows, notes)
