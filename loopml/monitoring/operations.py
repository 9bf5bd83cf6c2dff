"""Operational figures from the prediction log: traffic, errors and latency per time bucket.

The log needs the columns ``time`` (datetime, UTC), ``latency_ms`` (float) and
``status`` (the HTTP status of the prediction request); the serving prediction
log has them, beside ``request_id``, ``model``, ``version``, ``inputs`` and
``outputs`` (segment by ``by=["model", "version"]``). Client errors are 4xx
statuses (bad input, often a data-quality signal), server errors 5xx; the error
rate counts both. Latency percentiles interpolate linearly, as ``numpy.percentile``
does, over every request of the bucket, failed ones included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from loopml.errors import InvalidValueError
from loopml.monitoring.frames import as_frame, require_columns
from loopml.monitoring.grouping import finish, group_keys

OPERATIONS_COLUMNS = (
    "n",
    "client_errors",
    "server_errors",
    "error_rate",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


def operations(
    log: pd.DataFrame,
    *,
    bucket: str | None = "1h",
    by: str | Sequence[str] | None = None,
    time: str = "time",
    latency: str = "latency_ms",
    status: str = "status",
) -> pd.DataFrame:
    """One row per bucket and segment: the keys, ``n`` (requests), client_errors, server_errors, error_rate,
    latency_mean_ms, latency_p50_ms, latency_p95_ms, latency_p99_ms."""
    log = as_frame(log, "prediction log", allow_empty=True)
    require_columns(log, [latency, status], "prediction log")
    try:
        codes = pd.to_numeric(log[status]).to_numpy(dtype=np.float64)
        millis = pd.to_numeric(log[latency]).to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(f"Columns {status!r} and {latency!r} must hold numbers: {exc}") from exc
    work = log.assign(_client=(codes >= 400) & (codes < 500), _server=codes >= 500, _latency=millis)
    work, keys, names = group_keys(work, bucket=bucket, by=by, time=time, which="prediction log")
    grouped = work.groupby(keys, observed=True, dropna=False, sort=True)
    table = pd.DataFrame({"n": grouped.size()})
    errors = grouped[["_client", "_server"]].sum()
    table["client_errors"] = errors["_client"].astype("int64")
    table["server_errors"] = errors["_server"].astype("int64")
    table["error_rate"] = (errors["_client"] + errors["_server"]) / table["n"].where(table["n"] > 0)
    table["latency_mean_ms"] = grouped["_latency"].mean()
    # reindexed: an empty log has no group, and unstacking nothing yields no quantile columns at all
    levels = [0.5, 0.95, 0.99]
    quantiles = grouped["_latency"].quantile(levels).unstack().reindex(columns=levels)  # type: ignore[arg-type]  # pandas-stubs omit list q
    table["latency_p50_ms"] = quantiles[0.5]
    table["latency_p95_ms"] = quantiles[0.95]
    table["latency_p99_ms"] = quantiles[0.99]
    return finish(table[list(OPERATIONS_COLUMNS)], names, time)
