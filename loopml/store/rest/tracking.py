"""The TrackingStore over HTTP: each method is one request to the loopml server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import Dataset
from loopml.entities.search import Filter, OrderBy
from loopml.entities.series import MetricBucket, MetricSeries, SeriesX
from loopml.entities.tracking import Experiment, Metric, Run, RunPage, RunStatus
from loopml.errors import InvalidValueError
from loopml.store.rest import codec
from loopml.store.rest.http import HttpSession
from loopml.store.tracking import TrackingStore


def _run(run_id: str) -> str:
    return f"/runs/{quote(str(run_id), safe='')}"


class RestTrackingStore(TrackingStore):
    """Experiments and runs kept by a loopml server."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    # -- experiments -----------------------------------------------------------------------
    def create_experiment(self, name: str) -> Experiment:
        return codec.experiment_in(self._http.call("POST", "/experiments", json_body={"name": name}))

    def get_experiment(self, experiment_id: int) -> Experiment:
        return codec.experiment_in(self._http.call("GET", f"/experiments/{int(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment:
        return codec.experiment_in(self._http.call("GET", "/experiments/by-name", params={"name": name}))

    def list_experiments(self) -> list[Experiment]:
        return [codec.experiment_in(e) for e in self._http.call("GET", "/experiments")]

    # -- runs ---------------------------------------------------------------------------------
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
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "user": user,
            "start_time": start_time,
            "parent_run_id": parent_run_id,
            "params": dict(params or {}),
            "tags": dict(tags or {}),
        }
        return codec.run_in(self._http.call("POST", "/runs", json_body=body))

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        body = {"status": RunStatus(status).value, "end_time": end_time}
        return codec.run_in(self._http.call("POST", f"{_run(run_id)}/end", json_body=body))

    def get_run(self, run_id: str) -> Run:
        return codec.run_in(self._http.call("GET", _run(run_id)))

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None,
        filter: Filter | None,
        order_by: Sequence[OrderBy],
        max_results: int,
        page_token: str | None,
    ) -> RunPage:
        body = {
            "experiment_ids": None if experiment_ids is None else list(experiment_ids),
            "filter": codec.filter_out(filter),
            "order_by": codec.order_by_out(order_by),
            "max_results": max_results,
            "page_token": page_token,
        }
        return codec.run_page_in(self._http.call("POST", "/runs/search", json_body=body, idempotent=True))

    # -- run data ---------------------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        body = {
            "metrics": [codec.metric_out(m) for m in metrics],
            "params": dict(params or {}),
            "tags": dict(tags or {}),
            "idempotency_key": idempotency_key,
        }
        self._http.call("POST", f"{_run(run_id)}/batch", json_body=body)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        points = self._http.call("GET", f"{_run(run_id)}/metrics/history", params={"key": key})
        return [codec.metric_in(p) for p in points]

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
        if max_points < 2:  # the store's own message, as the SQL backends raise it
            raise InvalidValueError(f"max_points must be 2 or more, not {max_points}.")
        params: dict[str, str | int] = {"key": key, "x": x, "max_points": max_points}
        if x_from is not None:
            params["from"] = x_from
        if x_to is not None:
            params["to"] = x_to
        data = self._http.call("GET", f"{_run(run_id)}/metrics/series", params=params)
        return MetricSeries(
            key=data["key"],
            x=data["x"],
            total=data["total"],
            x_min=data["x_min"],
            x_max=data["x_max"],
            points=tuple(codec.metric_in(p) for p in data["points"]),
            buckets=tuple(
                MetricBucket(
                    x_first=b["x_first"],
                    x_last=b["x_last"],
                    count=b["count"],
                    nan_count=b["nan_count"],
                    low=codec.float_in(b["low"]),
                    high=codec.float_in(b["high"]),
                    mean=codec.float_in(b["mean"]),
                )
                for b in data["buckets"]
            ),
        )

    # -- datasets ---------------------------------------------------------------------------------
    def log_dataset_input(self, run_id: str, dataset: Dataset, context: str) -> Dataset:
        body = {"dataset": codec.dataset_out(dataset), "context": context}
        return codec.dataset_in(self._http.call("POST", f"{_run(run_id)}/datasets", json_body=body))

    def get_dataset(self, ref: str) -> Dataset:
        return codec.dataset_in(self._http.call("GET", "/datasets/by-ref", params={"ref": ref}))

    def list_dataset_runs(self, digest: str) -> list[tuple[str, str, str]]:
        uses = self._http.call("GET", f"/datasets/{quote(digest, safe='')}/runs")
        return [(u["run_id"], u["name"], u["context"]) for u in uses]

    # -- artifact index -------------------------------------------------------------------------------
    def log_artifact_entries(self, run_id: str, entries: Sequence[ArtifactEntry], *, actor: str | None = None) -> None:
        body: dict[str, object] = {"entries": [codec.artifact_entry_out(e) for e in entries]}
        if actor is not None:
            body["actor"] = actor  # the server records the token's name instead when auth is on
        # Replaying it sets the same paths to the same blobs, so a retry is safe (and audits nothing twice).
        self._http.call("POST", f"{_run(run_id)}/artifacts", json_body=body, idempotent=True)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        entries = self._http.call("GET", f"{_run(run_id)}/artifacts", params={"prefix": prefix})
        return [codec.artifact_entry_in(e) for e in entries]

    def get_artifact_entry(self, run_id: str, path: str) -> ArtifactEntry:
        return codec.artifact_entry_in(self._http.call("GET", f"{_run(run_id)}/artifacts/entry", params={"path": path}))
