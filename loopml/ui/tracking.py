"""Tracking pages: experiments, an experiment's runs table, a run, and its artifacts' downloads.

Each page reads through the Store the app was built over (the objects the
REST routes call), with one search per table: ``search_runs`` returns a page
of runs with their params, metrics and tags, never a query per run.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from loopml.entities.search import Comparison
from loopml.entities.tracking import Run
from loopml.errors import DatasetNotFoundError, InvalidFilterError
from loopml.paths import check_artifact_path
from loopml.store import Store
from loopml.tracking.search import parse_filter, parse_order_by
from loopml.ui import nested, table
from loopml.ui.artifacts import artifact_tree
from loopml.ui.errors import PageRoute
from loopml.ui.render import page

router = APIRouter(route_class=PageRoute)
#: Most runs on one page of the table; the next page is a page token away.
MAX_PAGE_SIZE = 500
#: Child runs listed on a run's page; past it the page says how many more to search for.
MAX_CHILDREN = 100


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/", include_in_schema=False)
def experiments_page(request: Request) -> Response:
    experiments = _store(request).tracking.list_experiments()
    return page(request, "experiments.html", title="Experiments · loopml", experiments=experiments)


@router.get("/experiments/{experiment_id}", include_in_schema=False)
def runs_page(
    request: Request,
    experiment_id: int,
    filter: str = "",
    order: str = "",
    page_token: str | None = None,
    col: Annotated[list[str] | None, Query()] = None,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Response:
    store = _store(request)
    experiment = store.tracking.get_experiment(experiment_id)
    error: InvalidFilterError | None = None
    runs: tuple[Run, ...] = ()
    next_token: str | None = None
    chosen = table.known_columns(col or [])
    try:
        table.parse_columns(col or [])
        page_of_runs = store.tracking.search_runs(
            [experiment_id], parse_filter(filter), parse_order_by(order or None), size, page_token
        )
        runs, next_token = page_of_runs.runs, page_of_runs.next_page_token
    except InvalidFilterError as exc:  # shown above the table, with a caret under its position
        error = exc
    available = table.available_columns(runs)
    columns = chosen or table.default_columns(available)
    path = request.url.path
    query = {"filter": filter, "order": order, "col": chosen, "size": "" if size == 50 else str(size)}
    headers = [
        table.Column(
            label=label,
            key=key,
            sort_url=table.url_with(path, query, order=table.next_order(order, key)),
            sorted=table.sort_state(order, key),
        )
        for label, key in table.ATTRIBUTE_COLUMNS
    ] + [
        table.Column(
            label=c,
            key=c,
            sort_url=table.url_with(path, query, order=table.next_order(order, c)),
            sorted=table.sort_state(order, c),
        )
        for c in columns
    ]
    on_page = Counter(r.info.parent_run_id for r in runs if r.info.parent_run_id)
    # children under their parent (one more search counts the children elsewhere): loopml.ui.nested
    all_children, scan_cut = nested.child_counts(store, experiment_id, runs)
    rows = [
        {
            "run": placed.run,
            "depth": placed.depth,
            "parent": placed.parent,
            "ancestors": " ".join(placed.ancestors),
            "duration": table.format_duration(placed.run.info.duration_ms),
            "started": table.format_time(placed.run.info.start_time),
            "cells": [table.cell(placed.run, c) for c in columns],
            "children": on_page.get(placed.run.run_id, 0),
            "more_children": max(all_children.get(placed.run.run_id, 0) - on_page.get(placed.run.run_id, 0), 0),
            "more_url": table.url_with(
                path, {}, filter=f"attributes.parent_run_id = '{placed.run.run_id}'", size=query["size"] or None
            ),
        }
        for placed in nested.group(runs)
    ]
    return page(
        request,
        "runs.html",
        title=f"{experiment.name} · runs · loopml",
        experiment=experiment,
        filter=filter,
        order=order,
        error=error,
        headers=headers,
        rows=rows,
        columns=columns,
        chosen=chosen,
        choices=available + [c for c in columns if c not in available],
        next_url=None if next_token is None else table.url_with(path, query, page_token=next_token),
        first_url=table.url_with(path, query) if page_token else None,
        children_scan_cut=scan_cut,
        size=size,
    )


@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(request: Request, run_id: str) -> Response:
    store = _store(request)
    run = store.tracking.get_run(run_id)
    experiment = store.tracking.get_experiment(run.info.experiment_id)
    parent = None if run.info.parent_run_id is None else store.tracking.get_run(run.info.parent_run_id)
    children = store.tracking.search_runs(
        [run.info.experiment_id], Comparison("attribute", "parent_run_id", "=", run_id), (), MAX_CHILDREN, None
    )
    datasets = []
    for dataset_input in run.inputs:
        try:
            dataset = store.tracking.get_dataset(f"{dataset_input.name}@{dataset_input.digest}")
        except DatasetNotFoundError:
            dataset = None
        datasets.append((dataset_input, dataset))
    tags = run.tags
    code = {
        "commit": tags.get("loopml.git.commit", ""),
        "branch": tags.get("loopml.git.branch", ""),
        "dirty": tags.get("loopml.git.dirty", ""),
    }
    return page(
        request,
        "run.html",
        title=f"{run.info.name} · run · loopml",
        run=run,
        experiment=experiment,
        parent=parent,
        children=children.runs,
        more_children=children.next_page_token is not None,
        datasets=datasets,
        code=code,
        artifact_tree=artifact_tree(store.tracking.list_artifacts(run_id)),
        started=table.format_time(run.info.start_time),
        ended=table.format_time(run.info.end_time),
        duration=table.format_duration(run.info.duration_ms),
        format_number=table.format_number,
    )


@router.get("/runs/{run_id}/artifacts/download", include_in_schema=False)
def download_artifact(request: Request, run_id: str, path: str) -> Response:
    store = _store(request)
    path = check_artifact_path(path)
    entry = store.tracking.get_artifact_entry(run_id, path)
    name = path.rsplit("/", 1)[-1]
    # streamed in chunks and verified against its digest as it goes; never read whole into memory
    return StreamingResponse(
        store.artifacts.open_stream(entry.digest),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote_filename(name)}",
            "Content-Length": str(entry.size),
        },
    )


def _quote_filename(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
