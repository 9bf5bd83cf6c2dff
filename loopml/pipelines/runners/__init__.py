"""Runners: where the steps that are not cache hits execute (``local``, a process pool, ``ray``)."""

from __future__ import annotations

from typing import Any

from loopml.errors import InvalidValueError, did_you_mean
from loopml.pipelines.dag import Key
from loopml.pipelines.runners.base import Runner
from loopml.tracking.client import TrackingClient

RUNNERS = ("local", "ray")


def store_urls(client: TrackingClient) -> tuple[str, str | None]:
    """The URLs a worker process opens to reach the same store as ``client``."""
    return client.store.url, getattr(client.store.artifacts, "url", None)


def make_runner(
    name: str,
    client: TrackingClient,
    memo: dict[Key, Any],
    *,
    parallel: bool = False,
    max_workers: int | None = None,
    address: str | None = None,
) -> Runner:
    """The runner called ``name``: "local" (in-process, or a process pool with ``parallel``) or "ray"."""
    if name == "local":
        if parallel or (max_workers is not None and max_workers > 1):
            from loopml.pipelines.runners.local import ProcessPoolRunner

            return ProcessPoolRunner(store_urls(client), max_workers)
        from loopml.pipelines.runners.local import InProcessRunner

        return InProcessRunner(client, memo)
    if name == "ray":
        from loopml.pipelines.runners.ray import RayRunner

        return RayRunner(store_urls(client), address)
    raise InvalidValueError(
        f"Unknown runner {name!r}; runners are {', '.join(RUNNERS)}.{did_you_mean(str(name), RUNNERS)}"
    )


__all__ = ["RUNNERS", "Runner", "make_runner", "store_urls"]
