"""Attribution drift: whether the model leans on its features differently on current traffic than on the reference.

Both sides are a mean absolute attribution per feature (SHAP values of the
same explainer), normalised to shares that sum to one. Two figures judge it:

* ``rank_correlation``: Spearman's correlation of the two rankings (1: same order);
* ``share_shift``: the total variation distance between the two share vectors
  (half the sum of absolute differences; 0: the same sizes, 1: disjoint).

It drifts when the ranking correlation falls below ``min_rank_correlation``
or the shift exceeds ``max_share_shift``. Fewer than ``min_rows`` current rows
give no verdict ("not enough data").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.errors import InvalidValueError

DEFAULT_MIN_RANK_CORRELATION = 0.5
DEFAULT_MAX_SHARE_SHIFT = 0.2
DEFAULT_MIN_ROWS = 30


@dataclass(frozen=True)
class AttributionDrift:
    """The comparison of two importance profiles; ``drifted`` is None when there was not enough data."""

    features: tuple[dict[str, Any], ...]
    rank_correlation: float | None
    share_shift: float | None
    drifted: bool | None
    n_current: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "attribution_drift",
            "features": list(self.features),
            "rank_correlation": self.rank_correlation,
            "share_shift": self.share_shift,
            "drifted": self.drifted,
            "n_current": self.n_current,
            "message": self.message,
        }


def _shares(importance: Mapping[str, float], features: list[str]) -> np.ndarray:
    values = np.array([max(0.0, float(importance.get(f, 0.0))) for f in features], dtype=np.float64)
    total = values.sum()
    return values / total if total > 0 else np.full(len(features), 1.0 / len(features))


def attribution_drift(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    *,
    n_current: int,
    min_rank_correlation: float = DEFAULT_MIN_RANK_CORRELATION,
    max_share_shift: float = DEFAULT_MAX_SHARE_SHIFT,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> AttributionDrift:
    """Compare two mean-|attribution| profiles (feature -> value); see the module docstring."""
    from scipy.stats import spearmanr

    features = sorted(set(reference) | set(current))
    if len(features) < 2:
        raise InvalidValueError("Attribution drift compares at least two features' importances.")
    ref, cur = _shares(reference, features), _shares(current, features)
    ref_rank = {f: i + 1 for i, f in enumerate(sorted(features, key=lambda f: -ref[features.index(f)]))}
    cur_rank = {f: i + 1 for i, f in enumerate(sorted(features, key=lambda f: -cur[features.index(f)]))}
    rows: tuple[dict[str, Any], ...] = tuple(
        {
            "feature": f,
            "reference_share": float(ref[i]),
            "current_share": float(cur[i]),
            "reference_rank": ref_rank[f],
            "current_rank": cur_rank[f],
        }
        for i, f in enumerate(features)
    )
    rows = tuple(sorted(rows, key=lambda r: r["reference_rank"]))
    if n_current < min_rows:
        message = f"not enough data: {n_current} explained rows < {min_rows}"
        return AttributionDrift(rows, None, None, None, n_current, message)
    correlation = float(spearmanr(ref, cur).statistic)
    correlation = 1.0 if not np.isfinite(correlation) else correlation  # constant shares: the same profile
    shift = float(0.5 * np.abs(ref - cur).sum())
    drifted = correlation < min_rank_correlation or shift > max_share_shift
    message = (
        f"rank correlation {correlation:.3f} (min {min_rank_correlation:g}), share shift {shift:.3f} "
        f"(max {max_share_shift:g})" + (": the model's reliance on its features drifted" if drifted else "")
    )
    return AttributionDrift(rows, correlation, shift, drifted, n_current, message)
