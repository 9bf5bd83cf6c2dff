"""The Ray runner: each step that is not a cache hit runs as a Ray task with the step's resources.

A task opens the store from the URLs it is given (so every worker must be able
to reach the database and the artifact store: PostgreSQL and an object store
on a cluster; SQLite and a local folder on one machine), loads its inputs
from the artifact store, runs the step and writes its outputs and run there,
exactly as the local runners do. The driver only walks the DAG and answers
cache hits. Ray is an optional extra: ``pip install 'loopml[ray]'``.
"""

from __future__ import annotations

from typing import Any

from loopml.errors import PipelineDefinitionError, PipelineError
from loopml.pipelines.execution import StepResult, StepTask, execute_remote
from loopml.pipelines.runners.base import Runner
from loopml.pipelines.steps import main_by_value

_remote: Any = None


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise PipelineError("The Ray runner needs Ray: pip install 'loopml[ray]'.") from exc
    return ray


class RayRunner(Runner):
    """Submits steps as Ray tasks; Ray decides where and how many run at once.

    ``address`` is used only when Ray is not initialised in this process yet:
    ``None`` or ``"local"`` starts a local Ray instance, ``"auto"`` joins the
    cluster this machine belongs to, ``"ray://host:10001"`` connects a client.
    """

    name = "ray"
    capacity = 1_000_000  # Ray queues and schedules; the driver does not throttle

    def __init__(self, urls: tuple[str, str | None], address: str | None = None) -> None:
        global _remote
        ray = _ray()
        if not ray.is_initialized():
            if address in (None, "", "local"):
                ray.init(include_dashboard=False)
            else:
                ray.init(address=address)
        if _remote is None:
            _remote = ray.remote(execute_remote)
        self._ray = ray
        self._urls = urls
        self._resources: dict[str, float] = {k: float(v) for k, v in ray.cluster_resources().items()}
        self._refs: dict[Any, StepTask] = {}

    def submit(self, task: StepTask) -> None:
        options = self.task_options(task)
        token = main_by_value.set(True)  # Ray serialises the arguments within .remote()
        try:
            self._refs[_remote.options(**options).remote(self._urls, task)] = task
        finally:
            main_by_value.reset(token)

    def task_options(self, task: StepTask) -> dict[str, Any]:
        """Ray options from the step's ``cpus``, ``gpus`` and ``memory``; refuses what the cluster can never give."""
        step = task.node.step.options
        options: dict[str, Any] = {"num_cpus": 1.0 if step.cpus is None else step.cpus, "max_retries": 0}
        if step.gpus:
            options["num_gpus"] = step.gpus
        if step.memory:
            options["memory"] = step.memory
        for option, resource, unit in (
            ("num_cpus", "CPU", ""),
            ("num_gpus", "GPU", ""),
            ("memory", "memory", " bytes"),
        ):
            wanted = options.get(option)
            have = self._resources.get(resource, 0.0)
            if wanted and wanted > have:
                # Ray would queue the task forever, waiting for a node that never comes.
                raise PipelineDefinitionError(
                    f"Step {task.node.id!r} asks for {wanted:g}{unit} of {resource}, but the Ray cluster has "
                    f"{have:g}{unit} in all; lower the step's request or add nodes."
                )
        return options

    def wait(self) -> list[StepResult]:
        ray = self._ray
        refs = list(self._refs)
        ready, rest = ray.wait(refs, num_returns=1)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        results = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                results.append(ray.get(ref))
            except Exception as exc:  # the task died (worker crash, out of memory) before returning
                results.append(StepResult.worker_died(task.node.id, "the Ray task", exc))
        return results

    def close(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref)
        self._refs.clear()
