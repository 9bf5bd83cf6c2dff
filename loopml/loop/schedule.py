"""Scheduled monitor checks at scale: what is due in two queries, the checks run side by side.

Each monitor may carry a cron ``schedule`` in its spec. At every agent tick the scheduler reads
all monitors and the newest result of each (two queries, however many monitors there are),
works out which schedules fired since a monitor's last result (or its creation), and runs those
checks concurrently: on a pool of worker processes (``runner="local"``), or as Ray tasks
(``runner="ray"``), each worker opening the store once and keeping it. A schedule missed for a
while is caught up with one check, as policies do. A check that raises (a monitor whose data no
longer fits) is reported and not retried until its schedule fires again.

Monitors that a policy watches are left to the policy, which checks them on its own cursor.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.entities.monitoring import Monitor
from loopml.errors import InvalidValueError, LoopMLError
from loopml.loop.cron import Cron

if TYPE_CHECKING:
    from loopml.store import Store
    from loopml.tracking.client import TrackingClient

RUNNERS = ("local", "ray")

_log = logging.getLogger("loopml.loop")
_worker_client: TrackingClient | None = None
_worker_uri: str | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """One scheduled check: the monitor, the minute its schedule fired, and the status (or the error)."""

    monitor: str
    fired_ms: int
    status: str
    error: str | None = None


def _client(tracking_uri: str) -> TrackingClient:
    """This worker's client of the store at ``tracking_uri`` (artifacts from the environment), opened once."""
    global _worker_client, _worker_uri
    if _worker_client is None or _worker_uri != tracking_uri:
        from loopml.store import open_store
        from loopml.tracking.client import TrackingClient

        _worker_client = TrackingClient(open_store(tracking_uri))
        _worker_uri = tracking_uri
    return _worker_client


def check_monitor(tracking_uri: str, name: str, fired_ms: int, actor: str) -> CheckOutcome:
    """Run monitor ``name`` in a worker; a LoopMLError becomes an outcome, not a crash of the pool."""
    from loopml.monitoring.monitors import run_monitor

    try:
        result = run_monitor(name, client=_client(tracking_uri), actor=actor)
    except LoopMLError as exc:
        return CheckOutcome(name, fired_ms, "failed", f"{type(exc).__name__}: {exc}")
    return CheckOutcome(name, fired_ms, result.status)


class MonitorScheduler:
    """Finds the monitors whose schedule is due and checks them concurrently on ``runner``."""

    def __init__(
        self,
        client: TrackingClient,
        *,
        runner: str = "local",
        workers: int | None = None,
        actor: str = "loopml-loop",
        skip: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if runner not in RUNNERS:
            raise InvalidValueError(f"{runner!r} is not a runner for monitor checks; use one of {', '.join(RUNNERS)}.")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise InvalidValueError(f"workers must be a whole number from 1, got {workers!r}.")
        self.client = client
        self.runner = runner
        self.workers = workers or max(os.cpu_count() or 1, 1)
        self.actor = actor
        self.skip = set(skip)
        self.clock = clock
        self._crons: dict[str, Cron] = {}
        self._attempted: dict[str, int] = {}  # monitor -> the firing last tried, so a raising check waits
        self._pool: Executor | None = None

    @property
    def store(self) -> Store:
        return self.client.store

    def due(self, now_ms: int | None = None) -> list[tuple[Monitor, int]]:
        """The monitors whose schedule fired since their last check, with the minute it fired (two queries)."""
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        last = {r.monitor: r.time for r in self.store.monitoring.latest_results()}
        found = []
        for monitor in self.store.monitoring.list_monitors():
            schedule = monitor.spec.get("schedule")
            if not schedule or monitor.name in self.skip:
                continue
            cron = self._crons.get(schedule)
            if cron is None:
                cron = self._crons[schedule] = Cron.parse(schedule)
            since = max(last.get(monitor.name, monitor.created_at), self._attempted.get(monitor.name, 0))
            fired = cron.fires_between(since, now)
            if fired is not None:
                found.append((monitor, fired))
        return found

    def tick(self, now_ms: int | None = None) -> list[CheckOutcome]:
        """Check every due monitor, concurrently; the outcomes in the order the monitors were found."""
        due = self.due(now_ms)
        if not due:
            return []
        for monitor, fired in due:
            self._attempted[monitor.name] = fired
        uri = self.store.url
        if self.runner == "ray":
            return self._on_ray(uri, due)
        if self.workers == 1 or len(due) == 1:  # no pool to start for one check
            return [check_monitor(uri, m.name, fired, self.actor) for m, fired in due]
        pool = self._executor()
        futures = [pool.submit(check_monitor, uri, m.name, fired, self.actor) for m, fired in due]
        return [future.result() for future in futures]

    def _executor(self) -> Executor:
        if self._pool is None:
            # spawn: the agent holds connections and threads a forked child must not inherit
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    def _on_ray(self, uri: str, due: list[tuple[Monitor, int]]) -> list[CheckOutcome]:
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
        remote: Any = ray.remote(check_monitor)
        return list(ray.get([remote.remote(uri, m.name, fired, self.actor) for m, fired in due]))

    def close(self) -> None:
        """Stop the worker processes (Ray, if this scheduler started it, stays up for the caller)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
