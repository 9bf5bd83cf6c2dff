"""TrackingClient: the one object through which every tracking call goes.

The module-level functions (``loopml.log_metric``) and the run handle
(``with loopml.start_run() as run``) are thin layers over it; so are the CLI
and, later, the server. It never reads before it writes: a metric point goes
to a buffer, a param straight into one transaction.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from loopml.config import default_actor, os_user
from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import Dataset
from loopml.entities.tracking import Experiment, Metric, Run, RunPage, RunStatus
from loopml.errors import ExperimentNotFoundError, InvalidValueError, SymlinkSkippedWarning
from loopml.names import check_run_name
from loopml.paths import check_artifact_path, join_inside
from loopml.store import Store, open_store
from loopml.timestamps import now_ms
from loopml.tracking.names import random_run_name
from loopml.tracking.validation import check_key, check_mapping

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EXPERIMENT = "Default"
SYSTEM_TAG_PREFIX = "loopml."


class TrackingClient:
    """Experiments, runs, metrics, artifacts and datasets in one store.

    Example:
        >>> client = TrackingClient()          # the store from LOOPML_* settings
        >>> run = client.create_run("iris")    # doctest: +SKIP
    """

    def __init__(self, store: Store | None = None, *, tracking_uri: str | None = None) -> None:
        self._store = store
        self._tracking_uri = tracking_uri

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self._tracking_uri)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- experiments ------------------------------------------------------------------
    def create_experiment(self, name: str) -> Experiment:
        return self.store.tracking.create_experiment(_experiment_name(name))

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
            return self.store.tracking.get_experiment(name_or_id)
        return self.store.tracking.get_experiment_by_name(_experiment_name(name_or_id))

    def get_or_create_experiment(self, name: str) -> Experiment:
        try:
            return self.store.tracking.get_experiment_by_name(_experiment_name(name))
        except ExperimentNotFoundError:
            from loopml.errors import ExperimentAlreadyExistsError

            try:
                return self.store.tracking.create_experiment(name)
            except ExperimentAlreadyExistsError:  # another process created it meanwhile
                return self.store.tracking.get_experiment_by_name(name)

    def list_experiments(self) -> list[Experiment]:
        return self.store.tracking.list_experiments()

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment: str | int = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        capture: bool = True,
    ) -> Run:
        """Start a RUNNING run, recording the code and environment that produced it.

        With ``capture`` the git commit, branch, dirty flag and remote, the
        command line, Python, platform and host become ``loopml.*`` tags, and
        the installed packages (and the diff, when the work tree is dirty)
        become artifacts under ``loopml/``.
        """
        if isinstance(experiment, int) and not isinstance(experiment, bool):
            experiment_id = self.store.tracking.get_experiment(experiment).experiment_id
        else:
            experiment_id = self.get_or_create_experiment(_experiment_name(experiment)).experiment_id
        if name is not None:
            check_run_name(name)
        clean_params = check_mapping(params, "Param")
        clean_tags = check_mapping(tags, "Tag")
        captured_files: dict[str, bytes] = {}
        if capture:
            system_tags, captured_files = _capture()
            clean_tags = {**system_tags, **clean_tags}
        run = self.store.tracking.create_run(
            experiment_id,
            name=name or random_run_name(),
            user=os_user(),
            start_time=now_ms(),
            parent_run_id=parent_run_id,
            params=clean_params,
            tags=clean_tags,
        )
        if captured_files:
            self.log_artifact_bytes(run.run_id, captured_files)
        return run

    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED) -> Run:
        return self.store.tracking.end_run(run_id, RunStatus(status), now_ms())

    def get_run(self, run_id: str) -> Run:
        return self.store.tracking.get_run(_run_id(run_id))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.store.tracking.log_batch(run_id, params=check_mapping(params, "Param"))

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.store.tracking.log_batch(run_id, tags=check_mapping(tags, "Tag"))

    def log_metric_points(self, run_id: str, points: Sequence[Metric]) -> None:
        """Write already validated points now (the run handle buffers instead)."""
        self.store.tracking.log_batch(run_id, metrics=points)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.tracking.get_metric_history(_run_id(run_id), check_key(key, "Metric"))

    @overload
    def search_runs(
        self,
        experiment: str | int | Sequence[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        as_frame: Literal[True] = True,
    ) -> pd.DataFrame: ...
    @overload
    def search_runs(
        self,
        experiment: str | int | Sequence[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        *,
        as_frame: Literal[False],
    ) -> RunPage: ...
    @overload
    def search_runs(
        self,
        experiment: str | int | Sequence[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        as_frame: bool = True,
    ) -> pd.DataFrame | RunPage: ...
    def search_runs(
        self,
        experiment: str | int | Sequence[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        as_frame: bool = True,
    ) -> pd.DataFrame | RunPage:
        """Runs matching ``filter`` (``"metrics.acc > 0.9 and params.model = 'rf'"``).

        ``experiment`` is a name, an id or a list of them; None searches every
        experiment. ``as_frame`` returns a DataFrame (``df.attrs["next_page_token"]``
        holds the token of the next page), otherwise a RunPage of Run objects.
        """
        from loopml.tracking.search import parse_filter, parse_order_by

        parsed_filter = parse_filter(filter)
        parsed_order = parse_order_by(order_by)
        experiment_ids = self._experiment_ids(experiment)
        page = self.store.tracking.search_runs(experiment_ids, parsed_filter, parsed_order, max_results, page_token)
        if not as_frame:
            return page
        from loopml.tracking.frames import runs_to_frame

        frame = runs_to_frame(page.runs)
        frame.attrs["next_page_token"] = page.next_page_token
        return frame

    def _experiment_ids(self, experiment: str | int | Sequence[str | int] | None) -> list[int] | None:
        if experiment is None:
            return None
        items: Iterable[str | int] = [experiment] if isinstance(experiment, (str, int)) else experiment
        return [self.get_experiment(item).experiment_id for item in items]

    # -- artifacts ------------------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str], name: str | None = None) -> list[ArtifactEntry]:
        """Store a file, or every file of a folder, under the run; return the entries.

        A file lands at ``name`` (default: its file name); a folder's files land
        under ``name`` (default: the folder's name) with their relative paths.
        Symbolic links inside a folder are skipped, with a warning naming them:
        a link could point anywhere on the disk (``~/.ssh``), and following it
        would upload what the folder never held.
        """
        source = Path(local_path)
        if not source.exists():
            raise InvalidValueError(f"Cannot log artifact {str(source)!r}: no such file or folder.")
        if source.is_file():
            target = check_artifact_path(name if name is not None else source.name)
            digest, size = self.store.artifacts.put_file(str(source))
            entries = [ArtifactEntry(target, digest, size)]
        else:
            base = check_artifact_path(name if name is not None else source.name, folder=True)
            files, links = _folder_files(source)
            if links:
                shown = ", ".join(links[:5]) + (f" and {len(links) - 5} more" if len(links) > 5 else "")
                warnings.warn(
                    f"log_artifact skipped {len(links)} symbolic link(s) in {source.name!r}: {shown}. "
                    "Copy the files they point to into the folder to log them.",
                    SymlinkSkippedWarning,
                    stacklevel=2,
                )
            entries = []
            for relative in files:
                target = check_artifact_path(f"{base}/{relative}" if base else relative)
                digest, size = self.store.artifacts.put_file(str(source / relative))
                entries.append(ArtifactEntry(target, digest, size))
        self.store.tracking.log_artifact_entries(run_id, entries, actor=default_actor())
        return entries

    def log_artifact_bytes(self, run_id: str, files: Mapping[str, bytes]) -> list[ArtifactEntry]:
        """Store in-memory files under the run: ``{"path/in/run": b"..."}``."""
        entries = []
        for path, data in files.items():
            target = check_artifact_path(path)
            entries.append(ArtifactEntry(target, self.store.artifacts.put_bytes(data), len(data)))
        self.store.tracking.log_artifact_entries(run_id, entries, actor=default_actor())
        return entries

    def log_text(self, run_id: str, text: str, name: str) -> ArtifactEntry:
        if not isinstance(text, str):
            raise InvalidValueError(f"log_text needs a string, got {type(text).__name__}.")
        return self.log_artifact_bytes(run_id, {name: text.encode("utf-8")})[0]

    def log_dict(self, run_id: str, data: Mapping[str, Any] | Sequence[Any], name: str) -> ArtifactEntry:
        """Store ``data`` as JSON (YAML when ``name`` ends in .yaml/.yml and PyYAML is installed)."""
        if name.endswith((".yaml", ".yml")):
            try:
                import yaml

                text = yaml.safe_dump(data, sort_keys=False)
            except ImportError as exc:
                raise InvalidValueError("Writing YAML needs PyYAML: pip install pyyaml, or use a .json name.") from exc
        else:
            try:
                text = json.dumps(data, indent=2, default=_json_default)
            except (TypeError, ValueError) as exc:
                raise InvalidValueError(f"log_dict cannot serialise {name!r} as JSON: {exc}") from exc
        return self.log_text(run_id, text, name)

    def log_figure(self, run_id: str, figure: Any, name: str) -> ArtifactEntry:
        """Store a matplotlib figure as a PNG (``name`` should end in .png)."""
        if not hasattr(figure, "savefig"):
            raise InvalidValueError(f"log_figure needs a matplotlib Figure, got {type(figure).__name__}.")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return self.log_artifact_bytes(run_id, {name: buffer.getvalue()})[0]

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        return self.store.tracking.list_artifacts(_run_id(run_id), check_artifact_path(path, folder=True))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The verified bytes of one artifact file."""
        entry = self.store.tracking.get_artifact_entry(_run_id(run_id), check_artifact_path(path))
        return self.store.artifacts.get_bytes(entry.digest)

    def download_artifacts(self, run_id: str, path: str = "", dest: str | os.PathLike[str] = ".") -> Path:
        """Copy a file or folder of the run to ``dest``; return the local path."""
        from loopml.errors import ArtifactNotFoundError

        clean = check_artifact_path(path, folder=True)
        entries = self.store.tracking.list_artifacts(_run_id(run_id), clean)
        if not entries:
            raise ArtifactNotFoundError(f"Run {run_id} has no artifact {clean!r}.")
        # Every target goes through join_inside: an index entry that slipped past the store's path
        # check (an old database, a hostile server) can still not write outside ``dest``.
        dest_root = Path(dest)
        if len(entries) == 1 and entries[0].path == clean:
            target = join_inside(dest_root, clean.rsplit("/", 1)[-1])
            self.store.artifacts.download(entries[0].digest, str(target))
            return target
        base = join_inside(dest_root, clean.rsplit("/", 1)[-1])
        for entry in entries:
            relative = entry.path[len(clean) :].removeprefix("/") if clean else entry.path
            self.store.artifacts.download(entry.digest, str(join_inside(base, relative)))
        return base

    # -- datasets --------------------------------------------------------------------------------
    def log_dataset(
        self,
        run_id: str,
        data: Any,
        name: str,
        context: str = "train",
        *,
        ignore_row_order: bool = False,
        store_data: bool = True,
    ) -> Dataset:
        """Record ``data`` (DataFrame, array or file) as an input of the run, by content hash."""
        from loopml.tracking.datasets import prepare_dataset

        check_key(name, "Dataset name")
        check_key(context, "Dataset context")
        prepared = prepare_dataset(data, ignore_row_order=ignore_row_order, store_data=store_data)
        storage_digest = None
        if prepared.payload is not None:
            storage_digest = self.store.artifacts.put_bytes(prepared.payload)
        dataset = Dataset(
            digest=prepared.digest,
            name=name,
            source=prepared.source,
            n_rows=prepared.n_rows,
            schema=prepared.schema,
            profile=prepared.profile,
            storage_digest=storage_digest,
            storage_format=prepared.payload_format if storage_digest else None,
            created_at=now_ms(),
        )
        logged = self.store.tracking.log_dataset_input(run_id, dataset, context)
        self._tag_feature_views(run_id, data)
        return logged

    def _tag_feature_views(self, run_id: str, data: Any) -> None:
        """Tag the run ``loopml.feature_view.<view>`` = version(s) when ``data`` came from the feature store.

        ``get_historical_features`` leaves ``{view: version}`` in ``attrs["loopml.feature_views"]``;
        the tags let lineage reach the definitions and let ``apply_features`` find the models using a view.
        """
        views = getattr(data, "attrs", {}).get("loopml.feature_views") if hasattr(data, "attrs") else None
        if not isinstance(views, Mapping) or not views:
            return
        tags = self.get_run(run_id).tags
        new: dict[str, str] = {}
        for view, version in views.items():
            key = f"loopml.feature_view.{view}"
            known = [v for v in str(tags.get(key, "")).split(",") if v]
            if str(version) not in known:
                known.append(str(version))
            new[key] = ",".join(known)
        self.set_tags(run_id, new)

    def get_dataset(self, ref: str) -> Dataset:
        return self.store.tracking.get_dataset(ref)

    def load_dataset(self, ref: str) -> Any:
        """The stored data of a dataset: a DataFrame, an array, or the file's bytes."""
        dataset = self.get_dataset(ref)
        if dataset.storage_digest is None:
            raise InvalidValueError(f"Dataset {dataset.ref} was logged without its data (store_data=False).")
        payload = self.store.artifacts.get_bytes(dataset.storage_digest)
        if dataset.storage_format == "parquet":
            import pandas as pd

            return pd.read_parquet(io.BytesIO(payload))
        if dataset.storage_format == "npy":
            import numpy as np

            return np.load(io.BytesIO(payload), allow_pickle=False)
        return payload


def _experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(f"Experiment name must be a non-empty string, got {name!r}.")
    if len(name) > 256:
        raise InvalidValueError(f"Experiment name is {len(name)} characters; the limit is 256.")
    return name


def _run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id:
        raise InvalidValueError(f"Run id must be a non-empty string, got {run_id!r}.")
    return run_id



def _folder_files(folder: Path) -> tuple[list[str], list[str]]:
    """The regular files under ``folder`` (relative posix paths, sorted) and the symbolic links skipped.

    Links are never followed, to files or to folders, so what is logged is what the folder holds.
    """
    files: list[str] = []
    links: list[str] = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        here = Path(top)
        for entry in [*dirs, *names]:
            path = here / entry
            if path.is_symlink():
                links.append(path.relative_to(folder).as_posix())
            elif entry in names and path.is_file():
                files.append(path.relative_to(folder).as_posix())
    return sorted(files), sorted(links)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _capture() -> tuple[dict[str, str], dict[str, bytes]]:
    """System tags and files describing the code and environment of a new run."""
    from loopml.tracking.capture import capture_environment, capture_git, installed_packages

    tags: dict[str, str] = {}
    files: dict[str, bytes] = {}
    env = capture_environment()
    tags["loopml.source.command"] = env["command"][:8000]
    tags["loopml.source.cwd"] = env["cwd"]
    tags["loopml.env.python"] = f"{env['python.implementation']} {env['python.version']}"
    tags["loopml.env.platform"] = env["platform"]
    tags["loopml.env.host"] = env["host"]
    files["loopml/environment/requirements.txt"] = installed_packages().encode("utf-8")
    git = capture_git()
    if git is not None:
        tags["loopml.git.commit"] = git.commit
        tags["loopml.git.dirty"] = str(git.dirty).lower()
        if git.branch:
            tags["loopml.git.branch"] = git.branch
        if git.remote:
            tags["loopml.git.remote"] = git.remote
        if git.dirty and git.diff:
            files["loopml/code/diff.patch"] = git.diff.encode("utf-8")
    return tags, files
