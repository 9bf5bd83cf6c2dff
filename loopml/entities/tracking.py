"""What a tracked run is made of: experiments, runs, params, metrics, tags."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class RunStatus(enum.StrEnum):
    """Lifecycle of a run. RUNNING is the only non-terminal state."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    experiment_id: int
    name: str
    created_at: int  # ms since the epoch


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric's history. ``value`` may be NaN or +-inf."""

    key: str
    value: float
    step: int
    timestamp: int  # ms since the epoch


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The attributes of a run, without its params, metrics or tags."""

    run_id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    user: str

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset a run consumed, and in which role (``train``, ``test``, ...)."""

    name: str
    digest: str
    context: str


@dataclass(frozen=True, slots=True)
class Run:
    """A run with its params, latest metric values, tags and dataset inputs."""

    info: RunInfo
    params: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    metrics: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    inputs: tuple[DatasetInput, ...] = ()

    @property
    def run_id(self) -> str:
        return self.info.run_id


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of search results; pass ``next_page_token`` back for the next."""

    runs: tuple[Run, ...]
    next_page_token: str | None

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __getitem__(self, index: int) -> Run:
        return self.runs[index]
