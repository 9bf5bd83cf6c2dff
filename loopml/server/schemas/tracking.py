"""Request and response bodies of the tracking routes: experiments, runs, metrics, datasets, artifacts."""

from __future__ import annotations

from pydantic import Field

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import ColumnProfile, Dataset
from loopml.entities.tracking import Metric, RunStatus
from loopml.server.schemas.common import Float, Int64, Schema
from loopml.server.schemas.search import FilterJson, OrderByJson

# -- shared shapes -----------------------------------------------------------------------


class ExperimentOut(Schema):
    experiment_id: int
    name: str
    created_at: int


class MetricJson(Schema):
    key: str
    value: Float
    step: Int64
    timestamp: Int64

    def to_entity(self) -> Metric:
        return Metric(self.key, self.value, self.step, self.timestamp)


class RunInfoOut(Schema):
    run_id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    user: str


class DatasetInputOut(Schema):
    name: str
    digest: str
    context: str


class RunOut(Schema):
    info: RunInfoOut
    params: dict[str, str]
    metrics: dict[str, Float]
    tags: dict[str, str]
    inputs: list[DatasetInputOut]


class RunPageOut(Schema):
    runs: list[RunOut]
    next_page_token: str | None


class ColumnProfileJson(Schema):
    name: str
    dtype: str
    n_missing: int
    n_unique: int | None = None
    min: Float | None = None
    max: Float | None = None
    mean: Float | None = None
    std: Float | None = None
    top: list[tuple[str, int]] = []

    def to_entity(self) -> ColumnProfile:
        fields = self.model_dump()
        fields["top"] = tuple((str(v), int(c)) for v, c in self.top)
        return ColumnProfile(**fields)


class DatasetJson(Schema):
    digest: str
    name: str
    source: str
    n_rows: Int64
    schema_: dict[str, str] = Field(alias="schema")
    profile: list[ColumnProfileJson]
    storage_digest: str | None
    storage_format: str | None
    created_at: Int64

    def to_entity(self) -> Dataset:
        return Dataset(
            digest=self.digest,
            name=self.name,
            source=self.source,
            n_rows=self.n_rows,
            schema=dict(self.schema_),
            profile=tuple(p.to_entity() for p in self.profile),
            storage_digest=self.storage_digest,
            storage_format=self.storage_format,
            created_at=self.created_at,
        )


class ArtifactEntryJson(Schema):
    path: str
    digest: str
    size: Int64

    def to_entity(self) -> ArtifactEntry:
        return ArtifactEntry(self.path, self.digest, self.size)


class DatasetRunOut(Schema):
    """One use of a dataset: the run, the name it was logged under, and the context."""

    run_id: str
    name: str
    context: str


# -- requests ------------------------------------------------------------------------------


class CreateExperimentIn(Schema):
    name: str


class CreateRunIn(Schema):
    experiment_id: Int64
    name: str
    user: str
    start_time: Int64
    parent_run_id: str | None = None
    params: dict[str, str] = {}
    tags: dict[str, str] = {}


class EndRunIn(Schema):
    status: RunStatus
    end_time: Int64


class SearchRunsIn(Schema):
    experiment_ids: list[Int64] | None = None
    filter: FilterJson | None = None
    order_by: list[OrderByJson] = []
    max_results: int = 100
    page_token: str | None = None


class LogBatchIn(Schema):
    metrics: list[MetricJson] = []
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    idempotency_key: str | None = None


class LogDatasetIn(Schema):
    dataset: DatasetJson
    context: str


class ArtifactEntriesIn(Schema):
    entries: list[ArtifactEntryJson]
    actor: str | None = None
