"""The prediction log below the store contract: the parquet sink, per-model redaction and entity keys.

The SQL store chooses where logged predictions live (its own ``predictions``
table, the default, or partitioned parquet files beside the artifacts) and
applies a model's log policy (redaction, entity key) before either sees a
row; everything above the store reads through ``ServingStore``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from loopml.errors import InvalidValueError

if TYPE_CHECKING:
    from loopml.store.predictions.parquet import ParquetPredictionLog

#: Where a store keeps logged predictions: ``sql`` (default) or ``parquet``.
SINK_ENV = "LOOPML_PREDICTION_LOG"
SINKS = ("sql", "parquet")


def check_sink(value: object) -> str:
    """``sql`` or ``parquet`` (any case, spaces trimmed); InvalidValueError naming the choices otherwise."""
    chosen = value.strip().lower() if isinstance(value, str) else value
    if chosen not in SINKS:
        raise InvalidValueError(f"{SINK_ENV} must be one of {', '.join(SINKS)}, got {value!r}.")
    return str(chosen)


def parquet_sink(artifacts_url: str, sink: str | None = None) -> ParquetPredictionLog | None:
    """The parquet sink under ``artifacts_url`` when ``sink`` (default: ``$LOOPML_PREDICTION_LOG``) is parquet."""
    chosen = check_sink(sink if sink is not None else os.environ.get(SINK_ENV, "") or "sql")
    if chosen == "sql":
        return None
    from loopml.store.predictions.parquet import FOLDER, ParquetPredictionLog

    return ParquetPredictionLog(f"{artifacts_url.rstrip('/')}/{FOLDER}")
