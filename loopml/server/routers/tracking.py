"""Experiments, runs, metrics, datasets and the run artifact index: one route per TrackingStore method.

Free-form strings (experiment names, metric keys, artifact paths, dataset
references) travel as query parameters, never as path segments, so a ``/``
inside them cannot change the route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from loopml.auth.guard import actor_for, needs
from loopml.entities.auth import Role
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import IntPath, NoContent, StoreDep
from loopml.server.schemas.search import to_filter, to_order_by
from loopml.server.schemas.series import MAX_SERIES_POINTS, MetricSeriesOut
from loopml.server.schemas.tracking import (
    ArtifactEntriesIn,
    ArtifactEntryJson,
    CreateExperimentIn,
    CreateRunIn,
    DatasetJson,
    DatasetRunOut,
    EndRunIn,
    ExperimentOut,
    LogBatchIn,
    LogDatasetIn,
    MetricJson,
    RunOut,
    RunPageOut,
    SearchRunsIn,
)

router = APIRouter(tags=["tracking"], route_class=AuthorizedRoute)
NO_CONTENT: NoContent = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


# -- experiments --------------------------------------------------------------------------
@router.post("/experiments", status_code=status.HTTP_201_CREATED)
def create_experiment(body: CreateExperimentIn, store: StoreDep) -> ExperimentOut:
    return ExperimentOut.model_validate(store.tracking.create_experiment(body.name))


@router.get("/experiments")
def list_experiments(store: StoreDep) -> list[ExperimentOut]:
    return [ExperimentOut.model_validate(e) for e in store.tracking.list_experiments()]


@router.get("/experiments/by-name")
def get_experiment_by_name(name: str, store: StoreDep) -> ExperimentOut:
    return ExperimentOut.model_validate(store.tracking.get_experiment_by_name(name))


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: IntPath, store: StoreDep) -> ExperimentOut:
    return ExperimentOut.model_validate(store.tracking.get_experiment(experiment_id))


# -- runs -----------------------------------------------------------------------------------
@router.post("/runs", status_code=status.HTTP_201_CREATED)
def create_run(body: CreateRunIn, store: StoreDep, request: Request) -> RunOut:
    run = store.tracking.create_run(
        body.experiment_id,
        name=body.name,
        user=actor_for(request, body.user),
        start_time=body.start_time,
        parent_run_id=body.parent_run_id,
        params=body.params,
        tags=body.tags,
    )
    return RunOut.model_validate(run)


@router.post("/runs/search")
@needs(Role.VIEWER)
def search_runs(body: SearchRunsIn, store: StoreDep) -> RunPageOut:
    page = store.tracking.search_runs(
        body.experiment_ids, to_filter(body.filter), to_order_by(body.order_by), body.max_results, body.page_token
    )
    return RunPageOut.model_validate(page)


@router.get("/runs/{run_id}")
def get_run(run_id: str, store: StoreDep) -> RunOut:
    return RunOut.model_validate(store.tracking.get_run(run_id))


@router.post("/runs/{run_id}/end")
def end_run(run_id: str, body: EndRunIn, store: StoreDep) -> RunOut:
    return RunOut.model_validate(store.tracking.end_run(run_id, body.status, body.end_time))


@router.post("/runs/{run_id}/batch", **NO_CONTENT)
def log_batch(run_id: str, body: LogBatchIn, store: StoreDep) -> None:
    store.tracking.log_batch(
        run_id,
        metrics=[m.to_entity() for m in body.metrics],
        params=body.params,
        tags=body.tags,
        idempotency_key=body.idempotency_key,
    )


@router.get("/runs/{run_id}/metrics/history")
def get_metric_history(run_id: str, key: str, store: StoreDep) -> list[MetricJson]:
    return [MetricJson.model_validate(m) for m in store.tracking.get_metric_history(run_id, key)]


@router.get("/runs/{run_id}/metrics/series")
@needs(Role.VIEWER)
def get_metric_series(
    run_id: str,
    key: str,
    store: StoreDep,
    x: Literal["step", "time"] = "step",
    x_from: Annotated[int | None, Query(alias="from", ge=-(2**63), le=2**63 - 1)] = None,
    x_to: Annotated[int | None, Query(alias="to", ge=-(2**63), le=2**63 - 1)] = None,
    max_points: Annotated[int, Query(ge=2, le=MAX_SERIES_POINTS)] = 1000,
) -> MetricSeriesOut:
    series = store.tracking.get_metric_series(run_id, key, x=x, x_from=x_from, x_to=x_to, max_points=max_points)
    return MetricSeriesOut.model_validate(series)


# -- datasets ---------------------------------------------------------------------------------
@router.post("/runs/{run_id}/datasets", status_code=status.HTTP_201_CREATED)
def log_dataset_input(run_id: str, body: LogDatasetIn, store: StoreDep) -> DatasetJson:
    return DatasetJson.model_validate(store.tracking.log_dataset_input(run_id, body.dataset.to_entity(), body.context))


@router.get("/datasets/by-ref")
def get_dataset(ref: str, store: StoreDep) -> DatasetJson:
    return DatasetJson.model_validate(store.tracking.get_dataset(ref))


@router.get("/datasets/{digest}/runs")
def list_dataset_runs(digest: str, store: StoreDep) -> list[DatasetRunOut]:
    uses = store.tracking.list_dataset_runs(digest)
    return [DatasetRunOut(run_id=run_id, name=name, context=context) for run_id, name, context in uses]


# -- artifact index ------------------------------------------------------------------------------
@router.post("/runs/{run_id}/artifacts", **NO_CONTENT)
def log_artifact_entries(run_id: str, body: ArtifactEntriesIn, store: StoreDep, request: Request) -> None:
    entries = [e.to_entity() for e in body.entries]
    store.tracking.log_artifact_entries(run_id, entries, actor=actor_for(request, body.actor))


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: str, store: StoreDep, prefix: str = "") -> list[ArtifactEntryJson]:
    return [ArtifactEntryJson.model_validate(e) for e in store.tracking.list_artifacts(run_id, prefix)]


@router.get("/runs/{run_id}/artifacts/entry")
def get_artifact_entry(run_id: str, path: str, store: StoreDep) -> ArtifactEntryJson:
    return ArtifactEntryJson.model_validate(store.tracking.get_artifact_entry(run_id, path))
