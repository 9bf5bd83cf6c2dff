"""Runs as a pandas DataFrame: one row a run, one column a metric, param or tag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loopml.entities.tracking import Run

if TYPE_CHECKING:
    import pandas as pd

ATTRIBUTE_COLUMNS = (
    "run_id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "parent_run_id",
    "user",
)


def runs_to_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """Attributes first, then ``metrics.*``, ``params.*`` and ``tags.*`` columns, sorted by key."""
    import pandas as pd

    records = []
    metric_keys: set[str] = set()
    param_keys: set[str] = set()
    tag_keys: set[str] = set()
    for run in runs:
        info = run.info
        record: dict[str, object] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "name": info.name,
            "status": info.status.value,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "duration_s": None if info.duration_ms is None else info.duration_ms / 1000,
            "parent_run_id": info.parent_run_id,
            "user": info.user,
        }
        for key, value in run.metrics.items():
            record[f"metrics.{key}"] = value
            metric_keys.add(key)
        for key, text in run.params.items():
            record[f"params.{key}"] = text
            param_keys.add(key)
        for key, text in run.tags.items():
            record[f"tags.{key}"] = text
            tag_keys.add(key)
        records.append(record)
    columns = [
        *ATTRIBUTE_COLUMNS,
        *(f"metrics.{k}" for k in sorted(metric_keys)),
        *(f"params.{k}" for k in sorted(param_keys)),
        *(f"tags.{k}" for k in sorted(tag_keys)),
    ]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    return frame
