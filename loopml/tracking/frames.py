"""Runs as a pandas DataFrame: one row a run, one column a metric, param or tag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

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
    """Attributes first, then ``metrics.*``, ``params.*`` and ``tags.*`` columns, sorted by key.

    Built column by column from lists in one ``DataFrame`` call (no per-row dicts): a page of 100 runs
    with about 40 columns costs about 1 ms, most of it pandas turning each string column into its
    string dtype. The times become ``datetime64[us, UTC]`` through numpy, not ``pd.to_datetime``.
    """
    import pandas as pd

    if not runs:  # no rows: the columns pandas gives an empty page, times included
        frame = pd.DataFrame(columns=list(ATTRIBUTE_COLUMNS), dtype=object)
        for column in ("start_time", "end_time"):
            frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
        return frame
    infos = [run.info for run in runs]
    data: dict[str, object] = {
        "run_id": [info.run_id for info in infos],
        "experiment_id": [info.experiment_id for info in infos],
        "name": [info.name for info in infos],
        "status": [info.status.value for info in infos],
        "start_time": _utc_times([info.start_time for info in infos]),
        "end_time": _utc_times([info.end_time for info in infos]),
        "duration_s": [None if info.end_time is None else (info.end_time - info.start_time) / 1000 for info in infos],
        "parent_run_id": [info.parent_run_id for info in infos],
        "user": [info.user for info in infos],
    }
    for prefix, maps in (
        ("metrics.", [run.metrics for run in runs]),
        ("params.", [run.params for run in runs]),
        ("tags.", [run.tags for run in runs]),
    ):
        keys: set[str] = set()
        for mapping in maps:
            keys.update(mapping)
        for key in sorted(keys):
            data[prefix + key] = [mapping.get(key) for mapping in maps]
    return pd.DataFrame(data)


def _utc_times(epoch_ms: list[int | None]) -> pd.api.extensions.ExtensionArray:
    """Epoch milliseconds (None: missing) as the UTC times ``pd.to_datetime(..., unit="ms", utc=True)`` gives.

    That is ``datetime64[us, UTC]``, or ``datetime64[s, UTC]`` when every value is missing.
    """
    import numpy as np
    import pandas as pd

    unit: Literal["s", "us"] = "s" if all(ms is None for ms in epoch_ms) else "us"
    times = np.array(epoch_ms, dtype="datetime64[ms]").astype(f"datetime64[{unit}]")
    return pd.array(times, dtype=pd.DatetimeTZDtype(unit, "UTC"))
