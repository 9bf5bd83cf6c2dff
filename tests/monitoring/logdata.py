"""Helpers for the monitor tests: data with a known shift, written straight into a store's prediction log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from loopml.entities.serving import Feedback, PredictionRecord
from loopml.timestamps import now_ms

FEATURES = ("a", "b", "c", "d", "plan")
SHIFTED = ["b", "d"]


def features(n: int, seed: int, shift: Sequence[str] = ()) -> pd.DataFrame:
    """Four standard-normal columns and a categorical one; the ``shift`` columns moved by 0.5 standard deviation."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(0, 1, n) for name in ("a", "b", "c", "d")})
    frame["plan"] = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    for name in shift:
        frame[name] = frame[name] + 0.5
    return frame


def predict(frame: pd.DataFrame) -> pd.Series:
    """A fixed "model": 1 when a + 3 b > 0 (so a shift of b moves the predictions)."""
    return ((frame["a"] + 3 * frame["b"]) > 0).astype(int).rename("prediction")


def reference_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Training-like data with the model's predictions in a ``prediction`` column."""
    frame = features(n, seed)
    return frame.assign(prediction=predict(frame))


def log_requests(
    store: Any,
    model: str,
    frame: pd.DataFrame,
    *,
    version: int = 1,
    role: str = "main",
    rows_per_request: int = 4,
    start_ms: int | None = None,
    step_ms: int = 10,
    status: int = 200,
    latency_ms: float = 12.0,
    prefix: str = "r",
    labels: pd.Series | None = None,
    predicted: pd.Series | None = None,
) -> list[str]:
    """Log ``frame`` as requests of ``rows_per_request`` rows (answered by :func:`predict`); return the request ids.

    With ``labels`` (aligned with ``frame``), each request gets feedback: the label of its first row.
    ``predicted`` replaces the answers of :func:`predict`.
    """
    start = now_ms() - 600_000 if start_ms is None else start_ms
    predicted = predict(frame) if predicted is None else predicted
    records, feedback, ids = [], [], []
    for number, offset in enumerate(range(0, len(frame), rows_per_request)):
        chunk = frame.iloc[offset : offset + rows_per_request]
        request_id = f"{prefix}{number}"
        outputs = predicted.iloc[offset : offset + rows_per_request].tolist() if status == 200 else {"error": "boom"}
        body = json.dumps({"records": chunk.to_dict("records")})
        time = start + number * step_ms
        records.append(
            PredictionRecord(request_id, time, model, version, role, body, json.dumps(outputs), latency_ms, status)
        )
        if labels is not None:
            feedback.append(Feedback(request_id, int(labels.iloc[offset]), time + 5))
        ids.append(request_id)
    store.serving.log_predictions(records)
    if feedback:
        store.serving.log_feedback(feedback)
    return ids
