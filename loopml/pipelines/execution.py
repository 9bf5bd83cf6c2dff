"""Running one step, the same way on every runner.

:func:`execute_step` does everything for one step that is not a cache hit: it
creates the step's run (a child of the pipeline's run), loads the inputs that
are not already in memory, calls the function with retries and a timeout per
attempt, materialises the outputs into the artifact store and records the
lineage (input and output digests) and the outputs on the run. The local
runner calls it in-process; the process pool and Ray call
:func:`execute_remote` in a worker, which opens the store from its URLs, so
the materialisation and the run logging always happen where the step ran.

While the function runs, its run is the active run: ``loopml.log_metric``
inside a step logs to the step's run.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import hashlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml.entities.tracking import RunStatus
from loopml.errors import LoopMLError, PipelineDefinitionError, StepTimeoutError
from loopml.pipelines import cache
from loopml.pipelines.dag import Key, Node, canonical, has_refs, iter_refs, param_text
from loopml.pipelines.materializers import (
    OutputSink,
    OutputSource,
    StoredOutput,
    find_materializer,
    get_materializer,
    tree_digest,
)
from loopml.pipelines.steps import Step, should_retry
from loopml.timestamps import now_ms
from loopml.tracking.client import TrackingClient
from loopml.tracking.fluent import activated
from loopml.tracking.runs import ERROR_TAG, TRACEBACK_TAG, ActiveRun
from loopml.tracking.validation import MAX_KEY_LENGTH, MAX_PARAM_LENGTH

logger = logging.getLogger("loopml.pipelines")
_MAX_CLIENTS = 4


@dataclass(frozen=True, slots=True)
class StepTask:
    """Everything a worker needs to run one step: the node, its cache key and where its inputs are.

    ``shared`` names the inputs that other steps (or the pipeline's output) read
    too: a step run in-process gets a copy of those, so changing its input in
    place cannot change what the others see (each worker of the other runners
    loads its own copy from the store anyway).
    """

    node: Node
    key: str
    inputs: Mapping[Key, StoredOutput]
    experiment_id: int
    parent_run_id: str
    pipeline: str
    shared: frozenset[Key] = frozenset()


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What running a step produced; ``values`` (the in-memory outputs) only when it ran in-process."""

    node: str
    run_id: str
    ok: bool
    outputs: Mapping[str, StoredOutput]
    attempts: int
    start_ms: int
    end_ms: int
    error: str = ""
    error_type: str = ""
    traceback: str = ""
    values: Mapping[str, Any] | None = field(default=None, repr=False)
    cause: BaseException | None = field(default=None, repr=False)

    @classmethod
    def worker_died(cls, node: str, where: str, exc: BaseException) -> StepResult:
        """The result of a step whose worker (a process, a Ray task) died before it could return one."""
        now = now_ms()
        return cls(
            node=node, run_id="", ok=False, outputs={}, attempts=1, start_ms=now, end_ms=now,
            error=f"{where} running it failed: {type(exc).__name__}: {exc}", error_type=type(exc).__name__,
            traceback="".join(traceback.format_exception(exc)),
        )  # fmt: skip


def step_tags(node: Node, key: str, pipeline: str) -> dict[str, str]:
    """The tags every step run starts with."""
    return {
        cache.STEP_TAG: node.step.name,
        cache.NODE_TAG: node.id,
        cache.STEP_PIPELINE_TAG: pipeline,
        cache.CACHE_KEY_TAG: key,
        cache.CODE_HASH_TAG: node.step.code_hash,
    }


def step_params(node: Node) -> dict[str, str]:
    """The node's JSON params as run params (those too long for a param stay in lineage.json only)."""
    params = {}
    for name, value in node.params().items():
        text = param_text(value)
        if len(text) <= MAX_PARAM_LENGTH and len(name) <= MAX_KEY_LENGTH:
            params[name] = text
    return params


def load_output(client: TrackingClient, stored: StoredOutput) -> Any:
    """Rebuild a stored value with the materialiser that wrote it."""
    return get_materializer(stored.materializer).load(OutputSource(client, stored))


def execute_step(client: TrackingClient, task: StepTask, memo: dict[Key, Any] | None = None) -> StepResult:
    """Run one step in its own run and store its outputs; never raises for a failure of the step itself.

    ``memo`` holds values already in memory (outputs of steps run in this
    process); inputs missing from it are loaded from the store and added.
    KeyboardInterrupt and SystemExit end the run as KILLED and propagate.
    """
    node, step = task.node, task.node.step
    start = now_ms()
    run = client.create_run(
        task.experiment_id,
        name=node.id,
        params=step_params(node),
        tags=step_tags(node, task.key, task.pipeline),
        parent_run_id=task.parent_run_id,
        capture=False,
    )
    handle = ActiveRun(client, run)
    attempts = [0]
    try:
        with activated(handle):
            inputs = {key: _input(client, task, key, memo) for key in node.refs}
            _log_frame_inputs(handle, task, inputs)
            value = call_with_retries(step, lambda: node.call(inputs.__getitem__), attempts)
            values = split_outputs(node, value)
            outputs = materialise(client, run.run_id, node, task, values, attempts[0])
        handle.end(RunStatus.FINISHED)
    except BaseException as exc:
        text = traceback.format_exc()
        with contextlib.suppress(Exception):  # the step's own error matters more than a failed write
            client.set_tags(
                run.run_id,
                {
                    TRACEBACK_TAG: text[-8000:],
                    ERROR_TAG: f"{type(exc).__name__}: {exc}"[:8000],
                    cache.ATTEMPTS_TAG: str(max(attempts[0], 1)),
                },
            )
        with contextlib.suppress(Exception):
            handle.end(RunStatus.FAILED if isinstance(exc, Exception) else RunStatus.KILLED)
        if not isinstance(exc, Exception):
            raise
        return StepResult(
            node=node.id,
            run_id=run.run_id,
            ok=False,
            outputs={},
            attempts=max(attempts[0], 1),
            start_ms=start,
            end_ms=now_ms(),
            error=str(exc),
            error_type=type(exc).__name__,
            traceback=text,
            cause=exc,
        )
    return StepResult(
        node=node.id, run_id=run.run_id, ok=True, outputs=outputs, attempts=attempts[0], start_ms=start,
        end_ms=now_ms(), values=values,
    )  # fmt: skip


def _input(client: TrackingClient, task: StepTask, key: Key, memo: dict[Key, Any] | None) -> Any:
    if memo is not None and key in memo:
        return _private_copy(memo[key]) if key in task.shared else memo[key]
    value = load_output(client, task.inputs[key])
    if memo is not None:
        memo[key] = value
        if key in task.shared:
            return _private_copy(value)
    return value


def _private_copy(value: Any) -> Any:
    """A copy of an in-memory value that the step may change in place without others seeing it."""
    if value is None or isinstance(value, str | bytes | int | float | bool):
        return value  # immutable
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame | pd.Series):
        # with copy-on-write (always on from pandas 3) a shallow copy is enough, and costs nothing
        return value.copy(deep=int(pd.__version__.split(".")[0]) < 3)
    try:
        return copy.deepcopy(value)
    except Exception:  # a value that cannot be copied (a live session, a lock): shared as it is
        logger.debug("An input of type %s could not be copied; the step gets the shared value.", type(value))
        return value


def _log_frame_inputs(handle: ActiveRun, task: StepTask, inputs: Mapping[Key, Any]) -> None:
    """Record DataFrame inputs as datasets of the step's run (digest, schema, profile; no copy of the data)."""
    pd = sys.modules.get("pandas")  # no DataFrame can exist before pandas is imported
    frames = [(key, value) for key, value in inputs.items() if pd is not None and isinstance(value, pd.DataFrame)]
    if not frames:
        return
    names = {ref.key: name for name, template in task.node.arguments.items() for ref in iter_refs(template)}
    for key, frame in frames:
        source = f"{key[0]}.{key[1]}" if key[0] else key[1]
        try:
            handle.log_dataset(frame, f"{task.pipeline}.{source}", context=names.get(key, "input"), store_data=False)
        except LoopMLError as exc:  # e.g. duplicate column names: lineage.json still has the digest
            logger.debug("Input %s of step %s not recorded as a dataset: %s", source, task.node.id, exc)


def call_with_retries(step: Step, call: Callable[[], Any], attempts: list[int]) -> Any:
    """Call until it returns, retrying as the step says; ``attempts[0]`` counts the calls made."""
    options = step.options
    delay = options.retry_delay
    while True:
        attempts[0] += 1
        try:
            return call_with_timeout(call, options.timeout, step.name)
        except Exception as exc:
            if attempts[0] > options.retries or not should_retry(step, exc):
                raise
            logger.warning(
                "Step %s failed (attempt %d of %d): %s: %s; retrying in %.3g s",
                step.name, attempts[0], options.retries + 1, type(exc).__name__, exc, delay,
            )  # fmt: skip
            time.sleep(delay)
            delay *= options.retry_backoff


def call_with_timeout(call: Callable[[], Any], timeout: float | None, name: str) -> Any:
    """``call()``, or StepTimeoutError once ``timeout`` seconds have passed.

    Python cannot stop a thread, so a timed-out attempt is abandoned: it runs on
    in a daemon thread and its result is dropped. Steps that must really be
    stopped belong on the Ray runner, or should check a deadline themselves.
    """
    if timeout is None:
        return call()
    context = contextvars.copy_context()  # the step's run stays the active one in the thread
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = context.run(call)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"loopml-step-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StepTimeoutError(f"Step {name!r} did not finish within {timeout:g} s (its attempt was abandoned).")
    if "error" in box:
        raise box["error"]
    return box["value"]


def split_outputs(node: Node, value: Any) -> dict[str, Any]:
    names = node.step.options.outputs
    if len(names) == 1:
        return {names[0]: value}
    if not isinstance(value, tuple | list) or len(value) != len(names):
        got = f"a {type(value).__name__} of {len(value)}" if isinstance(value, tuple | list) else type(value).__name__
        raise PipelineDefinitionError(
            f"Step {node.id!r} declares {len(names)} outputs ({', '.join(names)}) but returned {got}; "
            f"return a tuple of {len(names)} values."
        )
    return dict(zip(names, value, strict=True))


def save_values(
    client: TrackingClient, run_id: str, values: Mapping[str, tuple[Any, str]]
) -> tuple[dict[str, StoredOutput], dict[str, bytes]]:
    """Materialise ``{folder: (value, description)}`` into folders of a run.

    Returns the StoredOutput of each folder and the bytes still to be written
    (as ``{artifact path: bytes}``), so the caller stores everything in one call.
    """
    stored: dict[str, StoredOutput] = {}
    payload: dict[str, bytes] = {}
    for folder, (value, where) in values.items():
        materializer = find_materializer(value, where=where)
        sink = OutputSink(client, run_id, folder)
        materializer.save(value, sink)
        files = {rel: (hashlib.sha256(data).hexdigest(), len(data)) for rel, data in sink.pending.items()}
        prefix = f"{folder}/"
        for entry in sink.adopted:
            files[entry.path[len(prefix) :]] = (entry.digest, entry.size)
        payload.update({f"{prefix}{rel}": data for rel, data in sink.pending.items()})
        digest = tree_digest({rel: d for rel, (d, _) in files.items()})
        listed = tuple(sorted((rel, d, size) for rel, (d, size) in files.items()))
        stored[folder] = StoredOutput(run_id, folder, materializer.name, digest, listed)
    return stored, payload


def materialise(
    client: TrackingClient, run_id: str, node: Node, task: StepTask, values: Mapping[str, Any], attempts: int
) -> dict[str, StoredOutput]:
    """Store every output and the lineage record in one write; tag the run with its outputs and attempts."""
    folders = {
        f"{cache.OUTPUTS_FOLDER}/{name}": (value, f"output {name!r} of step {node.id!r}")
        for name, value in values.items()
    }
    by_folder, payload = save_values(client, run_id, folders)
    outputs = {name: by_folder[f"{cache.OUTPUTS_FOLDER}/{name}"] for name in values}
    digests = {key: stored.digest for key, stored in task.inputs.items()}
    inputs = {name: json.loads(canonical(t, digests)) for name, t in node.arguments.items() if has_refs(t)}
    lineage = cache.lineage_record(node, task.key, inputs, outputs)
    payload[cache.LINEAGE_ARTIFACT] = lineage
    client.log_artifact_bytes(run_id, payload)
    lineage_entry = (cache.LINEAGE_ARTIFACT, hashlib.sha256(lineage).hexdigest(), len(lineage))
    client.set_tags(run_id, {**cache.output_tags(outputs, lineage_entry), cache.ATTEMPTS_TAG: str(attempts)})
    return outputs


# -- workers ------------------------------------------------------------------------------------

_clients: OrderedDict[tuple[str, str | None], TrackingClient] = OrderedDict()
_clients_lock = threading.Lock()


def worker_client(urls: tuple[str, str | None]) -> TrackingClient:
    """One client per store per worker process, kept for the next task (the last few stores only)."""
    from loopml.store import open_store

    with _clients_lock:
        client = _clients.get(urls)
        if client is None:
            client = TrackingClient(open_store(urls[0], artifacts_url=urls[1]))
            _clients[urls] = client
            while len(_clients) > _MAX_CLIENTS:
                _clients.popitem(last=False)[1].close()
        _clients.move_to_end(urls)
        return client


def execute_remote(urls: tuple[str, str | None], task: StepTask) -> StepResult:
    """:func:`execute_step` in a worker process: the store comes from ``urls``; values stay in the store."""
    # Fluent calls inside the step (loopml.start_run) must reach the same store as the step's run.
    os.environ["LOOPML_TRACKING_URI"] = urls[0]
    if urls[1]:
        os.environ["LOOPML_ARTIFACTS_URL"] = urls[1]
    result = execute_step(worker_client(urls), task)
    # Values and the exception object stay here: they may not pickle, and the store has the outputs.
    return dataclasses.replace(result, values=None, cause=None)
