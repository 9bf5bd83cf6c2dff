"""The local runners: in-process one step at a time (the default), or a process pool for parallel branches."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
from collections.abc import Callable
from typing import Any

from loopml.errors import PipelineDefinitionError
from loopml.pipelines.dag import Key
from loopml.pipelines.execution import StepResult, StepTask, execute_remote, execute_step
from loopml.pipelines.runners.base import Runner
from loopml.tracking.client import TrackingClient


class InProcessRunner(Runner):
    """Runs each step in this process as it is submitted, passing values between steps in memory."""

    name = "local"
    capacity = 1
    in_process = True

    def __init__(self, client: TrackingClient, memo: dict[Key, Any]) -> None:
        self._client = client
        self._memo = memo
        self._done: list[StepResult] = []

    def submit(self, task: StepTask) -> None:
        self._done.append(execute_step(self._client, task, self._memo))

    def wait(self) -> list[StepResult]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._done.clear()


class ProcessPoolRunner(Runner):
    """Runs independent steps in parallel worker processes (spawned, so no state is shared by accident).

    Each worker opens the store from its URLs, loads its inputs from the
    artifact store and writes its outputs there; steps must therefore be
    defined at the top level of an importable module.
    """

    name = "local-parallel"

    def __init__(self, urls: tuple[str, str | None], max_workers: int | None = None) -> None:
        self.capacity = max_workers or max(1, min(os.cpu_count() or 1, 8))
        self._urls = urls
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.capacity, mp_context=multiprocessing.get_context("spawn")
        )
        self._futures: dict[concurrent.futures.Future[StepResult], StepTask] = {}

    def submit(self, task: StepTask) -> None:
        _check_picklable(task)
        self._futures[self._pool.submit(execute_remote, self._urls, task)] = task

    def wait(self) -> list[StepResult]:
        done, _ = concurrent.futures.wait(self._futures, return_when=concurrent.futures.FIRST_COMPLETED)
        results = []
        for future in done:
            task = self._futures.pop(future)
            results.append(_result_or_failure(task, future.result))
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _check_picklable(task: StepTask) -> None:
    try:
        pickle.dumps(task)
    except Exception as exc:
        raise PipelineDefinitionError(
            f"Step {task.node.id!r} cannot be sent to a worker process ({type(exc).__name__}: {exc}). With "
            "parallel=True, define steps at the top level of an importable module and pass picklable params."
        ) from exc


def _result_or_failure(task: StepTask, get: Callable[[], StepResult]) -> StepResult:
    """The worker's result, or a failed result when the worker itself died (killed, out of memory)."""
    try:
        return get()
    except Exception as exc:
        return StepResult.worker_died(task.node.id, "the worker", exc)
