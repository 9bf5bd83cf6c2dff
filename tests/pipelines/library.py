"""Steps and pipelines defined at module level, so process pools, Ray workers and the CLI can import them.

In-process calls are counted in ``CALLS``; calls in other processes append a
line to the file named by the ``log`` param, so a test can count them too.
"""

from __future__ import annotations

import os
from collections import Counter

from loopml.pipelines import pipeline, step

CALLS: Counter[str] = Counter()


def _note(name: str, log: str | None) -> None:
    CALLS[name] += 1
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{name} {os.getpid()}\n")


@step
def square(i: int, log: str | None = None) -> int:
    _note("square", log)
    return i * i


@step(cpus=1)
def total(parts: list, log: str | None = None) -> dict:
    _note("total", log)
    return {"total": sum(parts), "count": len(parts)}


@step
def fail_on(value: int, bad: int = -1, log: str | None = None) -> int:
    _note("fail_on", log)
    if value == bad:
        raise ValueError(f"value {value} is bad")
    return value


@step(cpus=2)
def heavy(x: int) -> int:
    return x + 1


@step(cpus=64)
def impossible(x: int) -> int:
    return x


@pipeline
def fan(n: int = 4, log: str | None = None):
    """Fan out n squares, fan in their total."""
    return total([square(i, log=log) for i in range(n)], log=log)


@pipeline
def fan_with_failure(n: int = 4, bad: int = 2, log: str | None = None):
    """Like fan, but the square of ``bad`` is refused."""
    return total([fail_on(square(i, log=log), bad=bad * bad, log=log) for i in range(n)], log=log)


@pipeline
def uses_resources(x: int = 1):
    return heavy(heavy(x))


@pipeline
def asks_too_much(x: int = 1):
    return impossible(x)
