"""The parquet sink of the prediction log: batched files partitioned ``model=<name>/day=<YYYY-MM-DD>/``.

Each write appends one file per (model, day) it holds, named by its first
time and a random suffix, so replicas never write the same name and a file
is never changed in place except by erasure, which rewrites it under a new
name and then removes the old one. A batch's files are written under hidden
names first and published together; when one fails, the ones already
published are removed, so the writer's retry of the batch stores it once.
Reads list only the day folders a window touches and scan them with pyarrow
datasets (filter pushdown on model, time, version and role; only the columns
asked for), streaming record batches so memory stays bounded whatever the
log holds. Retention removes whole day
folders. The folder lives under the artifact store's URL and is reached
through fsspec, so ``s3://`` works as a local path does.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import secrets
from collections.abc import Iterator, Sequence
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pyarrow.fs as pafs  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from loopml.entities.serving import PredictionRecord

logger = logging.getLogger(__name__)

#: The folder under the artifact store that holds the log.
FOLDER = "prediction-log"

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("time", pa.int64()),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("role", pa.string()),
        ("inputs", pa.large_string()),
        ("outputs", pa.large_string()),
        ("latency_ms", pa.float64()),
        ("status", pa.int16()),
        ("entity_keys", pa.list_(pa.string())),
    ]
)
_DAY_MS = 86_400_000


def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path of ``root`` on it: local folders natively, anything else through fsspec."""
    if "://" not in root or root.startswith("file://"):
        path = root.removeprefix("file://")
        return pafs.LocalFileSystem(), posixpath.abspath(path)
    import fsspec

    fs, path = fsspec.core.url_to_fs(root)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def day_of(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def _day_start(day: str) -> int:
    return int(dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp() * 1000)


#: Characters of request bodies converted at a time: the copy holds the GIL, so the writer lets the event
#: loop in between pieces of about this size instead of holding it for a whole batch of large bodies.
_PIECE_CHARS = 4 * 1024 * 1024


def _text_piece(values: Sequence[str]) -> pa.Array:
    """One large_string array: ASCII text (what JSON bodies almost always are) as one join, the rest by pyarrow."""
    if all(value.isascii() for value in values):  # O(1) per string: CPython keeps the flag
        data = "".join(values).encode("ascii")
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, values), np.int64, len(values)), out=offsets[1:])
        return pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))
    return pa.array(values, pa.large_string())


def _text_column(values: Sequence[str]) -> pa.ChunkedArray:
    """``values`` as a chunked large_string column, converted in pieces of about ``_PIECE_CHARS`` characters."""
    pieces: list[pa.Array] = []
    start = size = 0
    for index, value in enumerate(values):
        size += len(value)
        if size >= _PIECE_CHARS:
            pieces.append(_text_piece(values[start : index + 1]))
            start, size = index + 1, 0
    if start < len(values) or not pieces:
        pieces.append(_text_piece(values[start:]))
    return pa.chunked_array(pieces, pa.large_string())


def records_table(records: Sequence[PredictionRecord], entity_keys: Sequence[Sequence[str]] | None = None) -> pa.Table:
    """An Arrow table of ``records`` in the sink's schema, built column by column (no per-row objects).

    The request and answer bodies, nearly all of the bytes, are copied in pieces (see ``_text_column``).
    """
    keys = entity_keys if entity_keys is not None else [[] for _ in records]
    columns: list[pa.Array | pa.ChunkedArray] = [
        pa.array([r.request_id for r in records], pa.string()),
        pa.array([r.time for r in records], pa.int64()),
        pa.array([r.model for r in records], pa.string()),
        pa.array([r.version for r in records], pa.int32()),
        pa.array([r.role for r in records], pa.string()),
        _text_column([r.inputs for r in records]),
        _text_column([r.outputs for r in records]),
        pa.array([r.latency_ms for r in records], pa.float64()),
        pa.array([r.status for r in records], pa.int16()),
        pa.array(keys, pa.list_(pa.string())),
    ]
    return pa.table(columns, schema=SCHEMA)


#: Files one dataset scan of a window read covers (read in parallel; the read may stop between groups).
_READ_GROUP = 16


def _first_by_time(parts: list[pa.Table], limit: int) -> pa.Table:
    """The first ``limit`` rows of ``parts`` by time; already-ordered rows (the usual case) are sliced, not copied."""
    table = pa.concat_tables(parts) if parts else SCHEMA.empty_table()
    if not table.num_rows:
        return table
    times = table.column("time").to_numpy()
    if bool(np.all(times[1:] >= times[:-1])):
        return table.slice(0, limit)
    order = pc.sort_indices(table, sort_keys=[("time", "ascending")])
    return table.take(order[:limit] if len(order) > limit else order)


def _first_time(path: str) -> int:
    """The earliest time in a file, from its name (``part-<13 digits>-<random>.parquet``)."""
    return int(posixpath.basename(path)[5:18])


def table_records(table: pa.Table) -> list[PredictionRecord]:
    """Records of an Arrow table in the sink's schema."""
    columns = [table.column(name).to_pylist() for name in SCHEMA.names[:-1]]
    return [PredictionRecord(*row) for row in zip(*columns, strict=True)]


class ParquetPredictionLog:
    """Write, read, prune and erase logged predictions as parquet files under ``root``."""

    def __init__(self, root: str) -> None:
        self.root_url = root
        self._fs, self._root = _filesystem(root)

    # -- paths -----------------------------------------------------------------------------------
    def _model_dir(self, model: str) -> str:
        return f"{self._root}/model={quote(model, safe='')}"

    def _list(self, path: str) -> list[pafs.FileInfo]:
        infos = self._fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return [info for info in infos if not info.base_name.startswith(".")]

    def models(self) -> list[str]:
        """Models with a folder in the log."""
        return sorted(
            unquote(info.base_name.removeprefix("model="))
            for info in self._list(self._root)
            if info.type == pafs.FileType.Directory and info.base_name.startswith("model=")
        )

    def _days(self, model: str, since: int | None, until: int | None) -> list[str]:
        """The day folders of ``model`` that can hold times in ``[since, until)``, oldest first."""
        first = None if since is None else day_of(since)
        last = None if until is None else day_of(until - 1)
        days = []
        for info in self._list(self._model_dir(model)):
            day = info.base_name.removeprefix("day=")
            if info.type != pafs.FileType.Directory or not info.base_name.startswith("day="):
                continue
            if (first is None or day >= first) and (last is None or day <= last):
                days.append(day)
        return sorted(days)

    def files(self, model: str, since: int | None = None, until: int | None = None) -> list[str]:
        """The parquet files a window of ``model`` reads (only its days' folders are listed)."""
        found: list[str] = []
        for day in self._days(model, since, until):
            folder = f"{self._model_dir(model)}/day={day}"
            found.extend(sorted(info.path for info in self._list(folder) if info.base_name.endswith(".parquet")))
        return found

    # -- writing ---------------------------------------------------------------------------------
    def write(self, table: pa.Table) -> int:
        """Append a table in the sink's schema: one new file per (model, day) it holds. Returns rows written."""
        if table.num_rows == 0:
            return 0
        table = table.select(SCHEMA.names).cast(SCHEMA)
        days = pc.strftime(pc.cast(table.column("time"), pa.timestamp("ms", tz="UTC")), format="%Y-%m-%d")
        groups = pa.table({"model": table.column("model"), "day": days}).group_by(["model", "day"]).aggregate([])
        # every file is written under a hidden name first and published after, all or none: a batch that
        # failed half-way and is retried whole must not leave its first files behind to be written twice
        staged: list[tuple[str, str]] = []
        published: list[str] = []
        try:
            for model, day in zip(groups.column("model").to_pylist(), groups.column("day").to_pylist(), strict=True):
                mask = pc.and_(pc.equal(table.column("model"), model), pc.equal(days, day))
                staged.append(self._stage(model, day, table.filter(mask) if groups.num_rows > 1 else table))
            for temp, path in staged:
                self._publish(temp, path)
                published.append(path)
        except BaseException:
            self._remove_quietly([*published, *(temp for temp, path in staged if path not in published)])
            raise
        return int(table.num_rows)

    def _stage(self, model: str, day: str, part: pa.Table) -> tuple[str, str]:
        """Write ``part`` under a hidden name in its (model, day) folder: ``(that name, the name to publish)``."""
        folder = f"{self._model_dir(model)}/day={day}"
        self._fs.create_dir(folder, recursive=True)
        first = int(pc.min(part.column("time")).as_py())
        path = f"{folder}/part-{first:013d}-{secrets.token_hex(8)}.parquet"
        temp = f"{folder}/.tmp-{secrets.token_hex(8)}.parquet"
        try:
            pq.write_table(part, temp, filesystem=self._fs, compression="zstd")
        except BaseException:
            self._remove_quietly([temp])
            raise
        return temp, path

    def _publish(self, temp: str, path: str) -> None:
        """Give a staged file its visible name: readers list ``*.parquet`` only, so they never see half a file."""
        self._fs.move(temp, path)

    def _write_file(self, model: str, day: str, part: pa.Table) -> str:
        temp, path = self._stage(model, day, part)
        self._publish(temp, path)
        return path

    def _remove_quietly(self, paths: Sequence[str]) -> None:
        """Delete what a failed write left.

        A store that is down may refuse this too: a staged file then stays hidden, but a published one is
        read, and the batch's retry stores its rows a second time (a warning says so).
        """
        for path in paths:
            try:
                self._fs.delete_file(path)
            except Exception:  # any filesystem's error: the write's own error is the one to raise
                logger.warning("Prediction log: could not remove %s after a failed write", posixpath.basename(path))

    # -- reading ---------------------------------------------------------------------------------
    def _filter(
        self, model: str, since: int | None, until: int | None, version: int | None, role: str | None
    ) -> pc.Expression:
        # the folder names the model, but a case-insensitive filesystem folds model=Iris into model=iris
        parts = [pc.field("model") == model]
        if since is not None:
            parts.append(pc.field("time") >= since)
        if until is not None:
            parts.append(pc.field("time") < until)
        if version is not None:
            parts.append(pc.field("version") == version)
        if role is not None:
            parts.append(pc.field("role") == role)
        expression = parts[0]
        for part in parts[1:]:
            expression = expression & part
        return expression

    def batches(
        self,
        model: str,
        *,
        since: int | None = None,
        until: int | None = None,
        version: int | None = None,
        role: str | None = None,
        columns: Sequence[str] | None = None,
        batch_size: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows of a window as record batches, file by file (oldest day first; bounded memory)."""
        files = self.files(model, since, until)
        if not files:
            return
        dataset = ds.dataset(files, schema=SCHEMA, format="parquet", filesystem=self._fs)
        yield from dataset.to_batches(
            columns=list(columns) if columns is not None else None,
            filter=self._filter(model, since, until, version, role),
            batch_size=batch_size,
        )

    def read_table(
        self,
        model: str,
        *,
        since: int | None = None,
        until: int | None = None,
        version: int | None = None,
        role: str | None = None,
        max_results: int = 100_000,
    ) -> pa.Table:
        """The rows of a window, oldest first: the first ``max_results`` by time (ties in file order).

        Files are read in the order of their first time (the name says it), and reading stops at the first
        file that starts after the newest row kept once ``max_results`` are held: a small read of a large
        window holds about ``max_results`` rows and one file, not the window.
        """
        files = self.files(model, since, until)
        files.sort(key=lambda path: (posixpath.basename(posixpath.dirname(path)), posixpath.basename(path)))
        row_filter = self._filter(model, since, until, version, role)
        parts: list[pa.Table] = []
        held = 0
        newest_kept: int | None = None
        for start in range(0, len(files), _READ_GROUP):
            group = files[start : start + _READ_GROUP]
            if newest_kept is not None and _first_time(group[0]) > newest_kept:
                break
            part = ds.dataset(group, schema=SCHEMA, format="parquet", filesystem=self._fs).to_table(filter=row_filter)
            parts.append(part)
            held += part.num_rows
            if held >= max_results:  # keep the first max_results by time; later groups can only replace the tail
                kept = _first_by_time(parts, max_results)
                parts, held, newest_kept = [kept], kept.num_rows, kept.column("time")[-1].as_py()
        return _first_by_time(parts, max_results)

    def read(
        self,
        model: str,
        *,
        since: int | None = None,
        until: int | None = None,
        version: int | None = None,
        role: str | None = None,
        max_results: int = 100_000,
    ) -> list[PredictionRecord]:
        table = self.read_table(model, since=since, until=until, version=version, role=role, max_results=max_results)
        return table_records(table)

    def locate(self, ids: Sequence[str]) -> dict[str, str]:
        """The model of each of ``ids`` the log holds: scans the request-id column only, model by model."""
        if not ids:
            return {}
        wanted = pa.array(sorted(set(ids)), pa.string())
        found: dict[str, str] = {}
        for name in self.models():
            files = self.files(name)
            if not files:
                continue
            dataset = ds.dataset(files, schema=SCHEMA, format="parquet", filesystem=self._fs)
            for batch in dataset.to_batches(columns=["request_id"], filter=pc.field("request_id").isin(wanted)):
                found.update(dict.fromkeys(batch.column(0).to_pylist(), name))
            if len(found) == len(wanted):
                break
        return found

    # -- retention and erasure ---------------------------------------------------------------------
    def prune(self, before_ms: int) -> int:
        """Remove every day folder that ends at or before ``before_ms``; the number of files removed."""
        removed = 0
        for model in self.models():
            for day in self._days(model, None, None):
                if _day_start(day) + _DAY_MS <= before_ms:
                    folder = f"{self._model_dir(model)}/day={day}"
                    removed += sum(1 for info in self._list(folder) if info.base_name.endswith(".parquet"))
                    self._fs.delete_dir(folder)
        return removed

    def erase_ids(self, model: str, ids: Sequence[str], *, since: int | None = None, until: int | None = None) -> int:
        """Rewrite the files of ``model`` (in the days of ``[since, until)``) holding any of ``ids`` without them.

        Each affected file is written anew under a fresh name first and the old one removed after, so a
        reader sees a row once or (in between) twice, never a half-rewritten file. Returns rows removed.
        """
        if not ids:
            return 0
        wanted = pa.array(sorted(set(ids)), pa.string())
        removed = 0
        for path in self.files(model, since, until):
            request_ids = pq.read_table(path, columns=["request_id"], filesystem=self._fs).column(0)
            hits = pc.is_in(request_ids, value_set=wanted)
            count = int(pc.sum(hits).as_py() or 0)
            if not count:
                continue
            table = pq.read_table(path, filesystem=self._fs, schema=SCHEMA)
            keep = table.filter(pc.invert(pc.is_in(table.column("request_id"), value_set=wanted)))
            if keep.num_rows:
                self._write_file(model, posixpath.dirname(path).rsplit("day=", 1)[1], keep)
            self._fs.delete_file(path)
            removed += count
        return removed
