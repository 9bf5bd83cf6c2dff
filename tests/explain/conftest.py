"""Shared data for the responsible-ML tests: a small binary task with a sensitive attribute."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def task() -> dict[str, Any]:
    """Four numeric features, a binary label, and a sensitive group column the models do not take."""
    from sklearn.datasets import make_classification

    X, y = make_classification(600, 4, n_informative=3, n_redundant=1, random_state=0)
    frame = pd.DataFrame(X, columns=["income", "debt", "age", "tenure"])
    rng = np.random.default_rng(0)
    group = np.where(rng.random(len(frame)) < 0.5, "a", "b")
    return {"X": frame, "y": y, "group": group, "train": slice(0, 400), "test": slice(400, 600)}
