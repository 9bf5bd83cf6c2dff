"""The run page's artifact browser: a folder tree, previews that read only what they show, and raw images.

``/runs/<id>/artifacts/preview?path=…`` reads the head of the blob, never the
whole file (MLflow's previews load it whole, mlflow#1077):

- text, JSON, YAML, Markdown and code: the first ``TEXT_BYTES`` (64 KiB);
  JSON is pretty-printed only when the whole file fits;
- CSV: the first ``TABLE_ROWS`` rows, parsed from the first chunks;
- parquet: the first ``TABLE_ROWS`` rows of the first row group, read through
  the footer and that one row group on a store with ranged reads
  (``ArtifactStore.open_seekable``); a store that only streams is buffered up
  to ``PARQUET_BUFFER_BYTES`` and past it the page says the file is too big;
- PNG, JPEG, GIF and SVG: an ``<img>`` of ``/runs/<id>/artifacts/image``,
  which streams the blob with its image type, ``Content-Security-Policy:
  default-src 'none'`` and a ``Content-Disposition`` (SVG as an attachment, so
  opened on its own it downloads and never renders as a document);
- anything else: its size, its sha256 and a download link.

Integrity: a blob read to its end is checked against its sha256 on the way
(``ArtifactStore.open_stream``), and a mismatch is shown as an error, never as
content. A preview cut early cannot be checked (the hash covers the whole
file), so the page says "partial read, sha256 not checked" and links the
download, which verifies. Every path goes through ``check_artifact_path``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from loopml.entities.artifacts import ArtifactEntry
from loopml.errors import ArtifactIntegrityError
from loopml.paths import check_artifact_path
from loopml.store import Store
from loopml.ui.errors import PageRoute
from loopml.ui.render import page

router = APIRouter(route_class=PageRoute)

TEXT_BYTES = 64 * 1024
TABLE_ROWS = 50
#: Read size: about what a text preview shows, so a cut stream reads little past it.
CHUNK_BYTES = 64 * 1024
#: Most bytes a CSV preview reads to find its rows (a file of very long lines shows fewer).
CSV_BYTES = 1024 * 1024
#: Most bytes of a parquet file buffered when the store cannot read ranges.
PARQUET_BUFFER_BYTES = 32 * 1024 * 1024
IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
}
TEXT_EXTENSIONS = frozenset(
    [
        "txt",
        "text",
        "log",
        "md",
        "markdown",
        "rst",
        "json",
        "jsonl",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "py",
        "pyi",
        "r",
        "sql",
        "sh",
        "js",
        "ts",
        "html",
        "htm",
        "css",
        "xml",
        "tsv",
        "ipynb",
        "mlmodel",
        "dockerfile",
        "requirements",
        "env",
    ]
)
JSON_EXTENSIONS = frozenset({"json", "ipynb"})
IMAGE_CSP = "default-src 'none'; frame-ancestors 'none'"


@dataclass
class Folder:
    """A folder of the tree: its path in the run, its sub-folders and its files, both sorted by name."""

    name: str
    path: str
    folders: list[Folder] = field(default_factory=list)
    files: list[ArtifactEntry] = field(default_factory=list)


def artifact_tree(entries: Sequence[ArtifactEntry]) -> Folder:
    """The run's artifacts as nested folders (built from the one listing the run page already reads)."""
    root = Folder(name="", path="")
    index: dict[str, Folder] = {"": root}
    for entry in sorted(entries, key=lambda e: e.path):
        parts = entry.path.split("/")
        parent = root
        for depth in range(1, len(parts)):
            path = "/".join(parts[:depth])
            folder = index.get(path)
            if folder is None:
                folder = index[path] = Folder(name=parts[depth - 1], path=path)
                parent.folders.append(folder)
            parent = folder
        parent.files.append(entry)
    return root


def file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def kind_of(path: str) -> str:
    """``image``, ``json``, ``text``, ``csv``, ``parquet`` or ``other``, by the file's extension."""
    name = file_name(path).lower()
    ext = name.rsplit(".", 1)[-1] if "." in name else name
    if ext in IMAGE_TYPES:
        return "image"
    if ext == "csv":
        return "csv"
    if ext in ("parquet", "pq"):
        return "parquet"
    if ext in JSON_EXTENSIONS:
        return "json"
    if ext in TEXT_EXTENSIONS or name in ("license", "readme", "makefile"):
        return "text"
    return "other"


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _head(chunks: Iterator[bytes], limit: int, *, stop_at_lines: int | None = None) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from the start of ``chunks`` (or enough for ``stop_at_lines`` lines); cut?

    Not cut means the stream ran to its end, so its sha256 was checked.
    """
    buffer = bytearray()
    try:
        for chunk in chunks:
            buffer += chunk
            if len(buffer) > limit:
                return bytes(buffer[:limit]), True
            if stop_at_lines is not None and buffer.count(b"\n") > stop_at_lines:
                return bytes(buffer), True
        return bytes(buffer), False
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _decode(data: bytes, *, cut: bool) -> str:
    # a cut may fall inside a character: the incremental decoder leaves that partial character out
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=not cut)


def _text_preview(store: Store, entry: ArtifactEntry, kind: str) -> dict[str, Any]:
    data, cut = _head(store.artifacts.open_stream(entry.digest, CHUNK_BYTES), TEXT_BYTES)
    text = _decode(data, cut=cut)
    pretty = False
    if kind == "json" and not cut:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            pretty = True
        except ValueError:
            pass  # shown as it is
    return {"text": text, "cut": cut, "shown": len(data), "pretty": pretty}


def _csv_preview(store: Store, entry: ArtifactEntry) -> dict[str, Any]:
    stream = store.artifacts.open_stream(entry.digest, CHUNK_BYTES)
    data, cut = _head(stream, CSV_BYTES, stop_at_lines=TABLE_ROWS + 1)
    text = _decode(data, cut=cut)
    if cut and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # the last line may be cut off: drop it
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    more = cut or len(body) > TABLE_ROWS
    return {"too_big": False, "header": header, "types": [], "rows": body[:TABLE_ROWS], "cut": cut, "more": more}


def _parquet_preview(store: Store, entry: ArtifactEntry) -> dict[str, Any]:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    seekable = store.artifacts.open_seekable(entry.digest)
    if seekable is not None:
        with seekable:  # the footer, then one row group: ranged reads, never the whole file
            return _parquet_rows(pq.ParquetFile(seekable), cut=True)
    if entry.size > PARQUET_BUFFER_BYTES:
        return {"too_big": True}
    data = b"".join(store.artifacts.open_stream(entry.digest))  # read to the end: verified
    return _parquet_rows(pq.ParquetFile(pa.BufferReader(data)), cut=False)


def _parquet_rows(parquet: Any, *, cut: bool) -> dict[str, Any]:
    metadata = parquet.metadata
    header = list(parquet.schema_arrow.names)
    rows: list[list[str]] = []
    if metadata.num_row_groups:
        for batch in parquet.iter_batches(batch_size=TABLE_ROWS, row_groups=[0]):
            rows = [[_cell(v) for v in record.values()] for record in batch.to_pylist()[:TABLE_ROWS]]
            break
    return {
        "too_big": False,
        "header": header,
        "types": [str(t) for t in parquet.schema_arrow.types],
        "rows": rows,
        "total_rows": metadata.num_rows,
        "row_groups": metadata.num_row_groups,
        "cut": cut,
    }


def _cell(value: object) -> str:
    return "" if value is None else str(value)


@router.get("/runs/{run_id}/artifacts/preview", include_in_schema=False)
def preview_artifact(request: Request, run_id: str, path: str) -> Response:
    store = _store(request)
    path = check_artifact_path(path)
    run = store.tracking.get_run(run_id)
    entry = store.tracking.get_artifact_entry(run_id, path)
    kind = kind_of(path)
    preview: dict[str, Any] = {}
    corrupt = ""
    try:
        if kind in ("text", "json"):
            preview = _text_preview(store, entry, kind)
        elif kind == "csv":
            preview = _csv_preview(store, entry)
        elif kind == "parquet":
            preview = _parquet_preview(store, entry)
    except ArtifactIntegrityError as exc:  # never shown as content
        corrupt, preview = str(exc), {}
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these: not a readable parquet file
        kind, preview = "unreadable", {"reason": str(exc)}
    return page(
        request,
        "artifact.html",
        title=f"{file_name(path)} · {run.info.name} · loopml",
        run=run,
        entry=entry,
        name=file_name(path),
        crumbs=path.split("/")[:-1],
        kind=kind,
        preview=preview,
        corrupt=corrupt,
        text_limit=TEXT_BYTES,
        table_rows=TABLE_ROWS,
        buffer_limit=PARQUET_BUFFER_BYTES,
    )


@router.get("/runs/{run_id}/artifacts/image", include_in_schema=False)
def artifact_image(request: Request, run_id: str, path: str) -> Response:
    """An image artifact with its image type, for an ``<img>``; nothing else is served here."""
    store = _store(request)
    path = check_artifact_path(path)
    media_type = IMAGE_TYPES.get(file_name(path).rsplit(".", 1)[-1].lower())
    if media_type is None or kind_of(path) != "image":
        return Response("Not an image artifact (PNG, JPEG, GIF or SVG).", status_code=404, media_type="text/plain")
    entry = store.tracking.get_artifact_entry(run_id, path)
    # an SVG is a document that can hold script: opened on its own it downloads; in an <img> no script runs
    disposition = "attachment" if media_type == "image/svg+xml" else "inline"
    return StreamingResponse(
        store.artifacts.open_stream(entry.digest),
        media_type=media_type,
        headers={
            "Content-Security-Policy": IMAGE_CSP,
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(file_name(path), safe='')}",
            "Content-Length": str(entry.size),
        },
    )
