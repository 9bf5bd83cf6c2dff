"""``@pipeline``: trace a plain Python function into a DAG of step calls.

Tracing calls the pipeline function once with its params while a
:class:`Trace` is the current one; every step call inside records a
:class:`Node` and returns :class:`StepOutput` handles, so the edges of the DAG
are exactly the data passed between steps. Nothing runs while tracing; the
runner executes the graph afterwards (see ``loopml.pipelines.run``).

A step argument is one of three things, decided per argument at trace time:

* a handle (or a list, tuple or dict holding handles): an *input*, identified
  by the content hash of the value it stands for;
* a JSON value (None, bool, int, float, str, and lists, tuples and dicts of
  them): a *param*, logged on the step's run and hashed as canonical JSON;
* anything else (a DataFrame passed in as a pipeline param): a *constant*,
  materialised into the pipeline's run and then treated like an input.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from loopml.errors import InvalidValueError, PipelineDefinitionError
from loopml.pipelines.materializers import find_materializer
from loopml.pipelines.steps import Step, current_trace

if TYPE_CHECKING:
    from loopml.pipelines.run import PipelineRun
    from loopml.tracking.client import TrackingClient

Key = tuple[str, str]  # (node id, output name); constants use ("", "const<i>")
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class StepOutput:
    """A lazy handle to output ``name`` of the step call ``node``; only valid inside its pipeline function."""

    node: str
    name: str

    @property
    def key(self) -> Key:
        return (self.node, self.name)

    def _misuse(self, what: str) -> PipelineDefinitionError:
        return PipelineDefinitionError(
            f"The output {self.name!r} of step {self.node!r} was {what} inside a pipeline function. There a step "
            "call returns a handle, not its value: pass the handle to another step and use the value in there."
        )

    def __bool__(self) -> bool:
        raise self._misuse("used as a truth value (if, while, and, or)")

    def __iter__(self) -> Iterator[Any]:
        raise self._misuse("iterated or unpacked; a step returning several values needs outputs=N, and")

    def __len__(self) -> int:
        raise self._misuse("asked for its len()")

    def __getitem__(self, item: Any) -> Any:
        raise self._misuse("indexed")

    def __getattr__(self, attribute: str) -> Any:
        # Only called for attributes the handle lacks. Private and dunder names stay a plain
        # AttributeError: pickle, copy and library type probes (pandas' "_typ") look them up.
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        raise self._misuse(f"asked for its attribute {attribute!r} (e.g. by a function that is not a step)")

    def _operator(self, *args: Any) -> Any:
        raise self._misuse("used as a value (arithmetic, a comparison, float(), int() or a call)")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __matmul__ = __rmatmul__ = _operator
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = _operator
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __neg__ = __pos__ = __abs__ = __invert__ = _operator
    __lt__ = __le__ = __gt__ = __ge__ = __float__ = __int__ = __index__ = __call__ = _operator

    def __repr__(self) -> str:
        return f"<StepOutput {self.node}.{self.name}>"


@dataclass(frozen=True, slots=True)
class Constant:
    """A non-JSON value passed straight to a step; stored with the pipeline's run."""

    index: int

    @property
    def key(self) -> Key:
        return ("", f"const{self.index}")


@dataclass(frozen=True, slots=True)
class Node:
    """One step call: the step, its arguments (templates holding handles, constants or JSON) and its inputs."""

    id: str
    step: Step
    arguments: Mapping[str, Any]
    refs: tuple[Key, ...]
    upstream: tuple[str, ...]

    def call(self, resolve: Callable[[Key], Any]) -> Any:
        """Call the step's function with every handle and constant replaced by ``resolve(key)``."""
        values = {name: substitute(template, resolve) for name, template in self.arguments.items()}
        bound = inspect.BoundArguments(self.step.signature, values)
        return self.step.fn(*bound.args, **bound.kwargs)

    def params(self) -> dict[str, Any]:
        """The arguments that are plain JSON values, by parameter name."""
        return {name: t for name, t in self.arguments.items() if not has_refs(t)}


@dataclass(frozen=True)
class Graph:
    """A traced pipeline: its nodes in a topological order (the call order), constants and output."""

    pipeline: str
    nodes: dict[str, Node]
    constants: tuple[Any, ...]
    output: Any
    params: dict[str, Any] = field(default_factory=dict)

    def consumers(self) -> dict[Key, int]:
        """How many nodes read each key (the pipeline's output counts as one more reader)."""
        counts: dict[Key, int] = {}
        for node in self.nodes.values():
            for key in node.refs:
                counts[key] = counts.get(key, 0) + 1
        for key in {ref.key for ref in iter_refs(self.output)}:
            counts[key] = counts.get(key, 0) + 1
        return counts

    def downstream(self) -> dict[str, list[str]]:
        """Node id -> ids of the nodes that read one of its outputs."""
        result: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for node in self.nodes.values():
            for upstream in node.upstream:
                result[upstream].append(node.id)
        return result

    def describe(self) -> dict[str, Any]:
        """A JSON description of the DAG, stored with each pipeline run."""
        return {
            "pipeline": self.pipeline,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "nodes": [
                {
                    "id": node.id,
                    "step": node.step.name,
                    "function": f"{getattr(node.step.fn, '__module__', '?')}:{getattr(node.step.fn, '__qualname__', '?')}",
                    "code_hash": node.step.code_hash,
                    "upstream": list(node.upstream),
                    "inputs": [list(key) for key in node.refs],
                    "params": {k: _jsonable(v) for k, v in node.params().items()},
                    "outputs": list(node.step.options.outputs),
                }
                for node in self.nodes.values()
            ],
            "output": [list(ref.key) for ref in iter_refs(self.output)],
        }


# -- templates ------------------------------------------------------------------------------


def iter_refs(template: Any) -> Iterator[StepOutput | Constant]:
    """Every handle and constant inside a template, depth first."""
    if isinstance(template, StepOutput | Constant):
        yield template
    elif isinstance(template, list | tuple):
        for item in template:
            yield from iter_refs(item)
    elif isinstance(template, dict):
        for item in template.values():
            yield from iter_refs(item)


def has_refs(template: Any) -> bool:
    """Whether a template holds at least one handle or constant."""
    return next(iter_refs(template), None) is not None


def substitute(template: Any, resolve: Callable[[Key], Any]) -> Any:
    """The template with every handle and constant replaced by its value.

    Lists and dicts are always new ones, so a step that changes a list it was
    given in place changes neither the graph (the cache keys of later steps)
    nor what another step is given.
    """
    if isinstance(template, StepOutput | Constant):
        return resolve(template.key)
    if isinstance(template, list | tuple):
        return type(template)(substitute(item, resolve) for item in template)
    if isinstance(template, dict):
        return {k: substitute(v, resolve) for k, v in template.items()}
    return template


def canonical(template: Any, digests: Mapping[Key, str]) -> str:
    """Canonical JSON of a template with each handle or constant replaced by its content digest."""
    return json.dumps(_hashable(template, digests), sort_keys=True, separators=(",", ":"), allow_nan=True)


def _hashable(template: Any, digests: Mapping[Key, str]) -> Any:
    if isinstance(template, StepOutput | Constant):
        return {"$digest": digests[template.key]}
    if isinstance(template, list | tuple):
        return [_hashable(item, digests) for item in template]
    if isinstance(template, dict):
        return {"$dict": [[k, _hashable(v, digests)] for k, v in template.items()]}
    return template


def _jsonable(template: Any) -> Any:
    if isinstance(template, StepOutput):
        return {"$output": [template.node, template.name]}
    if isinstance(template, Constant):
        return {"$constant": template.index}
    if isinstance(template, list | tuple):
        return [_jsonable(item) for item in template]
    if isinstance(template, dict):
        return {str(k): _jsonable(v) for k, v in template.items()}
    return template if isinstance(template, _SCALARS) else f"<{type(template).__name__}>"


def param_text(value: Any) -> str:
    """How a JSON param is logged on a run: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(_jsonable(value), allow_nan=True)


# -- tracing --------------------------------------------------------------------------------------


class Trace:
    """Collects the step calls of one pipeline function call."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.nodes: dict[str, Node] = {}
        self.constants: list[Any] = []

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PipelineDefinitionError(
                f"Step {step.name!r} was called with arguments that do not fit {step.name}{step.signature}: {exc}."
            ) from None
        node_id = self._node_id(step.name)
        arguments = {
            name: self._template(value, f"argument {name!r} of step {node_id!r}")
            for name, value in bound.arguments.items()
        }
        refs: list[Key] = []
        for template in arguments.values():
            for ref in iter_refs(template):
                if ref.key not in refs:
                    refs.append(ref.key)
        upstream = tuple(dict.fromkeys(key[0] for key in refs if key[0]))
        self.nodes[node_id] = Node(node_id, step, arguments, tuple(refs), upstream)
        handles = tuple(StepOutput(node_id, name) for name in step.options.outputs)
        return handles[0] if len(handles) == 1 else handles

    def _node_id(self, name: str) -> str:
        if name not in self.nodes:
            return name
        n = 2
        while f"{name}_{n}" in self.nodes:
            n += 1
        return f"{name}_{n}"

    def _template(self, value: Any, where: str) -> Any:
        if isinstance(value, StepOutput):
            if value.node not in self.nodes:
                raise PipelineDefinitionError(
                    f"The {where} is a handle from another pipeline ({value.node}.{value.name}); "
                    "handles only work inside the pipeline function that created them."
                )
            return value
        if isinstance(value, Step | Pipeline):
            raise PipelineDefinitionError(
                f"The {where} is the step or pipeline {value.name!r} itself; call it and pass what it returns."
            )
        if isinstance(value, _SCALARS):
            return value
        if type(value) in (list, tuple):
            items = [self._template(item, where) for item in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(items)
        if type(value) is dict and all(isinstance(k, str) for k in value):
            mapped = {k: self._template(v, where) for k, v in value.items()}
            return value if all(mapped[k] is value[k] for k in value) else mapped
        find_materializer(value, where=where)  # refuses, now, what could never be stored
        self.constants.append(value)
        return Constant(len(self.constants) - 1)


class Pipeline:
    """A traced-then-run function of steps (see :func:`pipeline`).

    Example:
        >>> @pipeline
        ... def training(n: int = 100):
        ...     data = load(n)
        ...     return train(data)
        >>> result = training.run(n=200)          # doctest: +SKIP
        >>> result.output, result.run_id          # doctest: +SKIP
    """

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, experiment: str | None = None, cache: bool = True
    ) -> None:
        if not callable(fn) or isinstance(fn, Step | Pipeline):
            raise PipelineDefinitionError(f"@pipeline needs a function, got {type(fn).__name__}.")
        self.fn = fn
        pipeline_name = name or getattr(fn, "__name__", "")
        if not isinstance(pipeline_name, str) or not pipeline_name.strip() or len(pipeline_name) > 200:
            raise PipelineDefinitionError(
                f"Pipeline name {pipeline_name!r} must be a non-empty string of <= 200 characters."
            )
        self.name: str = pipeline_name
        self.experiment = experiment
        self.cache = bool(cache)
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    @property
    def source(self) -> str:
        """``module:qualname`` of the pipeline function (what ``loopml pipelines run`` takes)."""
        return f"{getattr(self.fn, '__module__', '?')}:{getattr(self.fn, '__qualname__', '?')}"

    def trace(self, params: Mapping[str, Any] | None = None) -> Graph:
        """Call the function with ``params`` (defaults filled in) while recording its step calls."""
        try:
            bound = self.signature.bind(**dict(params or {}))
        except TypeError as exc:
            raise PipelineDefinitionError(
                f"Pipeline {self.name!r} takes {self.name}{self.signature}; the params given do not fit: {exc}."
            ) from None
        bound.apply_defaults()
        trace = Trace(self.name)
        token = current_trace.set(trace)
        try:
            result = self.fn(*bound.args, **bound.kwargs)
        finally:
            current_trace.reset(token)
        if not trace.nodes:
            raise PipelineDefinitionError(f"Pipeline {self.name!r} calls no step; decorate its steps with @step.")
        output = trace._template(result, f"return value of pipeline {self.name!r}")
        return Graph(self.name, trace.nodes, tuple(trace.constants), output, dict(bound.arguments))

    def run(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        cache: bool | None = None,
        runner: str = "local",
        parallel: bool = False,
        max_workers: int | None = None,
        address: str | None = None,
        client: TrackingClient | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> PipelineRun:
        """Trace with ``params`` (or keyword params) and execute; see :func:`loopml.pipelines.run.run_pipeline`."""
        from loopml.pipelines.run import run_pipeline

        if current_trace.get() is not None:  # it would run now, while the outer function is traced
            raise PipelineDefinitionError(
                f"Pipeline {self.name!r} was called inside another pipeline function. To use its steps there, "
                f"call its function instead: {getattr(self.fn, '__name__', self.name)}.fn(...) adds them to the "
                "outer pipeline."
            )
        if params is not None and not isinstance(params, Mapping):
            raise InvalidValueError(f"params must be a mapping of name to value, got {type(params).__name__}.")
        return run_pipeline(
            self,
            {**dict(params or {}), **kwargs},
            cache=self.cache if cache is None else cache,
            runner=runner,
            parallel=parallel,
            max_workers=max_workers,
            address=address,
            client=client,
            experiment=experiment,
            tags=tags,
        )

    __call__ = run

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} of {self.source}>"


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    fn: None = None, /, *, name: str | None = None, experiment: str | None = None, cache: bool = True
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    experiment: str | None = None,
    cache: bool = True,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Mark a function of step calls as a pipeline: ``@pipeline`` or ``@pipeline(name=..., experiment=...)``.

    Args:
        name: the pipeline's name (default: the function's name); its runs carry the tag
            ``loopml.pipeline=<name>``.
        experiment: where its runs go (default: an experiment named after the pipeline).
        cache: the default for ``run(cache=...)``.
    """
    if fn is not None:
        return Pipeline(fn, name=name, experiment=experiment, cache=cache)

    def decorate(function: Callable[..., Any]) -> Pipeline:
        return Pipeline(function, name=name, experiment=experiment, cache=cache)

    return decorate
