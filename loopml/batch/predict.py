"""``batch_predict``: score a parquet dataset with a registered model and write the predictions beside it.

The model URI is resolved once (``models:/churn@champion`` -> version 7) and that version is what
every file is scored with, even if the alias moves meanwhile. The output keeps the input's layout:
each input file ``day=2026-11-01/part-0.parquet`` gives ``day=2026-11-01/part-0.parquet`` under the
destination, with the input columns and a ``prediction`` column. Lineage is one tracking run in the
experiment ``batch-predictions``: the model version, the sha256 of the input (every file's bytes, in
path order), of the output, the row count, and the source and destination. With ``log_predictions``
the predictions also go to the prediction log (one record per ``LOG_CHUNK`` rows, as a served
request of that many rows would be), so monitors watch batch scores like live ones.

``runner="ray"`` scores the files as Ray tasks on a pool of actors, each of which loads the model
once and keeps it: a Ray Data ``map_batches`` per file with an actor class, so the model is loaded
once per worker, not once per batch. Sources and destinations are local folders or any fsspec URL
(``s3://bucket/prefix``).
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidValueError, NotFoundError
from loopml.paths import check_artifact_path
from loopml.uris import parse_models_uri

if TYPE_CHECKING:
    import pandas as pd

    from loopml.entities.registry import ModelVersion
    from loopml.tracking.client import TrackingClient

RUNNERS = ("local", "ray")
EXPERIMENT = "batch-predictions"
#: rows per prediction-log record when batch scores are logged
LOG_CHUNK = 100


@dataclass(frozen=True)
class BatchResult:
    """What one batch scoring did: the version used, the rows and files scored, the lineage run and digests."""

    model: str
    version: int
    rows: int
    files: tuple[str, ...]
    input_sha256: str
    output_sha256: str
    destination: str
    run_id: str
    logged: int


def _fs(url: str) -> tuple[Any, str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/")


def _input_files(fs: Any, root: str) -> list[str]:
    """The parquet files under ``root`` (or ``root`` itself), relative to it, in path order."""
    if fs.isfile(root):
        return [posixpath.basename(root)]
    found = sorted(
        posixpath.relpath(path, root)
        for path in fs.find(root)
        if path.endswith(".parquet") and not posixpath.basename(path).startswith(("_", "."))
    )
    if not found:
        raise NotFoundError(f"No parquet files under the batch source {root!r}.")
    for relative in found:
        check_artifact_path(relative)  # each becomes an output path: no '..', no absolute parts
    return found


def _score_frame(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    import numpy as np

    predictions = np.asarray(model.predict(frame))
    scored = frame.copy()
    scored["prediction"] = predictions.tolist() if predictions.ndim > 1 else predictions
    return scored


def _read(fs: Any, path: str) -> tuple[pd.DataFrame, bytes]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    with fs.open(path, "rb") as handle:
        data = handle.read()
    return pq.read_table(io.BytesIO(data)).to_pandas(), data


def _write(fs: Any, path: str, frame: pd.DataFrame) -> bytes:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    data = sink.getvalue()
    fs.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
    with fs.open(path, "wb") as handle:
        handle.write(data)
    return data


class _Scorer:
    """Loads the model once (per process or Ray actor) and scores whole files with it."""

    def __init__(self, tracking_uri: str | None, model_uri: str) -> None:
        from loopml.registry.client import RegistryClient
        from loopml.store import open_store
        from loopml.tracking.client import TrackingClient

        self.model = RegistryClient(TrackingClient(open_store(tracking_uri))).load_model(model_uri)

    def score(self, source: str, destination: str, relative: str) -> tuple[str, int, str, str]:
        """Score one file; its relative path, rows, and the sha256 of the input and output bytes."""
        in_fs, in_root = _fs(source)
        out_fs, out_root = _fs(destination)
        path = in_root if in_fs.isfile(in_root) else posixpath.join(in_root, relative)
        frame, raw = _read(in_fs, path)
        written = _write(out_fs, posixpath.join(out_root, relative), _score_frame(self.model, frame))
        return relative, len(frame), hashlib.sha256(raw).hexdigest(), hashlib.sha256(written).hexdigest()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ray Data's entry point: a batch of ``(source, destination, relative)`` rows, scored file by file."""
        done = [self.score(s, d, r) for s, d, r in zip(batch["source"], batch["destination"], batch["relative"],
                                                         strict=True)]  # fmt: skip
        return {"relative": [x[0] for x in done], "rows": [x[1] for x in done], "input_sha256": [x[2] for x in done],
                "output_sha256": [x[3] for x in done]}  # fmt: skip


def _on_ray(tracking_uri: str | None, model_uri: str, source: str, destination: str, files: list[str],
            workers: int) -> list[tuple[str, int, str, str]]:  # fmt: skip
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    items = [{"source": source, "destination": destination, "relative": f} for f in files]
    with warnings.catch_warnings():  # Ray Data's own context warns about its own deprecated defaults
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\..*")
        scored = ray.data.from_items(items).map_batches(
            _Scorer, fn_constructor_args=(tracking_uri, model_uri), batch_size=1,
            concurrency=min(workers, len(files)), num_cpus=1, batch_format="numpy",
        )  # fmt: skip
        rows = scored.take_all()
    done = {r["relative"]: (str(r["relative"]), int(r["rows"]), str(r["input_sha256"]), str(r["output_sha256"]))
            for r in rows}  # fmt: skip
    return [done[f] for f in files]


def batch_predict(
    model_uri: str,
    source: str,
    destination: str,
    *,
    runner: str = "local",
    workers: int = 2,
    log_predictions: bool = False,
    client: TrackingClient | None = None,
) -> BatchResult:
    """Score every parquet file under ``source`` with ``model_uri``; write them, scored, under ``destination``.

    Args:
        model_uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``; resolved once.
        source: a parquet file or a folder of them (hive partitions kept), local or an fsspec URL.
        destination: where the scored files go, at the same relative paths (an empty or new folder).
        runner: ``local`` (this process) or ``ray`` (Ray Data, the model loaded once per worker).
        workers: Ray workers (CPUs) when ``runner="ray"``.
        log_predictions: also write the predictions to the prediction log of the model.

    Returns:
        A :class:`BatchResult` with the version used, rows, digests and the lineage run.

    Raises:
        InvalidValueError: a bad runner or worker count, or a destination that already holds files.
        NotFoundError: no parquet files under ``source``; ModelNotFoundError / AliasNotFoundError.
    """
    from loopml.registry.client import RegistryClient
    from loopml.tracking import fluent

    if runner not in RUNNERS:
        raise InvalidValueError(f"runner must be one of {', '.join(RUNNERS)}, got {runner!r}.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers must be a whole number from 1, got {workers!r}.")
    tracking = client or fluent.get_tracking_client()
    parsed = parse_models_uri(model_uri)
    version = RegistryClient(tracking).resolve(parsed)
    pinned = f"models:/{version.name}/{version.version}"  # an alias that moves meanwhile changes nothing here
    in_fs, in_root = _fs(source)
    if not in_fs.exists(in_root):
        raise NotFoundError(f"The batch source {source!r} does not exist.")
    files = _input_files(in_fs, in_root)
    out_fs, out_root = _fs(destination)
    if out_fs.exists(out_root) and out_fs.find(out_root):
        raise InvalidValueError(f"The batch destination {destination!r} already holds files; name an empty folder.")

    if runner == "ray":
        done = _on_ray(tracking.store.url, pinned, source, destination, files, workers)
    else:
        scorer = _Scorer.__new__(_Scorer)
        scorer.model = RegistryClient(tracking).load_model(pinned)
        done = [scorer.score(source, destination, f) for f in files]

    input_sha = hashlib.sha256("".join(f"{r}\0{i}\n" for r, _, i, _ in done).encode()).hexdigest()
    output_sha = hashlib.sha256("".join(f"{r}\0{o}\n" for r, _, _, o in done).encode()).hexdigest()
    rows = sum(n for _, n, _, _ in done)
    run_id = _record_lineage(tracking, version, source, destination, files, rows, input_sha, output_sha, runner)
    logged = _log(tracking, version, destination, files, run_id) if log_predictions else 0
    return BatchResult(version.name, version.version, rows, tuple(files), input_sha, output_sha, destination,
                       run_id, logged)  # fmt: skip


def _record_lineage(tracking: TrackingClient, version: ModelVersion, source: str, destination: str, files: list[str],
                    rows: int, input_sha: str, output_sha: str, runner: str) -> str:  # fmt: skip
    """One finished run: model version -> input digest -> output digest, searchable by tags."""
    from loopml.tracking.runs import ActiveRun

    experiment = tracking.get_or_create_experiment(EXPERIMENT)
    tags = {"loopml.batch.model": version.name, "loopml.batch.version": str(version.version),
            "loopml.batch.input_sha256": input_sha, "loopml.batch.output_sha256": output_sha}  # fmt: skip
    run = tracking.create_run(experiment.experiment_id, name=f"batch-{version.name}-v{version.version}", tags=tags,
                              capture=False)  # fmt: skip
    active = ActiveRun(tracking, run)
    active.log_params({"model_uri": f"models:/{version.name}/{version.version}", "source": source,
                       "destination": destination, "runner": runner, "files": str(len(files))})  # fmt: skip
    active.log_metrics({"rows": float(rows)})
    active.end()
    return run.info.run_id


def _log(tracking: TrackingClient, version: ModelVersion, destination: str, files: list[str], run_id: str) -> int:
    """The scored rows into the prediction log, ``LOG_CHUNK`` rows a record; the number of records."""
    from loopml.entities.serving import PredictionRecord
    from loopml.timestamps import now_ms

    out_fs, out_root = _fs(destination)
    count, now = 0, now_ms()
    for relative in files:
        frame, _ = _read(out_fs, posixpath.join(out_root, relative))
        predictions = frame.pop("prediction").tolist()
        records = []
        for start in range(0, len(frame), LOG_CHUNK):
            chunk = frame.iloc[start : start + LOG_CHUNK]
            body = json.dumps({"records": chunk.to_dict(orient="records")}, default=str)
            records.append(PredictionRecord(f"b{run_id[:12]}-{count}", now, version.name, version.version, "main",
                                            body, json.dumps(predictions[start : start + LOG_CHUNK], default=str),
                                            0.0, 200))  # fmt: skip
            count += 1
        tracking.store.serving.log_predictions(records)
    return count
