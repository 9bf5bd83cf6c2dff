"""Batch scoring: a registered model over a parquet dataset, locally or on Ray, with lineage."""

from __future__ import annotations

from loopml.batch.predict import BatchResult, batch_predict

__all__ = ["BatchResult", "batch_predict"]
