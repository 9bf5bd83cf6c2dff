"""``import_mlflow``: migrate an MLflow store (tracking server or mlruns folder) into loopml, idempotently.

What arrives: experiments (by name), runs with their params, tags, full
metric histories, start/end times, status and nesting, run artifacts, MLflow 3
logged models (kept with their source run, see ``mlflow_layout``), and
registered models with their versions, stages and aliases.

Idempotent: each imported run carries ``mlflow.import.runId`` and each
version ``mlflow.import.version``, so a second import finds them and imports
nothing twice. A run's data is read whole from the source before anything is
written for it, so a run that vanishes mid-import leaves nothing behind; it is
reported in ``ImportReport.skipped`` with every other item that could not be
imported, and the final counts compare what the source holds with what
loopml now holds.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from loopml.config import default_actor
from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.registry import MANIFEST_FILE, ModelVersion, Stage
from loopml.entities.tracking import Metric, Run, RunStatus
from loopml.errors import LoopMLError, MetricNotFoundError, ModelNotFoundError
from loopml.interop import mlflow_layout as layout
from loopml.interop.mlflow_sources import (
    MlflowSource,
    SourceGone,
    SourceLoggedModel,
    SourceRun,
    SourceVersion,
    open_source,
)
from loopml.paths import check_artifact_path
from loopml.store import Store, open_store

#: Marks a run whose import finished (a run without it was cut short by an interrupted import).
COMPLETE_TAG = "mlflow.import.complete"
KINDS = (
    "experiments",
    "runs",
    "params",
    "metric points",
    "artifacts",
    "logged models",
    "models",
    "versions",
    "aliases",
)
_STAGES = {
    "none": Stage.CANDIDATE,
    "staging": Stage.STAGING,
    "production": Stage.PRODUCTION,
    "archived": Stage.ARCHIVED,
}
_ARTIFACT_PATH = re.compile(r"/([0-9a-f]{32})/artifacts/(.+)$")
_POINTS_PER_BATCH = 5000
Progress = Callable[[str, int, int], None]


@dataclass
class Count:
    """One kind of object: how many the source holds, what happened to them, how many loopml now holds."""

    source: int = 0
    imported: int = 0
    present: int = 0
    skipped: int = 0
    in_loopml: int = 0

    @property
    def verified(self) -> bool:
        return self.in_loopml == self.source


@dataclass
class ImportReport:
    """What one ``import_mlflow`` call did; ``verified`` when loopml holds everything the source held."""

    source: str
    counts: dict[str, Count] = field(default_factory=lambda: {k: Count() for k in KINDS})
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return all(c.verified for c in self.counts.values())

    def skip(self, kind: str, why: str) -> None:
        self.counts[kind].skipped += 1
        self.skipped.append(why)


def import_mlflow(
    location: str,
    *,
    store: Store | None = None,
    token: str | None = None,
    progress: Progress | None = None,
    actor: str | None = None,
) -> ImportReport:
    """Import the MLflow store at ``location`` (``http(s)://`` tracking URI or mlruns folder) into ``store``.

    ``progress(stage, done, total)`` is called as each run and model is
    handled; ``token`` is sent as a bearer token to a tracking server.
    """
    owned = store is None
    target = open_store() if store is None else store
    source = open_source(location, token=token)
    try:
        return _Importer(source, target, progress or (lambda *_: None), actor or default_actor()).run()
    finally:
        source.close()
        if owned:
            target.close()


def _own_files(files: Iterable[tuple[str, bytes]], models: list[SourceLoggedModel]) -> Iterator[tuple[str, bytes]]:
    """``files`` less loopml's own manifests and the files of ``models`` (imported from the models themselves).

    A source that is itself a loopml server lists its logged models' files among the run's artifacts.
    """
    folders = tuple(f"{layout.model_folder(m.model_id)}/" for m in models)
    for relpath, data in files:
        if relpath.startswith(folders) or relpath.rsplit("/", 1)[-1] == MANIFEST_FILE:
            continue
        yield relpath, data


class _Importer:
    def __init__(self, source: MlflowSource, store: Store, progress: Progress, actor: str) -> None:
        self.source = source
        self.store = store
        self.progress = progress
        self.actor = actor
        self.report = ImportReport(source.description)
        self.run_map: dict[str, str] = {}  # source run id -> loopml run id
        #: source logged-model id -> (loopml run id holding its files, its loopml model id)
        self.model_runs: dict[str, tuple[str, str]] = {}
        self._refused = 0  # artifact files of the current run whose paths loopml refused

    def run(self) -> ImportReport:
        started = time.perf_counter()
        self._tracking()
        self._registry()
        self.report.seconds = time.perf_counter() - started
        return self.report

    # -- experiments and runs ------------------------------------------------------------------
    def _tracking(self) -> None:
        counts = self.report.counts
        plan = []
        for experiment in self.source.experiments():
            try:
                runs = self.source.runs(experiment.experiment_id)
                models = self.source.logged_models(experiment.experiment_id)
            except SourceGone as exc:
                self.report.skip("experiments", f"experiment {experiment.name!r}: {exc}")
                continue
            if not runs:
                continue  # an empty experiment (MLflow's "Default") is not worth creating
            counts["experiments"].source += 1
            plan.append((experiment, runs, models))
        total = sum(len(runs) for _, runs, _ in plan)
        done = 0
        for experiment, runs, models in plan:
            target, created = self._experiment(experiment.name)
            counts["experiments"].imported += created
            counts["experiments"].present += not created
            counts["experiments"].in_loopml += 1
            existing = self._imported_runs(target)
            by_run: dict[str, list[SourceLoggedModel]] = {}
            for model in models:
                by_run.setdefault(model.source_run_id, []).append(model)
            # parents first, so children can point at them
            for run in sorted(runs, key=lambda r: ("mlflow.parentRunId" in r.tags, r.start_time)):
                self._one_run(target, run, existing.get(run.run_id), by_run.get(run.run_id, []))
                done += 1
                self.progress("runs", done, total)

    def _experiment(self, name: str) -> tuple[int, bool]:
        from loopml.errors import ExperimentAlreadyExistsError, ExperimentNotFoundError

        try:
            return self.store.tracking.get_experiment_by_name(name).experiment_id, False
        except ExperimentNotFoundError:
            try:
                return self.store.tracking.create_experiment(name).experiment_id, True
            except ExperimentAlreadyExistsError:
                return self.store.tracking.get_experiment_by_name(name).experiment_id, False

    def _imported_runs(self, experiment_id: int) -> dict[str, Run]:
        found: dict[str, Run] = {}
        token = None
        while True:
            page = self.store.tracking.search_runs([experiment_id], None, (), 1000, token)
            for run in page.runs:
                source_id = run.tags.get(layout.IMPORTED_RUN_TAG)
                if source_id:
                    found[source_id] = run
            token = page.next_page_token
            if not token:
                return found

    def _one_run(
        self, experiment_id: int, run: SourceRun, existing: Run | None, models: list[SourceLoggedModel]
    ) -> None:
        counts = self.report.counts
        counts["runs"].source += 1
        counts["params"].source += len(run.params)
        counts["logged models"].source += len(models)
        if existing is not None:
            self.run_map[run.run_id] = existing.run_id
            for key, raw in existing.tags.items():
                if key.startswith(layout.LOGGED_MODEL_TAG_PREFIX):
                    source_id = json.loads(raw).get("source_model_id")
                    if source_id:
                        self.model_runs[source_id] = (existing.run_id, key[len(layout.LOGGED_MODEL_TAG_PREFIX) :])
            if existing.tags.get(COMPLETE_TAG) != "true":
                self.report.skip(
                    "runs", f"run {run.run_id}: an earlier, interrupted import left it incomplete in loopml"
                )
                return
            counts["runs"].present += 1
            counts["params"].present += len(run.params)
            counts["logged models"].present += len(models)
            self._verify(run, existing.run_id, models, present=True)
            return
        self._refused = 0
        try:
            history = [
                Metric(key, value, step, timestamp)
                for key in run.metric_keys
                for value, timestamp, step in self.source.metric_history(run, key)
            ]
            entries = self._blobs(_own_files(self.source.run_artifacts(run), models), "", run.run_id)
            model_files = [
                (model, self._blobs(_own_files(self.source.model_artifacts(model), []), "", run.run_id))
                for model in models
            ]
        except SourceGone as exc:
            self.report.skip("runs", f"run {run.run_id} ({run.name}): {exc}; nothing of it was imported")
            return
        try:
            loopml_id = self._write_run(experiment_id, run, history, entries, model_files)
        except LoopMLError as exc:
            self.report.skip("runs", f"run {run.run_id} ({run.name}): loopml refused it: {exc}")
            return
        counts["runs"].imported += 1
        counts["params"].imported += len(run.params)
        counts["metric points"].imported += len(history)
        counts["artifacts"].imported += len(entries) + sum(len(files) for _, files in model_files)
        counts["logged models"].imported += len(models)
        files_read = len(entries) + sum(len(files) for _, files in model_files) + self._refused
        self._verify(run, loopml_id, models, present=False, known=(len(history), files_read))

    def _blobs(self, files: Iterable[tuple[str, bytes]], folder: str, run_id: str) -> list[ArtifactEntry]:
        entries = []
        for relpath, data in files:
            path = f"{folder}/{relpath}" if folder else relpath
            try:
                check_artifact_path(path)
            except LoopMLError:
                self.report.skip("artifacts", f"run {run_id}: artifact {relpath!r} has a path loopml refuses")
                self._refused += 1
                continue
            entries.append(ArtifactEntry(path, self.store.artifacts.put_bytes(data), len(data)))
        return entries

    def _write_run(
        self,
        experiment_id: int,
        run: SourceRun,
        history: list[Metric],
        entries: list[ArtifactEntry],
        model_files: list[tuple[SourceLoggedModel, list[ArtifactEntry]]],
    ) -> str:
        tags = dict(run.tags)
        parent = self.run_map.get(tags.get("mlflow.parentRunId", ""))
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        tags[layout.IMPORTED_RUN_TAG] = run.run_id
        created = self.store.tracking.create_run(
            experiment_id,
            name=run.name,
            user=run.user,
            start_time=run.start_time,
            parent_run_id=parent,
            params=dict(run.params),
            tags=tags,
        )
        loopml_id = created.run_id
        self.run_map[run.run_id] = loopml_id
        for start in range(0, len(history), _POINTS_PER_BATCH):
            self.store.tracking.log_batch(loopml_id, metrics=history[start : start + _POINTS_PER_BATCH])
        records = {}
        outputs = []
        for model, files in model_files:
            # a loopml model id names its run, so the MLflow API finds it; the source id stays in the record
            model_id = layout.new_model_id(loopml_id)
            folder = layout.model_folder(model_id)
            entries = entries + [ArtifactEntry(f"{folder}/{e.path}", e.digest, e.size) for e in files]
            self.model_runs[model.model_id] = (loopml_id, model_id)
            outputs.append({"model_id": model_id, "step": 0})
            record = {
                "source_model_id": model.model_id,
                "name": model.name,
                "model_type": model.model_type,
                "status": model.status,
                "creation_timestamp_ms": model.created_at,
                "last_updated_timestamp_ms": model.created_at,
                "params": dict(model.params),
                "tags": dict(model.tags),
            }
            records[layout.model_record_tag(model_id)] = layout.encode_record(record)
        if entries:
            self.store.tracking.log_artifact_entries(loopml_id, entries, actor=self.actor)
        if outputs:
            records[layout.MODEL_OUTPUTS_TAG] = json.dumps(outputs, separators=(",", ":"))
        self.store.tracking.log_batch(loopml_id, tags={**records, COMPLETE_TAG: "true"})
        status = RunStatus(run.status) if run.status in RunStatus.__members__ else RunStatus.FINISHED
        if status.is_terminal:
            self.store.tracking.end_run(loopml_id, status, run.end_time or run.start_time)
        return loopml_id

    def _verify(
        self,
        run: SourceRun,
        loopml_id: str,
        models: list[SourceLoggedModel],
        *,
        present: bool,
        known: tuple[int, int] | None = None,
    ) -> None:
        """Add what the source holds for ``run`` (``known``: its points and files, just read) and what loopml holds."""
        counts = self.report.counts
        stored = self.store.tracking.get_run(loopml_id)
        counts["runs"].in_loopml += 1
        counts["params"].in_loopml += sum(1 for k, v in run.params.items() if stored.params.get(k) == v)
        try:
            source_points, source_files = known or self._source_size(run, models)
        except SourceGone as exc:
            self.report.skipped.append(f"run {run.run_id}: could not be re-read to verify it ({exc})")
            return
        counts["metric points"].source += source_points
        counts["artifacts"].source += source_files
        if present:
            counts["metric points"].present += source_points
            counts["artifacts"].present += source_files
        for key in run.metric_keys:
            with contextlib.suppress(MetricNotFoundError):
                counts["metric points"].in_loopml += len(self.store.tracking.get_metric_history(loopml_id, key))
        loopml_files = self.store.tracking.list_artifacts(loopml_id)
        counts["artifacts"].in_loopml += sum(1 for e in loopml_files if e.path.rsplit("/", 1)[-1] != MANIFEST_FILE)
        counts["logged models"].in_loopml += sum(1 for m in models if m.model_id in self.model_runs)

    def _source_size(self, run: SourceRun, models: list[SourceLoggedModel]) -> tuple[int, int]:
        """(metric points, artifact files) the source holds for a run, read again."""
        points = sum(len(self.source.metric_history(run, key)) for key in run.metric_keys)
        files = sum(1 for _ in _own_files(self.source.run_artifacts(run), models))
        files += sum(1 for model in models for _ in _own_files(self.source.model_artifacts(model), []))
        return points, files

    # -- registry -------------------------------------------------------------------------------
    def _registry(self) -> None:
        counts = self.report.counts
        models = self.source.registered_models()
        for i, model in enumerate(models):
            counts["models"].source += 1
            try:
                self.store.registry.get_model(model.name)
                counts["models"].present += 1
            except ModelNotFoundError:
                try:
                    self.store.registry.create_model(
                        model.name,
                        description=model.description,
                        tags=dict(model.tags),
                        require_approval=False,
                        actor=self.actor,
                    )
                except LoopMLError as exc:
                    self.report.skip("models", f"registered model {model.name!r}: loopml refused it: {exc}")
                    continue
                counts["models"].imported += 1
            counts["models"].in_loopml += 1
            try:
                versions = self.source.versions(model.name)
            except SourceGone as exc:
                self.report.skip("models", f"registered model {model.name!r}: its versions vanished ({exc})")
                continue
            imported = self._imported_versions(model.name)
            for version in versions:
                self._one_version(model.name, version, imported)
            self._aliases(model.name, model.aliases, imported)
            self.progress("models", i + 1, len(models))

    def _imported_versions(self, name: str) -> dict[int, ModelVersion]:
        found = {}
        for version in self.store.registry.list_versions(name):
            tag = version.tags.get(layout.IMPORTED_VERSION_TAG)
            if tag is not None and tag.isdigit():
                found[int(tag)] = version
        return found

    def _one_version(self, name: str, version: SourceVersion, imported: dict[int, ModelVersion]) -> None:
        count = self.report.counts["versions"]
        count.source += 1
        if version.version in imported:
            count.present += 1
            count.in_loopml += 1
            return
        where = self._version_files(version)
        if where is None:
            self.report.skip(
                "versions", f"{name} version {version.version}: its files ({version.source}) were not imported"
            )
            return
        run_id, folder = where
        try:
            layout.ensure_manifest(self.store, run_id, folder, self.actor)
            created = self.store.registry.create_version(
                name,
                run_id=run_id,
                source=f"runs:/{run_id}/{folder}",
                description=version.description,
                tags={**version.tags, layout.IMPORTED_VERSION_TAG: str(version.version)},
                actor=self.actor,
            )
            stage = _STAGES.get(version.stage.lower(), Stage.CANDIDATE)
            if stage is not Stage.CANDIDATE:
                created = self.store.registry.transition(
                    name,
                    created.version,
                    stage,
                    actor=self.actor,
                    reason="imported from MLflow",
                    archive_existing=False,
                )
        except LoopMLError as exc:
            self.report.skip("versions", f"{name} version {version.version}: loopml refused it: {exc}")
            return
        imported[version.version] = created
        count.imported += 1
        count.in_loopml += 1

    def _version_files(self, version: SourceVersion) -> tuple[str, str] | None:
        """(loopml run id, run-relative folder) holding a source version's files, or None if not imported."""
        model_id = version.model_id
        if model_id is None and version.source.startswith("models:/") and "/" not in version.source[8:]:
            model_id = version.source[8:]
        if model_id is not None:
            found = self.model_runs.get(model_id)
            return None if found is None else (found[0], layout.model_folder(found[1]))
        if version.source.startswith("runs:/"):
            source_run, _, path = version.source[6:].partition("/")
            run_id = self.run_map.get(source_run)
            return None if run_id is None or not path else (run_id, path.strip("/"))
        match = _ARTIFACT_PATH.search(version.source)
        if match is not None and match.group(1) in self.run_map:
            return self.run_map[match.group(1)], match.group(2).strip("/")
        return None

    def _aliases(self, name: str, aliases: Mapping[str, int], imported: dict[int, ModelVersion]) -> None:
        count = self.report.counts["aliases"]
        for alias, source_version in sorted(aliases.items()):
            count.source += 1
            target = imported.get(source_version)
            if target is None:
                self.report.skip("aliases", f"{name}@{alias}: version {source_version} was not imported")
                continue
            current = self.store.registry.get_version(name, target.version)
            if alias in current.aliases:
                count.present += 1
            else:
                try:
                    self.store.registry.set_alias(
                        name, alias, target.version, actor=self.actor, reason="imported from MLflow"
                    )
                except LoopMLError as exc:
                    self.report.skip("aliases", f"{name}@{alias}: loopml refused it: {exc}")
                    continue
                count.imported += 1
            count.in_loopml += 1
