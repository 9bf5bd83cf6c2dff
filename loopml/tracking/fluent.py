"""Module-level one-liners (``loopml.log_metric``) acting on the active run.

The default client follows the ``LOOPML_*`` environment: when the settings
change (another ``LOOPML_HOME``), the next call opens the new store. Runs
started inside another run's ``with`` block become its children, which is how
sweeps are recorded without passing ``parent=`` around.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.config import Settings, get_settings
from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import Dataset
from loopml.entities.tracking import Experiment, Metric, Run, RunPage
from loopml.errors import InvalidValueError, NoActiveRunError
from loopml.tracking.client import DEFAULT_EXPERIMENT, TrackingClient
from loopml.tracking.runs import ActiveRun

if TYPE_CHECKING:
    import pandas as pd

_client_lock = threading.Lock()
_client: TrackingClient | None = None
_client_key: tuple[object, ...] | None = None
_explicit_uri: str | None = None
_experiment: str | None = None
_active: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar("loopml_active_runs", default=())


def get_tracking_client() -> TrackingClient:
    """The process-wide client for the current settings (reopened when they change)."""
    global _client, _client_key
    settings: Settings = get_settings()
    key = (_explicit_uri, settings.tracking_uri, settings.artifacts_url)
    with _client_lock:
        if _client is None or key != _client_key:
            if _client is not None:
                _client.close()
            _client = TrackingClient(tracking_uri=_explicit_uri or settings.tracking_uri)
            _client_key = key
        return _client


def set_tracking_uri(uri: str | None) -> None:
    """Point the module-level API at another store (None: back to the environment)."""
    global _explicit_uri
    _explicit_uri = uri


def set_experiment(name: str) -> Experiment:
    """Make ``name`` the experiment new runs go to, creating it if needed."""
    global _experiment
    experiment = get_tracking_client().get_or_create_experiment(name)
    _experiment = experiment.name
    return experiment


def start_run(
    name: str | None = None,
    experiment: str | int | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: ActiveRun | Run | str | None = None,
    *,
    capture: bool = True,
) -> ActiveRun:
    """Start a run and make it the active one; use it in a ``with`` block.

    ``parent`` defaults to the run active in this context, if any; a child
    run goes to its parent's experiment unless ``experiment`` says otherwise.
    """
    client = get_tracking_client()
    if parent is None:
        stack = _active.get()
        parent = stack[-1] if stack else None
    parent_id = parent if isinstance(parent, str) or parent is None else parent.run_id
    if experiment is None and parent is not None:
        # a child belongs with its parent, so searches of the parent's experiment find the sweep
        experiment = (client.get_run(parent) if isinstance(parent, str) else parent).info.experiment_id
    run = client.create_run(
        experiment if experiment is not None else (_experiment or DEFAULT_EXPERIMENT),
        name=name,
        params=params,
        tags=tags,
        parent_run_id=parent_id,
        capture=capture,
    )
    handle = ActiveRun(client, run)
    _active.set((*_active.get(), handle))
    return handle


def _forget(handle: ActiveRun) -> None:
    _active.set(tuple(h for h in _active.get() if h is not handle))


@contextlib.contextmanager
def activated(handle: ActiveRun) -> Iterator[ActiveRun]:
    """Make ``handle`` the active run inside the ``with`` block (``loopml.log_metric`` logs to it), then restore.

    For code that runs work under a run it did not start with ``start_run``: a pipeline step
    executes under its step run this way. The run is not ended on exit.
    """
    token = _active.set((*_active.get(), handle))
    try:
        yield handle
    finally:
        _active.reset(token)


def active_run() -> ActiveRun | None:
    """The innermost run started in this context and not yet ended."""
    stack = _active.get()
    return stack[-1] if stack else None


def _require_active() -> ActiveRun:
    handle = active_run()
    if handle is None:
        raise NoActiveRunError("No active run: call this inside `with loopml.start_run():`.")
    return handle


def log_metric(key: str, value: float, step: int | None = None) -> None:
    _require_active().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _require_active().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _require_active().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _require_active().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require_active().set_tags(tags)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> list[ArtifactEntry]:
    return _require_active().log_artifact(path, name)


def log_text(text: str, name: str) -> ArtifactEntry:
    return _require_active().log_text(text, name)


def log_dict(data: Mapping[str, Any] | Sequence[Any], name: str) -> ArtifactEntry:
    return _require_active().log_dict(data, name)


def log_figure(figure: Any, name: str) -> ArtifactEntry:
    return _require_active().log_figure(figure, name)


def log_dataset(data: Any, name: str, context: str = "train", **options: Any) -> Dataset:
    return _require_active().log_dataset(data, name, context, **options)


def flush() -> None:
    """Write the active run's buffered metrics (all runs' if none is active)."""
    handle = active_run()
    if handle is not None:
        handle.flush()
    else:
        from loopml.tracking.buffer import flush_all

        flush_all()


def get_run(run_id: str) -> Run:
    return get_tracking_client().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return get_tracking_client().get_metric_history(run_id, key)


def list_experiments() -> list[Experiment]:
    return get_tracking_client().list_experiments()


def search_runs(
    experiment: str | int | Sequence[str | int] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    as_frame: bool = True,
) -> pd.DataFrame | RunPage:
    """Search runs; see TrackingClient.search_runs. Defaults to the experiment set by set_experiment."""
    if experiment is None and _experiment is not None:
        experiment = _experiment
    return get_tracking_client().search_runs(experiment, filter, order_by, max_results, page_token, as_frame)


def download_artifacts(run_id: str, path: str = "", dest: str | os.PathLike[str] = ".") -> Path:
    """Copy the run's file or folder ``path`` (the whole run when empty) to ``dest``; return the local path.

    The same call as :meth:`TrackingClient.download_artifacts`. ``run_id`` may also be a
    ``runs:/<run_id>/<path>`` URI, with ``path`` left empty.
    """
    if isinstance(run_id, str) and run_id.startswith("runs:/"):
        from loopml.uris import parse_runs_uri

        parsed = parse_runs_uri(run_id)
        if path and dest == ".":
            # the 0.1 form download_artifacts(uri, dest): a run id never starts with runs:/, so this is unambiguous
            warnings.warn(
                "download_artifacts(uri, dest) is deprecated and will be removed in loopml 0.3; "
                "use download_artifacts(uri, dest=dest) or download_artifacts(run_id, path, dest).",
                DeprecationWarning,
                stacklevel=2,
            )
            path, dest = "", path
        if path:
            raise InvalidValueError(f"Give the path inside the URI or as path=, not both: {run_id!r} and {path!r}.")
        return get_tracking_client().download_artifacts(parsed.run_id, parsed.path, dest)
    return get_tracking_client().download_artifacts(run_id, path, dest)


def get_dataset(ref: str) -> Dataset:
    return get_tracking_client().get_dataset(ref)


def load_dataset(ref: str) -> Any:
    return get_tracking_client().load_dataset(ref)
