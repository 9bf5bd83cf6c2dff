"""Running a traced pipeline: one tracked run for the pipeline, one child run per executed step.

The driver walks the DAG in call order. For each step whose inputs are ready
it computes the cache key; a hit is answered right here (no run is created:
the step's record points at the run that produced the outputs), anything else
goes to the runner. The first failure stops new submissions; steps that
finished keep their outputs and cache entries, so the next run resumes at the
failed step. The pipeline's run then ends FAILED and
:class:`~loopml.errors.StepFailedError` carries the step's traceback. Every
step, cached or not, is listed in the pipeline run's ``loopml/steps.json``.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.entities.tracking import RunStatus
from loopml.errors import StepFailedError
from loopml.pipelines import cache as step_cache
from loopml.pipelines.dag import Graph, Key, Node, param_text, substitute
from loopml.pipelines.execution import (
    StepResult,
    StepTask,
    load_output,
    save_values,
)
from loopml.pipelines.materializers import StoredOutput
from loopml.pipelines.runners import Runner, make_runner
from loopml.timestamps import now_ms
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ERROR_TAG, TRACEBACK_TAG
from loopml.tracking.validation import MAX_PARAM_LENGTH

if TYPE_CHECKING:
    from loopml.pipelines.dag import Pipeline

PIPELINE_ARTIFACT = step_cache.PIPELINE_ARTIFACT
STEPS_ARTIFACT = step_cache.STEPS_ARTIFACT
SOURCE_TAG = "loopml.pipeline.source"
RUNNER_TAG = "loopml.pipeline.runner"
STEPS_TAG = "loopml.pipeline.steps"
CACHED_COUNT_TAG = "loopml.pipeline.steps_cached"
EXECUTED_COUNT_TAG = "loopml.pipeline.steps_executed"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    """How one step of a pipeline run went: its run, whether it was a cache hit, its outputs."""

    node: str
    step: str
    run_id: str
    status: RunStatus
    cached: bool
    cache_key: str
    attempts: int
    duration_ms: int
    outputs: Mapping[str, StoredOutput] = field(default_factory=dict)
    cached_from: str | None = None


class PipelineRun:
    """The result of ``pipeline.run()``: the pipeline's run id, every step's record and the output.

    ``output`` is what the pipeline function returned, with each handle
    replaced by its value (loaded from the store on first access when it is not
    in memory, e.g. after a cache hit or on Ray).
    """

    def __init__(
        self,
        graph: Graph,
        run_id: str,
        steps: dict[str, StepRecord],
        client: TrackingClient,
        stored: dict[Key, StoredOutput],
        memo: dict[Key, Any],
    ) -> None:
        self.pipeline = graph.pipeline
        self.run_id = run_id
        self.steps = steps
        self.params = dict(graph.params)
        self._graph = graph
        self._client = client
        self._stored = stored
        self._memo = memo
        self._output: Any = _UNSET

    @property
    def output(self) -> Any:
        if self._output is _UNSET:
            self._output = substitute(self._graph.output, self._value)
        return self._output

    def load(self, node: str, output: str = "output") -> Any:
        """The value of one output of one step of this run."""
        key = (node, output)
        if key not in self._stored:
            known = ", ".join(f"{n}.{o}" for n, o in self._stored if n)
            raise KeyError(f"This run has no output {node}.{output}; it has {known}.")
        return self._value(key)

    def _value(self, key: Key) -> Any:
        if key not in self._memo:
            self._memo[key] = load_output(self._client, self._stored[key])
        return self._memo[key]

    @property
    def n_cached(self) -> int:
        return sum(1 for record in self.steps.values() if record.cached)

    @property
    def n_executed(self) -> int:
        return sum(1 for record in self.steps.values() if not record.cached)

    def __repr__(self) -> str:
        return (
            f"<PipelineRun {self.pipeline!r} id={self.run_id} steps={len(self.steps)} "
            f"cached={self.n_cached} executed={self.n_executed}>"
        )


_UNSET: Any = object()


def run_pipeline(
    pipeline: Pipeline,
    params: Mapping[str, Any],
    *,
    cache: bool = True,
    runner: str = "local",
    parallel: bool = False,
    max_workers: int | None = None,
    address: str | None = None,
    client: TrackingClient | None = None,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> PipelineRun:
    """Trace ``pipeline`` with ``params`` and run it; return its :class:`PipelineRun`.

    Args:
        cache: look for cached outputs (False re-runs every step; results are cached anyway).
        runner: "local" (in this process; with ``parallel`` or ``max_workers`` > 1 a
            process pool runs independent steps at once) or "ray".
        address: for "ray" when Ray is not initialised yet: "local", "auto" or "ray://host:port".
        client: the tracking client (default: the one the ``LOOPML_*`` settings give).
        experiment: where the runs go (default: the pipeline's ``experiment``, else its name).
        tags: extra tags for the pipeline's run.

    Raises:
        PipelineDefinitionError: the function or its step calls cannot be traced (nothing is recorded).
        StepFailedError: a step failed on every attempt (the pipeline's run is FAILED).
    """
    from loopml.tracking import fluent

    graph = pipeline.trace(params)  # before any run is created: a definition error leaves nothing behind
    client = client or fluent.get_tracking_client()
    memo: dict[Key, Any] = {}
    # the runner first: an unknown runner or a missing Ray also leaves no run behind
    backend = make_runner(runner, client, memo, parallel=parallel, max_workers=max_workers, address=address)
    try:
        exp = client.get_or_create_experiment(experiment or pipeline.experiment or pipeline.name)
        parent = fluent.active_run()
        run = client.create_run(
            exp.experiment_id,
            name=pipeline.name,
            params=_pipeline_params(graph.params),
            tags={
                **dict(tags or {}),
                step_cache.PIPELINE_TAG: pipeline.name,
                SOURCE_TAG: pipeline.source,
                RUNNER_TAG: backend.name,
                STEPS_TAG: str(len(graph.nodes)),
            },
            parent_run_id=None if parent is None else parent.run_id,
        )
        run_id = run.run_id
        try:
            client.log_dict(run_id, graph.describe(), PIPELINE_ARTIFACT)
            stored = _store_constants(client, run_id, graph)
            driver = _Driver(
                graph, client, backend, stored, memo, use_cache=cache, experiment_id=exp.experiment_id, run_id=run_id
            )
            failure = driver.drive()
        except BaseException as exc:
            _end(client, run_id, RunStatus.FAILED if isinstance(exc, Exception) else RunStatus.KILLED, exc=exc)
            raise
    finally:
        backend.close()
    records = {node_id: driver.records[node_id] for node_id in graph.nodes if node_id in driver.records}
    client.log_dict(run_id, steps_record(graph, records), STEPS_ARTIFACT)
    client.set_tags(
        run_id,
        {
            CACHED_COUNT_TAG: str(sum(1 for r in records.values() if r.cached)),
            EXECUTED_COUNT_TAG: str(sum(1 for r in records.values() if not r.cached)),
        },
    )
    if failure is not None:
        error = StepFailedError(
            f"Step {failure.node!r} of pipeline {pipeline.name!r} failed after {failure.attempts} "
            f"attempt{'s' if failure.attempts != 1 else ''}: {failure.error_type}: {failure.error}\n"
            f"Its run {failure.run_id or '(none)'} holds the traceback; the steps that finished are cached, so "
            f"running the pipeline again resumes at this step.\n\n{failure.traceback}",
            step=failure.node,
            traceback=failure.traceback,
            run_id=failure.run_id or None,
            error_type=failure.error_type,
            attempts=failure.attempts,
        )
        message = f"Step {failure.node!r} failed: {failure.error_type}: {failure.error}"
        _end(client, run_id, RunStatus.FAILED, message=message, text=failure.traceback)
        raise error from failure.cause
    client.end_run(run_id, RunStatus.FINISHED)
    return PipelineRun(graph, run_id, records, client, driver.stored, memo)


def steps_record(graph: Graph, records: Mapping[str, StepRecord]) -> dict[str, Any]:
    """What ``loopml/steps.json`` holds: every step of the graph in call order, run or not."""
    steps = []
    for node_id, node in graph.nodes.items():
        record = records.get(node_id)
        if record is None:
            steps.append({"node": node_id, "step": node.step.name, "status": "NOT_RUN", "cached": False})
            continue
        steps.append(
            {
                "node": node_id,
                "step": record.step,
                "run_id": record.run_id,
                "status": record.status.value,
                "cached": record.cached,
                "cached_from": record.cached_from,
                "cache_key": record.cache_key,
                "attempts": record.attempts,
                "duration_ms": record.duration_ms,
                "upstream": list(node.upstream),
                "outputs": {
                    name: {
                        "run_id": out.run_id,
                        "path": out.path,
                        "materializer": out.materializer,
                        "digest": out.digest,
                        "files": [list(f) for f in out.files],
                    }
                    for name, out in record.outputs.items()
                },
            }
        )
    return {"pipeline": graph.pipeline, "steps": steps}


class _Driver:
    """Walks the DAG: cache hits answered here, everything else handed to the runner."""

    def __init__(
        self,
        graph: Graph,
        client: TrackingClient,
        backend: Runner,
        stored: dict[Key, StoredOutput],
        memo: dict[Key, Any],
        *,
        use_cache: bool,
        experiment_id: int,
        run_id: str,
    ) -> None:
        self.graph = graph
        self.client = client
        self.backend = backend
        self.stored = stored
        self.memo = memo
        self.use_cache = use_cache
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.records: dict[str, StepRecord] = {}
        self.keys: dict[str, str] = {}
        self._consumers = graph.consumers()
        self._downstream = graph.downstream()
        self._waiting = {node_id: len(node.upstream) for node_id, node in graph.nodes.items()}
        self._index = step_cache.recent_index(client, graph.pipeline, run_id) if use_cache else {}

    def drive(self) -> StepResult | None:
        """Run every step it can; return the first failed result, or None when all finished."""
        ready = deque(node_id for node_id, n in self._waiting.items() if n == 0)
        failure: StepResult | None = None
        in_flight = 0
        while ready or in_flight:
            while ready and failure is None and in_flight < self.backend.capacity:
                node = self.graph.nodes[ready.popleft()]
                key = step_cache.cache_key(node, {ref: self.stored[ref].digest for ref in node.refs})
                self.keys[node.id] = key
                record = self._lookup(node, key) if self.use_cache and node.step.options.cache else None
                if record is not None:
                    self.records[node.id] = record
                    ready.extend(self._finish(node, record.outputs, None))
                    continue
                inputs = {ref: self.stored[ref] for ref in node.refs}
                shared = frozenset(ref for ref in node.refs if self._consumers.get(ref, 0) > 1)
                self.backend.submit(
                    StepTask(node, key, inputs, self.experiment_id, self.run_id, self.graph.pipeline, shared)
                )
                in_flight += 1
            if not in_flight:
                break
            for result in self.backend.wait():
                in_flight -= 1
                node = self.graph.nodes[result.node]
                self.records[node.id] = StepRecord(
                    node=node.id,
                    step=node.step.name,
                    run_id=result.run_id,
                    status=RunStatus.FINISHED if result.ok else RunStatus.FAILED,
                    cached=False,
                    cache_key=self.keys[node.id],
                    attempts=result.attempts,
                    duration_ms=result.end_ms - result.start_ms,
                    outputs=dict(result.outputs),
                )
                if result.ok:
                    ready.extend(self._finish(node, result.outputs, result.values))
                elif failure is None:
                    failure = result
        return failure

    def _finish(self, node: Node, outputs: Mapping[str, StoredOutput], values: Mapping[str, Any] | None) -> list[str]:
        """Record a finished step's outputs, free inputs nobody needs any more, and return the steps now ready."""
        for name, stored in outputs.items():
            self.stored[(node.id, name)] = stored
        if values is not None and self.backend.in_process:  # keep in memory only what a later step or the output reads
            self.memo.update({(node.id, n): v for n, v in values.items() if self._consumers.get((node.id, n), 0) > 0})
        for key in node.refs:
            self._consumers[key] -= 1
            if self._consumers[key] <= 0:
                self.memo.pop(key, None)
        ready = []
        for child in self._downstream[node.id]:
            self._waiting[child] -= 1
            if self._waiting[child] == 0:
                ready.append(child)
        return ready

    def _lookup(self, node: Node, key: str) -> StepRecord | None:
        """The record of a cache hit, pointing at the run that produced the outputs, or None.

        A hit creates no run: a child run per cached step would cost about four
        store writes (7-11 ms on SQLite) for a step that does nothing. The
        pipeline's run lists every step, cached or not, in ``loopml/steps.json``.
        """
        start = now_ms()
        found = self._index.get(key)
        if found is None:
            hit = step_cache.find_cached(self.client, key)
            if hit is None:
                return None
            found = (hit.run_id, step_cache.stored_outputs(self.client, hit)[0])
        run_id, outputs = found
        return StepRecord(
            node=node.id, step=node.step.name, run_id=run_id, status=RunStatus.FINISHED, cached=True, cache_key=key,
            attempts=0, duration_ms=now_ms() - start, outputs=outputs, cached_from=run_id,
        )  # fmt: skip


def _store_constants(client: TrackingClient, run_id: str, graph: Graph) -> dict[Key, StoredOutput]:
    """Materialise the non-JSON values passed straight to steps into the pipeline's run."""
    if not graph.constants:
        return {}
    folders = {f"constants/const{i}": (value, f"constant #{i}") for i, value in enumerate(graph.constants)}
    by_folder, payload = save_values(client, run_id, folders)
    if payload:
        client.log_artifact_bytes(run_id, payload)
    return {("", f"const{i}"): by_folder[f"constants/const{i}"] for i in range(len(graph.constants))}


def _pipeline_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The pipeline's params that are JSON values, as run params."""
    logged = {}
    for name, value in params.items():
        if value is not None and _is_json(value):
            text = param_text(value)
            if len(text) <= MAX_PARAM_LENGTH:
                logged[name] = text
    return logged


def _is_json(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    if depth < 50 and type(value) in (list, tuple):
        return all(_is_json(item, depth + 1) for item in value)
    if depth < 50 and type(value) is dict:
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _end(
    client: TrackingClient,
    run_id: str,
    status: RunStatus,
    *,
    exc: BaseException | None = None,
    message: str | None = None,
    text: str | None = None,
) -> None:
    if exc is not None:
        message = f"{type(exc).__name__}: {exc}"
        text = "".join(traceback.format_exception(exc))
    try:
        client.set_tags(run_id, {ERROR_TAG: (message or "")[:8000], TRACEBACK_TAG: (text or "")[-8000:]})
    finally:
        client.end_run(run_id, status)
