"""The contract for experiments, runs, params, metrics, tags and their records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import Dataset
from loopml.entities.search import Filter, OrderBy
from loopml.entities.series import MetricSeries, SeriesX
from loopml.entities.tracking import Experiment, Metric, Run, RunPage, RunStatus


class TrackingStore(ABC):
    """Experiments and runs. Each method is one transaction; writes are durable on return.

    Every method that takes a ``run_id`` raises ``RunNotFoundError`` when no
    such run exists; writes to a run in a terminal state raise
    ``RunNotActiveError`` (except tags, which may be set after the end).
    """

    # -- experiments -----------------------------------------------------------
    @abstractmethod
    def create_experiment(self, name: str) -> Experiment:
        """Create an experiment. Raises ExperimentAlreadyExistsError."""

    @abstractmethod
    def get_experiment(self, experiment_id: int) -> Experiment:
        """Raises ExperimentNotFoundError."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment:
        """Raises ExperimentNotFoundError (suggesting close names)."""

    @abstractmethod
    def list_experiments(self) -> list[Experiment]:
        """All experiments, oldest first."""

    # -- runs ------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        experiment_id: int,
        *,
        name: str,
        user: str,
        start_time: int,
        parent_run_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Create a RUNNING run with its first params and tags, atomically."""

    @abstractmethod
    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        """Move a RUNNING run to a terminal status. Raises RunNotActiveError if already ended."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its params, latest metrics, tags and dataset inputs."""

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[int] | None,
        filter: Filter | None,
        order_by: Sequence[OrderBy],
        max_results: int,
        page_token: str | None,
    ) -> RunPage:
        """Runs matching ``filter`` in ``order_by`` order (then newest first), one page.

        Raises InvalidFilterError for a malformed ``page_token``.
        """

    # -- run data ----------------------------------------------------------------
    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Append metric points and set params and tags in one transaction.

        A param logged again with another value raises ParamConflictError and
        nothing of the batch is written. A batch whose ``idempotency_key`` was
        already applied to this run is ignored, so a retried call never
        duplicates points.
        """

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step then timestamp. Raises MetricNotFoundError."""

    @abstractmethod
    def get_metric_series(
        self,
        run_id: str,
        key: str,
        *,
        x: SeriesX = "step",
        x_from: int | None = None,
        x_to: int | None = None,
        max_points: int = 1000,
    ) -> MetricSeries:
        """One metric's points with x (``step`` or ``time``, ms) in ``[x_from, x_to]``, for a chart.

        At most ``max_points`` (2 or more) points come back whole; past that, the
        range is cut into ``max_points // 2`` buckets of equal x width and each
        bucket's min and max (and count, NaN count and mean) are computed by
        the database, so a long history is never read whole. Raises
        MetricNotFoundError when the run has no such metric (an empty range of
        a metric it has is a series with ``total`` 0).
        """

    # -- datasets ----------------------------------------------------------------
    @abstractmethod
    def log_dataset_input(self, run_id: str, dataset: Dataset, context: str) -> Dataset:
        """Record that a run used ``dataset``; the dataset row is stored once per digest.

        Returns the stored dataset (the first one recorded for that digest).
        """

    @abstractmethod
    def get_dataset(self, ref: str) -> Dataset:
        """A dataset by ``digest``, digest prefix or ``name@prefix``.

        Raises DatasetNotFoundError, or InvalidValueError when a prefix is ambiguous.
        """

    @abstractmethod
    def list_dataset_runs(self, digest: str) -> list[tuple[str, str, str]]:
        """``(run_id, name logged under, context)`` of every run that used the dataset."""

    # -- artifact index ------------------------------------------------------------
    @abstractmethod
    def log_artifact_entries(self, run_id: str, entries: Sequence[ArtifactEntry], *, actor: str | None = None) -> None:
        """Point run-relative paths at stored blobs, atomically.

        Every path must pass ``loopml.paths.check_artifact_path`` (ArtifactPathError
        otherwise). While the run is RUNNING a later entry for a path replaces it.
        Once the run has ended its index is append-only: an entry for a path it
        already holds must name the same blob (ArtifactImmutableError otherwise, and
        nothing is written), new paths are added, and each such write is audited
        as ``run.artifacts.append`` by ``actor`` (default: the run's user).
        """

    @abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        """The run's artifact files under ``prefix`` (a folder path), by path."""

    @abstractmethod
    def get_artifact_entry(self, run_id: str, path: str) -> ArtifactEntry:
        """One artifact file of a run. Raises ArtifactNotFoundError."""
