"""``@step``: a plain typed function plus what the runners need to know about it.

A step stays an ordinary function: called outside a pipeline it just runs, so
it can be unit-tested without loopml. Called while a ``@pipeline`` function is
being traced, it runs nothing and returns a lazy handle
(:class:`~loopml.pipelines.dag.StepOutput`) instead; the handles passed from
step to step are the edges of the DAG.

The step's *code hash* is the sha256 of its function's syntax tree without
decorators, so editing a comment, the formatting or the ``@step(...)`` options
keeps cached outputs, while editing the body does not. The values of its
defaults and of what a nested function closes over are part of it too when they
are JSON values or functions (``def f(x, n=N)`` misses when ``N`` changes; two
steps made by one factory, ``make_scaler(2)`` and ``make_scaler(3)``, do not
share outputs). Functions the step calls and module-level constants it reads are
not part of the hash: bump ``version=`` when a helper changes.
"""

from __future__ import annotations

import ast
import contextvars
import functools
import hashlib
import importlib
import inspect
import json
import math
import re
import textwrap
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

from loopml.errors import InvalidValueError, PipelineDefinitionError, ValidationFailedError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class Tracer(Protocol):
    """What a step call inside a traced pipeline function talks to (see ``dag.Trace``)."""

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...


#: The pipeline trace in progress in this context, if any.
current_trace: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar("loopml_pipeline_trace", default=None)
#: Set while the Ray runner serialises a task: steps of ``__main__`` then travel by value (see Step.__reduce__).
main_by_value: contextvars.ContextVar[bool] = contextvars.ContextVar("loopml_main_by_value", default=False)


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How a step runs: its name, outputs, cache policy, retries, timeout and resources.

    ``retry_delay`` is the wait before the first retry; each further retry waits
    ``retry_backoff`` times longer. ``memory`` is in bytes. ``cpus``, ``gpus``
    and ``memory`` are resource requests for the Ray runner (the local runner
    ignores them).
    """

    name: str
    outputs: tuple[str, ...] = ("output",)
    cache: bool = True
    retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout: float | None = None
    cpus: float | None = None
    gpus: float | None = None
    memory: int | None = None
    version: str | None = None


class Step:
    """A function marked as a pipeline step (see :func:`step`).

    Example:
        >>> @step(retries=2)
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> double(3)          # outside a pipeline: a plain call
        6
    """

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        if not callable(fn) or isinstance(fn, Step):
            raise PipelineDefinitionError(f"@step needs a function, got {type(fn).__name__}.")
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        self._code_hash: str | None = None
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def code_hash(self) -> str:
        """sha256 of the function's code (see the module docstring); computed once."""
        if self._code_hash is None:
            self._code_hash = code_hash(self.fn)
        return self._code_hash

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = current_trace.get()
        if trace is None:
            return self.fn(*args, **kwargs)
        return trace.add(self, args, kwargs)

    def with_options(self, **changes: Any) -> Step:
        """A copy with some options changed, e.g. ``load.with_options(name="load_test")``."""
        unknown = sorted(set(changes) - set(StepOptions.__dataclass_fields__))
        if unknown:
            raise InvalidValueError(f"Unknown step option(s) {', '.join(unknown)}.")
        merged = {**{f: getattr(self.options, f) for f in StepOptions.__dataclass_fields__}, **changes}
        return Step(self.fn, make_options(self.fn, **merged))

    def __repr__(self) -> str:
        return f"<Step {self.name!r} of {getattr(self.fn, '__module__', '?')}.{getattr(self.fn, '__qualname__', '?')}>"

    def __reduce__(self) -> Any:
        # Process pools and Ray ship steps to workers. A module-level step travels by
        # reference (the worker imports its module, which also runs any materialiser
        # registrations there); any other one travels with its function, which
        # cloudpickle (Ray) can serialise by value and the standard pickle cannot.
        # A spawned pool worker re-imports the script as __main__, a Ray worker does
        # not: there a script's steps must travel by value.
        module, qualname = getattr(self.fn, "__module__", None), getattr(self.fn, "__qualname__", "")
        if module and "<" not in qualname and not (module == "__main__" and main_by_value.get()):
            try:
                found: Any = importlib.import_module(module)
                for part in qualname.split("."):
                    found = getattr(found, part)
            except (ImportError, AttributeError):
                found = None
            if found is self:
                return (_import_step, (module, qualname))
            if isinstance(found, Step) and found.fn is self.fn:  # a with_options() copy of a module-level step
                return (_import_variant, (module, qualname, self.options))
        return (Step, (self.fn, self.options))


def _import_step(module: str, qualname: str) -> Step:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, Step):
        raise PipelineDefinitionError(f"{module}.{qualname} is no longer a @step in this process.")
    return found


def _import_variant(module: str, qualname: str, options: StepOptions) -> Step:
    """A ``with_options`` copy of the module-level step ``module.qualname``, rebuilt in a worker."""
    return Step(_import_step(module, qualname).fn, options)


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    outputs: int | Sequence[str] = 1,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    retry_backoff: float = 2.0,
    retry_on: type[BaseException] | Sequence[type[BaseException]] = Exception,
    timeout: float | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    memory: int | str | None = None,
    version: str | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Step | Callable[[Callable[..., Any]], Step]:
    """Mark a function as a pipeline step: ``@step`` or ``@step(retries=2, timeout=30, cpus=2)``.

    Keyword Args:
        name (str | None): the step's name (default: the function's name).
        outputs (int | Sequence[str]): how many values the function returns (a tuple of that length), or their
            names; one output is named ``"output"``.
        cache (bool): reuse the outputs of an earlier run with the same code, inputs and params.
        retries (int): how many times to run the function again after it raised.
        retry_delay (float): seconds before the first retry; ``retry_backoff`` multiplies it each time.
        retry_on (type[BaseException] | Sequence[type[BaseException]]): the exception types that are
            retried (a failed validation never is).
        timeout (float | None): seconds one attempt may take; a longer one fails with StepTimeoutError.
        cpus (float | None): CPUs the Ray runner reserves for the step.
        gpus (float | None): GPUs the Ray runner reserves for the step.
        memory (int | str | None): memory the Ray runner reserves for the step, as bytes or "4G".
        version (str | None): part of the cache key; change it to invalidate cached outputs by hand.
    """
    if fn is not None:
        return Step(fn, make_options(fn, **options))

    def decorate(function: Callable[..., Any]) -> Step:
        return Step(function, make_options(function, **options))

    return decorate


def make_options(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    outputs: int | Sequence[str] = 1,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    retry_backoff: float = 2.0,
    retry_on: type[BaseException] | Sequence[type[BaseException]] = Exception,
    timeout: float | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    memory: int | str | None = None,
    version: str | None = None,
) -> StepOptions:
    """Check the ``@step`` options and return them as a StepOptions."""
    # a lambda's "<lambda>" becomes "lambda"; a name given explicitly must already be valid
    step_name = name if name is not None else re.sub(r"[^A-Za-z0-9_.\-]", "", getattr(fn, "__name__", "")) or "step"
    if not isinstance(step_name, str) or not _NAME.match(step_name):
        raise PipelineDefinitionError(
            f"Step name {step_name!r} is not valid: use letters, digits, '_', '-' or '.', starting with a letter."
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidValueError(f"retries must be a whole number >= 0, got {retries!r}.")
    for label, value in (("retry_delay", retry_delay), ("retry_backoff", retry_backoff)):
        if not _number(value) or value < 0:
            raise InvalidValueError(f"{label} must be a number >= 0, got {value!r}.")
    if timeout is not None and (not _number(timeout) or timeout <= 0):
        raise InvalidValueError(f"timeout must be a number of seconds > 0, got {timeout!r}.")
    for label, resource in (("cpus", cpus), ("gpus", gpus)):
        if resource is not None and (not _number(resource) or resource < 0):
            raise InvalidValueError(f"{label} must be a number >= 0, got {resource!r}.")
    if version is not None and not isinstance(version, str):
        raise InvalidValueError(f"version must be a string, got {version!r}.")
    return StepOptions(
        name=step_name,
        outputs=_output_names(step_name, outputs),
        cache=bool(cache),
        retries=retries,
        retry_delay=float(retry_delay),
        retry_backoff=float(retry_backoff),
        retry_on=_exception_types(retry_on),
        timeout=None if timeout is None else float(timeout),
        cpus=None if cpus is None else float(cpus),
        gpus=None if gpus is None else float(gpus),
        memory=parse_memory(memory),
        version=version,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _output_names(step_name: str, outputs: int | Sequence[str] | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(outputs, int) and not isinstance(outputs, bool):
        if outputs < 1:
            raise InvalidValueError(f"Step {step_name!r}: outputs must be >= 1, got {outputs}.")
        return ("output",) if outputs == 1 else tuple(f"output_{i}" for i in range(outputs))
    if isinstance(outputs, str) or not isinstance(outputs, Sequence) or not outputs:
        raise InvalidValueError(f"Step {step_name!r}: outputs must be a count or a list of names, got {outputs!r}.")
    names = tuple(outputs)
    for item in names:
        if not isinstance(item, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", item):
            raise InvalidValueError(f"Step {step_name!r}: output name {item!r} must be an identifier.")
    if len(set(names)) != len(names):
        raise InvalidValueError(f"Step {step_name!r}: output names {list(names)} repeat.")
    return names


def _exception_types(value: Any) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, tuple | list) else (value,)
    if not items or not all(isinstance(t, type) and issubclass(t, BaseException) for t in items):
        raise InvalidValueError(f"retry_on must be an exception class or a list of them, got {value!r}.")
    return tuple(items)


def parse_memory(value: int | str | None) -> int | None:
    """Bytes from ``4294967296``, ``"4G"``, ``"512M"``, ``"1.5GiB"`` (binary units)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _MEMORY.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise InvalidValueError(f"memory must be a number of bytes or a size such as '4G' or '512M', got {value!r}.")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def should_retry(step: Step, exc: BaseException) -> bool:
    """Whether an attempt that raised ``exc`` is retried: a failed validation never is (it would fail again)."""
    return isinstance(exc, step.options.retry_on) and not isinstance(exc, ValidationFailedError)


# -- code hashing ------------------------------------------------------------------------


def code_hash(fn: Callable[..., Any], _seen: frozenset[int] = frozenset()) -> str:
    """sha256 of the function's syntax tree (decorators, comments and layout excluded), defaults and closure.

    Falls back to the bytecode and constants when the source cannot be read
    (a function typed into a REPL, or a lambda sharing its line with others).
    """
    target = inspect.unwrap(fn)
    try:
        source = textwrap.dedent(inspect.getsource(target))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        tree = None
    closure = _closure_values(target, _seen | {id(target)})
    if tree is not None and tree.body and isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        node = tree.body[0]
        node.decorator_list = []
        node.name = "_"  # the step's name enters the cache key on its own
        hasher = hashlib.sha256(b"ast\x00" + ast.dump(node).encode("utf-8"))
        if closure:
            hasher.update(b"\x00closure\x00" + closure)
        return hasher.hexdigest()
    code = getattr(target, "__code__", None)
    if code is None:
        raise PipelineDefinitionError(f"Cannot hash the code of {target!r}: it is not a Python function.")
    hasher = hashlib.sha256(b"code\x00")
    _feed_code(hasher, code)
    if closure:
        hasher.update(b"\x00closure\x00" + closure)
    return hasher.hexdigest()


def _closure_values(fn: Any, seen: frozenset[int]) -> bytes:
    """The default values and what a nested function closes over, as canonical JSON (empty when it has neither).

    The syntax tree holds ``n=N`` but not the value ``N`` had. JSON values count
    as they are, functions by code hash; anything else by its type only (its
    content cannot be hashed reliably): bump ``version=`` when such a value changes.
    """
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    defaults = list(getattr(fn, "__defaults__", None) or ())
    keyword_defaults = dict(getattr(fn, "__kwdefaults__", None) or {})
    if code is None or not (cells or defaults or keyword_defaults):
        return b""
    values: list[Any] = [["$defaults", [_closure_value(v, seen) for v in defaults]]] if defaults else []
    values += [[f"$kw:{name}", _closure_value(value, seen)] for name, value in sorted(keyword_defaults.items())]
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not filled yet
            continue
        values.append([name, _closure_value(value, seen)])
    return json.dumps(values, sort_keys=True, allow_nan=True).encode("utf-8")


def _closure_value(value: Any, seen: frozenset[int]) -> Any:
    if isinstance(value, Step):
        value = value.fn
    if isinstance(value, types.FunctionType):
        return {"function": "recursive" if id(value) in seen else code_hash(value, seen)}
    if _is_plain(value):
        return {"value": value}
    return {"type": f"{type(value).__module__}.{type(value).__qualname__}"}


def _is_plain(value: Any, depth: int = 0) -> bool:
    """A JSON value (tuples counting as lists), small enough to recurse into."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if depth > 20:
        return False
    if type(value) in (list, tuple):
        return all(_is_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _feed_code(hasher: Any, code: types.CodeType) -> None:
    # repr() of a nested code object holds its memory address; walk it instead.
    hasher.update(code.co_code)
    hasher.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(hasher, const)
        else:
            hasher.update(repr(const).encode())
