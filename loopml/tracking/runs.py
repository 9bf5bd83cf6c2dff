"""ActiveRun: the handle ``start_run`` yields, owning one run's metric buffer.

Leaving the ``with`` block flushes the metrics and ends the run: FINISHED
normally, FAILED with the traceback stored when an exception escapes, KILLED
on KeyboardInterrupt (the exception still propagates).
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import Dataset
from loopml.entities.tracking import Metric, Run, RunInfo, RunStatus
from loopml.errors import InvalidValueError, RunNotActiveError
from loopml.timestamps import now_ms
from loopml.tracking.buffer import MetricBuffer
from loopml.tracking.client import TrackingClient
from loopml.tracking.validation import check_key, check_metric_value, check_step

TRACEBACK_TAG = "loopml.traceback"
ERROR_TAG = "loopml.error"


class ActiveRun:
    """A run being recorded. Use it as a context manager, or call ``end()``.

    Example:
        >>> with loopml.start_run(params={"lr": 0.1}) as run:   # doctest: +SKIP
        ...     run.log_metric("loss", 0.25)
    """

    def __init__(self, client: TrackingClient, run: Run) -> None:
        self.client = client
        self.info: RunInfo = run.info
        self.id: str = run.info.run_id
        self._buffer = MetricBuffer(client.store.tracking, self.id)
        self._next_step: dict[str, int] = {}
        self._step_lock = threading.Lock()
        self._ended = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.name!r} id={self.id}>"

    @property
    def run_id(self) -> str:
        return self.id

    # -- metrics ---------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one point. Without ``step`` the key's next step is used (0, 1, 2, ...)."""
        self._check_active()
        check_key(key, "Metric")
        point = Metric(key, check_metric_value(key, value), self._step(key, step), now_ms())
        self._buffer.add((point,))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer several metrics at one step."""
        self._check_active()
        if not isinstance(metrics, Mapping):
            raise InvalidValueError(f"log_metrics needs a mapping of key to number, got {type(metrics).__name__}.")
        timestamp = now_ms()
        points = []
        for key, value in metrics.items():
            check_key(key, "Metric")
            points.append(Metric(key, check_metric_value(key, value), self._step(key, step), timestamp))
        self._buffer.add(points)

    def _step(self, key: str, step: int | None) -> int:
        with self._step_lock:
            chosen = self._next_step.get(key, 0) if step is None else check_step(key, step)
            self._next_step[key] = max(self._next_step.get(key, 0), chosen + 1)
            return chosen

    def flush(self) -> None:
        """Write buffered metrics now; they are durable when this returns."""
        self._buffer.flush()

    # -- params and tags ---------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params are immutable: logging a key again with another value raises ParamConflictError."""
        self._check_active()
        self.client.log_params(self.id, params)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.set_tags(self.id, tags)

    # -- artifacts and datasets --------------------------------------------------------------------
    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> list[ArtifactEntry]:
        return self.client.log_artifact(self.id, path, name)

    def log_text(self, text: str, name: str) -> ArtifactEntry:
        return self.client.log_text(self.id, text, name)

    def log_dict(self, data: Mapping[str, Any] | Sequence[Any], name: str) -> ArtifactEntry:
        return self.client.log_dict(self.id, data, name)

    def log_figure(self, figure: Any, name: str) -> ArtifactEntry:
        return self.client.log_figure(self.id, figure, name)

    def log_dataset(
        self,
        data: Any,
        name: str,
        context: str = "train",
        *,
        ignore_row_order: bool = False,
        store_data: bool = True,
    ) -> Dataset:
        return self.client.log_dataset(
            self.id, data, name, context, ignore_row_order=ignore_row_order, store_data=store_data
        )

    def log_model(
        self,
        model: Any,
        name: str = "model",
        *,
        signature: Any = "infer",
        input_example: Any = None,
        **options: Any,
    ) -> Any:
        """Package ``model`` under ``name`` in this run (see ``loopml.models.package.log_model``).

        Returns a ModelInfo whose ``uri`` (``runs:/<run_id>/<name>``) can be
        registered with ``loopml.register_model``.
        """
        from loopml.models.package import log_model

        return log_model(self.client, self.id, model, name, signature=signature, input_example=input_example, **options)

    # -- lifecycle ------------------------------------------------------------------------------------
    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        """Flush metrics and end the run with ``status``."""
        if self._ended:
            raise RunNotActiveError(f"Run {self.id} has already ended.")
        try:
            self._buffer.close()
        finally:
            self._ended = True
            from loopml.tracking import fluent

            fluent._forget(self)
        return self.client.end_run(self.id, RunStatus(status))

    def get(self) -> Run:
        """The run as stored now (after flushing buffered metrics)."""
        self.flush()
        return self.client.get_run(self.id)

    def _check_active(self) -> None:
        if self._ended:
            raise RunNotActiveError(f"Run {self.id} has ended; start a new run to log more.")

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ended:
            return
        if exc_type is None:
            self.end(RunStatus.FINISHED)
            return
        status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        try:
            self.client.set_tags(
                self.id,
                {
                    TRACEBACK_TAG: "".join(traceback.format_exception(exc_type, exc, tb))[-8000:],
                    ERROR_TAG: f"{exc_type.__name__}: {exc}"[:8000],
                },
            )
        finally:
            self.end(status)
