"""The two sides a check compares: the current data (a window of the prediction log, or a DataFrame) and the
reference (a logged dataset, the training data of the model version found through lineage, or a DataFrame).

Current data from the log comes in two shapes: ``rows``, one row per predicted
row (the request's input columns spread out, ``prediction``, and ``label``
where feedback came), for drift, quality and performance; and ``requests``, one
row per request (``time``, ``status``, ``latency_ms``, failed ones included),
for operations. Shadow answers are left out unless the monitor watches the
shadow's version. A check that needs only ``requests`` (``operations``) reads
the window without parsing the logged inputs or reading feedback
(``read_window(..., rows=False)``): its ``rows`` stay empty and say so.

The reference through lineage: the version's run, then each parent run (a
loop retrain registers its candidate in a child run of the pipeline run) and
that parent's other children (the pipeline's steps), looking for a dataset
input whose context starts with ``train`` and whose data was stored.

Reference frames loaded from the store are kept in a small per-process cache
(:class:`ReferenceCache`), keyed by the dataset's digest and the digest of its
stored bytes: both are content hashes, so an entry never goes stale. It holds
at most ``REFERENCE_CACHE_ENTRIES`` frames and ``REFERENCE_CACHE_BYTES`` bytes
(pandas' deep memory usage), evicting the least recently used; a frame larger
than the byte bound is not kept. A worker checking many monitors of one model
version loads its training data once. Cached frames are shared: read them,
never change them in place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from loopml.entities.serving import PredictionRecord
from loopml.errors import InvalidValueError, LoopMLError, NotFoundError
from loopml.monitoring.frames import as_frame
from loopml.monitoring.spec import MAX_WINDOW, PREDICTION, Window

if TYPE_CHECKING:
    from loopml.entities.datasets import Dataset
    from loopml.entities.tracking import Run
    from loopml.tracking.client import TrackingClient

#: Columns of the flattened prediction log that are not model inputs.
LOG_COLUMNS = ("request_id", "time", "model", "version", "role", "status", "latency_ms", "row", PREDICTION, "label")
TRAINING_CONTEXTS = ("train",)  # a dataset input whose context starts with one of these is training data
CLOCK_SKEW_MS = 60_000  # records stamped up to this far ahead of "now" still count
_MAX_IDS = 5000  # request ids per feedback read
_MAX_PARENTS = 5
_FIRST_SPAN_MS = 60_000  # newest(): the first ring read back from "now"
REFERENCE_CACHE_ENTRIES = 8  # reference frames kept per process
REFERENCE_CACHE_BYTES = 256 * 2**20  # and their total deep memory usage
NOT_NEEDED = "not needed"  # Reference.source (and its figures) when no configured check compares a reference

Read = Callable[[int, int, int], list[PredictionRecord]]


@dataclass(frozen=True)
class Current:
    """The current side of a check. ``requests`` is None for a DataFrame without ``status`` and ``latency_ms``."""

    rows: pd.DataFrame
    requests: pd.DataFrame | None
    features: list[str]
    source: str  # "log" or "frame"
    since: int | None = None
    until: int | None = None
    version: int | None = None  # the version that answered most rows (None for a frame without "version")
    rows_read: bool = True  # False: only the requests were read (the checks need no input, prediction or label)

    @property
    def empty(self) -> bool:
        return len(self.rows) == 0 and (self.requests is None or len(self.requests) == 0)

    def describe(self) -> dict[str, Any]:
        requests = None if self.requests is None else len(self.requests)
        figures = {"source": self.source, "since": self.since, "until": self.until, "n_rows": len(self.rows),
                   "n_requests": requests, "version": self.version,
                   "n_labelled": int(self.rows["label"].notna().sum()) if "label" in self.rows else 0}  # fmt: skip
        if not self.rows_read:  # counting rows and labels means parsing every input and reading feedback
            figures.update(n_rows=None, n_labelled=None, rows=NOT_NEEDED)
        return figures


@dataclass(frozen=True)
class Reference:
    """The reference side: the frame, where it came from (``frame``, ``dataset``, ``lineage``) and its dataset."""

    frame: pd.DataFrame
    source: str
    dataset: str | None = None  # name@digest-prefix
    run_id: str | None = None

    @classmethod
    def not_needed(cls) -> Reference:
        """The stand-in when no configured check compares against a reference (nothing is loaded)."""
        return cls(pd.DataFrame(), NOT_NEEDED)

    @property
    def needed(self) -> bool:
        return self.source != NOT_NEEDED

    def describe(self) -> dict[str, Any]:
        if not self.needed:
            return {"source": NOT_NEEDED, "dataset": None, "run_id": None, "n_rows": None}
        return {"source": self.source, "dataset": self.dataset, "run_id": self.run_id, "n_rows": len(self.frame)}


# -- current data ----------------------------------------------------------------------------------------


def read_window(
    tracking: TrackingClient, model: str, window: Window, *, version: int | None, now_ms: int, rows: bool = True
) -> Current:
    """The window of ``model``'s prediction log (of ``version`` only when given), with feedback labels joined;
    with ``rows=False`` only the requests (no input parsed, no feedback read)."""
    from loopml.serving.client import COLUMNS, predictions_frame

    since, until = window.bounds(now_ms)
    hi = until if until is not None else now_ms + CLOCK_SKEW_MS
    lo = since if since is not None else 0
    # a shadow answers copies of requests: it is part of the current data only when its version is watched
    roles: list[str | None] = [None] if version is not None else ["main", "canary"]
    records: list[PredictionRecord] = []
    for role in roles:
        read = _reader(tracking, model, version, role)
        records.extend(read(lo, hi, MAX_WINDOW) if window.last is None else newest(read, window.last, lo, hi))
    if len(roles) > 1:
        records.sort(key=lambda r: r.time)
        if window.last is not None:
            records = records[-window.last :]
    if rows:
        labels = _labels(tracking, [r.request_id for r in records])
        flat = predictions_frame(records, flatten=True, labels=labels)
    else:
        flat = pd.DataFrame(columns=[*COLUMNS[:7], "row", PREDICTION])
    requests = pd.DataFrame(
        {
            "time": pd.to_datetime([r.time for r in records], unit="ms", utc=True),
            "version": [r.version for r in records],
            "role": [r.role for r in records],
            "status": [r.status for r in records],
            "latency_ms": [r.latency_ms for r in records],
        }
    )
    main_version = int(requests["version"].value_counts().index[0]) if len(requests) else version
    return Current(
        rows=flat,
        requests=requests,
        features=[c for c in flat.columns if c not in LOG_COLUMNS],
        source="log",
        since=records[0].time if records else since,
        until=records[-1].time + 1 if records else until,
        version=main_version,
        rows_read=rows,
    )


def _reader(tracking: TrackingClient, model: str, version: int | None, role: str | None) -> Read:
    def read(lo: int, hi: int, limit: int) -> list[PredictionRecord]:
        return tracking.store.serving.read_predictions(
            model, since=lo, until=hi, version=version, role=role, max_results=limit
        )

    return read


def from_frame(frame: Any) -> Current:
    """A DataFrame given as the current data: its non-log columns are the features; ``prediction``, ``label``,
    ``time``, ``status`` and ``latency_ms`` are used where present."""
    frame = as_frame(frame, "current")
    requests = frame if {"status", "latency_ms"} <= set(frame.columns) else None
    version = None
    if "version" in frame.columns and frame["version"].notna().any():
        most = frame["version"].value_counts().index[0]
        try:
            version = int(most)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(
                f"Column 'version' of the current data names the model version that answered each row (a number "
                f"such as 3), got {most!r}. Rename the column if it means something else."
            ) from exc
    return Current(frame, requests, [c for c in frame.columns if c not in LOG_COLUMNS], "frame", version=version)


def newest(read: Read, k: int, lo: int, hi: int) -> list[PredictionRecord]:
    """The newest ``k`` records with ``lo <= time < hi``, oldest first, from a reader that returns the *oldest*
    ``limit`` records of a time range (what the store offers).

    Reads rings going back from ``hi`` (1 minute, then 8 times wider each step), each only for the records
    still missing, and stops once it holds ``k``; the first time a ring is empty it asks once for all the
    rest of the range (a quiet or empty log is answered in two reads, not one per ring back to ``lo``; when
    the rest holds too many, the rings go on). A ring holding more records than are missing is bisected.
    Each read asks for at most ``k + 1`` records, so a window whose ``k`` records fall in the last minute
    costs one read.
    """
    span, edge, probed = _FIRST_SPAN_MS, hi, False
    upper: list[PredictionRecord] = []
    while len(upper) < k and edge > lo:
        need = k - len(upper)
        start = max(lo, edge - span)
        batch = read(start, edge, need + 1)
        if len(batch) > need:
            return _newest_in(read, need, start, edge, known_more=True) + upper
        upper = batch + upper
        edge, span = start, span * 8
        if not batch and not probed and edge > lo:  # a quiet stretch: maybe all that is left fits in one read
            probed = True
            rest = read(lo, edge, need + 1)
            if len(rest) <= need:
                return rest + upper
    return upper


def _newest_in(read: Read, k: int, lo: int, hi: int, *, known_more: bool = False) -> list[PredictionRecord]:
    """The newest ``k`` records of ``[lo, hi)``; ``known_more``: the range is known to hold more than ``k``."""
    if k <= 0 or hi <= lo:
        return []
    if not known_more:
        batch = read(lo, hi, k + 1)
        if len(batch) <= k:
            return batch
    if hi - lo == 1:  # more than k records in one millisecond: read them all, keep the last k
        return read(lo, hi, MAX_WINDOW)[-k:]
    middle = (lo + hi) // 2
    top = _newest_in(read, k, middle, hi)
    if len(top) >= k:
        return top
    return _newest_in(read, k - len(top), lo, middle) + top


def _labels(tracking: TrackingClient, request_ids: Sequence[str]) -> dict[str, Any]:
    """The latest feedback label of each request (feedback comes oldest first, so the last one wins)."""
    labels: dict[str, Any] = {}
    unique = list(dict.fromkeys(request_ids))
    for start in range(0, len(unique), _MAX_IDS):
        chunk = unique[start : start + _MAX_IDS]
        for item in tracking.store.serving.read_feedback(request_ids=chunk, max_results=1_000_000):
            labels[item.request_id] = item.label
    return labels


# -- reference -------------------------------------------------------------------------------------------


def load_reference(tracking: TrackingClient, reference: Any) -> Reference:
    """A DataFrame (or dict of columns) as it is, or a dataset reference ``name@<sha256 prefix>`` loaded from the store."""
    if isinstance(reference, str):
        dataset = tracking.get_dataset(reference)
        return Reference(_dataset_frame(tracking, dataset), "dataset", dataset.ref)
    return Reference(as_frame(reference, "reference"), "frame")


def lineage_reference(tracking: TrackingClient, model: str, version: int) -> Reference:
    """The training data of ``model`` version ``version``, found through its run (see the module docstring)."""
    from loopml.registry.client import RegistryClient

    model_version = RegistryClient(tracking).get_model_version(model, version)
    run = tracking.get_run(model_version.run_id)
    seen: list[str] = []
    for candidate in _lineage_runs(tracking, run):
        for item in candidate.inputs:
            if not item.context.lower().startswith(TRAINING_CONTEXTS):
                continue
            dataset = tracking.get_dataset(item.digest)
            if dataset.storage_digest is None:
                seen.append(f"{dataset.ref} (logged without its data)")
                continue
            return Reference(_dataset_frame(tracking, dataset), "lineage", dataset.ref, candidate.run_id)
    found = f" It found {', '.join(seen)}; log it with store_data=True." if seen else ""
    raise NotFoundError(
        f"No training dataset found for {model} version {version}: neither its run {run.run_id[:8]} nor its parent "
        f"runs logged a dataset with context 'train' and its data.{found} Log one in the training run "
        "(run.log_dataset(X_train, 'train-data', context='train')), give the monitor reference='name@sha', or pass "
        "loopml.run_monitor(monitor, reference=dataframe)."
    )


def _lineage_runs(tracking: TrackingClient, run: Run) -> list[Run]:
    """The run, then each ancestor followed by its other children (a pipeline's step runs)."""
    runs, seen = [run], {run.run_id}
    parent_id = run.info.parent_run_id
    for _ in range(_MAX_PARENTS):
        if not parent_id or parent_id in seen:
            break
        parent = tracking.get_run(parent_id)
        runs.append(parent)
        seen.add(parent_id)
        page = tracking.search_runs(
            filter=f"attributes.parent_run_id = '{parent_id}'", max_results=1000, as_frame=False
        )
        for child in page:
            if child.run_id not in seen:
                runs.append(child)
                seen.add(child.run_id)
        parent_id = parent.info.parent_run_id
    return runs


class ReferenceCache:
    """Reference frames by what identifies their content (dataset digest, stored bytes' digest, format),
    least recently used first out; at most ``entries`` frames and ``max_bytes`` bytes. Thread-safe."""

    def __init__(self, *, entries: int = REFERENCE_CACHE_ENTRIES, max_bytes: int = REFERENCE_CACHE_BYTES) -> None:
        self.entries, self.max_bytes = entries, max_bytes
        self._frames: OrderedDict[tuple[str, ...], tuple[pd.DataFrame, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> pd.DataFrame | None:
        with self._lock:
            hit = self._frames.get(key)
            if hit is None:
                return None
            self._frames.move_to_end(key)
            return hit[0]

    def put(self, key: tuple[str, ...], frame: pd.DataFrame) -> None:
        size = int(frame.memory_usage(index=True, deep=True).sum())
        if size > self.max_bytes or self.entries <= 0:
            return
        with self._lock:
            self._frames[key] = (frame, size)
            self._frames.move_to_end(key)
            while len(self._frames) > self.entries or self.nbytes > self.max_bytes:
                self._frames.popitem(last=False)

    @property
    def nbytes(self) -> int:
        return sum(size for _, size in self._frames.values())

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()


reference_cache = ReferenceCache()


def _dataset_frame(tracking: TrackingClient, dataset: Dataset) -> pd.DataFrame:
    """The dataset's stored data as a DataFrame, from :data:`reference_cache` when this process loaded it before."""
    key = None
    if dataset.storage_digest is not None:
        key = (dataset.digest, dataset.storage_digest, str(dataset.storage_format))
        cached = reference_cache.get(key)
        if cached is not None:
            return cached
    data = tracking.load_dataset(dataset.digest)
    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "ndim") and data.ndim in (1, 2):
        frame = pd.DataFrame(data).rename(columns=str)
    else:
        raise InvalidValueError(
            f"Dataset {dataset.ref} is not tabular (a stored file); it cannot be a monitoring reference."
        )
    if key is not None:
        reference_cache.put(key, frame)
    return frame


def score_reference(tracking: TrackingClient, model: str, version: int, frame: pd.DataFrame) -> pd.Series:
    """The model version's predictions on the reference features (for prediction drift), cached per process."""
    digest = int(pd.util.hash_pandas_object(frame, index=False).sum())
    key = (id(tracking.store), model, version, tuple(frame.columns), digest)
    cached = _scores.get(key)
    if cached is not None:
        return cached
    from loopml.registry.client import RegistryClient

    try:
        loaded = RegistryClient(tracking).load_model(f"models:/{model}/{version}")
        predicted = loaded.predict(frame)
    except LoopMLError:
        raise
    except Exception as exc:  # a model that cannot score its own training data: say so, do not guess
        raise InvalidValueError(f"{model} version {version} could not score the reference: {exc}") from exc
    series = pd.Series(list(predicted) if getattr(predicted, "ndim", 1) == 1 else predicted.tolist(), name=PREDICTION)
    if len(_scores) > 16:
        _scores.clear()
    _scores[key] = series
    return series


_scores: dict[tuple[Any, ...], pd.Series] = {}
