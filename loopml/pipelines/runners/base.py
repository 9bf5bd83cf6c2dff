"""The runner contract: where the steps that are not cache hits execute.

The driver (``loopml.pipelines.run``) walks the DAG, answers cache hits
itself and hands every other step to a runner as a :class:`StepTask`. A runner
only starts steps and reports their results; it holds no pipeline logic, so
every runner produces the same runs, outputs and result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from loopml.pipelines.execution import StepResult, StepTask


class Runner(ABC):
    """Starts steps and reports them as they finish.

    ``capacity`` is how many steps the driver keeps in flight: it submits no
    more than that, and none after a failure, so a failed step stops the run
    promptly. ``in_process`` runners return the outputs' values with the
    results; the others leave them in the store.
    """

    name: ClassVar[str]
    capacity: int = 1
    in_process: bool = False

    @abstractmethod
    def submit(self, task: StepTask) -> None:
        """Start ``task`` (an in-process runner may run it right away)."""

    @abstractmethod
    def wait(self) -> list[StepResult]:
        """Block until at least one submitted step has finished; return every finished one."""

    @abstractmethod
    def close(self) -> None:
        """Release workers; called once, also after a failure."""
