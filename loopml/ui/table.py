"""The runs table of the UI as plain values: its columns, their sort links, its cells.

Everything here is computed from one ``search_runs`` page, so rendering a
page of runs costs one query whatever the columns: the store returns each
run's params, latest metrics and tags with it, and the table shows only the
columns the URL asks for (``?col=metrics.acc&col=params.lr``). Without a
choice it shows the first metrics and params seen on the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from loopml.entities.tracking import Run
from loopml.errors import InvalidFilterError

#: Columns a URL may choose; as many as a search may order or filter by.
MAX_COLUMNS = 50
DEFAULT_PER_KIND = 5
#: Fixed columns: (label, the order-by key that sorts on it).
ATTRIBUTE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run", "name"),
    ("status", "status"),
    ("started", "start_time"),
    ("duration", "duration"),
)
_KINDS = {"metrics": "metrics", "params": "params", "tags": "tags"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """A header cell: what it shows, the link that sorts on it, and whether the table is sorted on it now."""

    label: str
    key: str
    sort_url: str
    sorted: str  # "", "asc" or "desc"


def parse_columns(chosen: Sequence[str]) -> list[str]:
    """The chosen ``kind.key`` columns, checked and deduplicated in order; InvalidFilterError otherwise."""
    columns: list[str] = []
    for raw in chosen:
        kind, _, key = raw.partition(".")
        if kind not in _KINDS or not key:
            raise InvalidFilterError(
                f"Column {raw!r} is not one of metrics.<key>, params.<key> or tags.<key>.", text=raw, token=raw
            )
        if raw not in columns:
            columns.append(raw)
    if len(columns) > MAX_COLUMNS:
        raise InvalidFilterError(f"Choose at most {MAX_COLUMNS} columns, not {len(columns)}.")
    return columns


def known_columns(chosen: Sequence[str]) -> list[str]:
    """The well-formed ones of ``chosen``, deduplicated in order, at most ``MAX_COLUMNS`` (a page still renders)."""
    known = [c for c in dict.fromkeys(chosen) if c.partition(".")[0] in _KINDS and c.partition(".")[2]]
    return known[:MAX_COLUMNS]


def available_columns(runs: Iterable[Run]) -> list[str]:
    """Every metric, param and tag key on this page, as ``kind.key``; loopml's own tags left out."""
    metrics: set[str] = set()
    params: set[str] = set()
    tags: set[str] = set()
    for run in runs:
        metrics.update(run.metrics)
        params.update(run.params)
        tags.update(k for k in run.tags if not k.startswith("loopml."))
    return (
        [f"metrics.{k}" for k in sorted(metrics)]
        + [f"params.{k}" for k in sorted(params)]
        + [f"tags.{k}" for k in sorted(tags)]
    )


def default_columns(available: Sequence[str]) -> list[str]:
    """The first few metrics and params of the page, when the URL chooses none."""
    metrics = [c for c in available if c.startswith("metrics.")][:DEFAULT_PER_KIND]
    params = [c for c in available if c.startswith("params.")][:DEFAULT_PER_KIND]
    return metrics + params


def sort_state(order: str, key: str) -> str:
    """``asc``/``desc`` when ``order`` sorts first on ``key``, else empty."""
    first = order.split(",")[0].strip()
    if not first:
        return ""
    name, _, direction = first.rpartition(" ")
    if not name:
        name, direction = direction, "asc"
    if name.strip() != key:
        return ""
    return "desc" if direction.lower() == "desc" else "asc"


def next_order(order: str, key: str) -> str:
    """The order a click on ``key``'s header asks for: descending first, then it flips."""
    return f"{key} ASC" if sort_state(order, key) == "desc" else f"{key} DESC"


def url_with(path: str, query: Mapping[str, str | Sequence[str]], **changes: str | Sequence[str] | None) -> str:
    """``path`` with ``query`` changed by ``changes`` (None drops a parameter); the page token always resets."""
    merged: dict[str, str | Sequence[str]] = {k: v for k, v in query.items() if k != "page_token" and v}
    for name, value in changes.items():
        if value is None or value == "" or value == []:
            merged.pop(name, None)
        else:
            merged[name] = value
    encoded = urlencode(merged, doseq=True)
    return f"{path}?{encoded}" if encoded else path


def cell(run: Run, column: str) -> str:
    """A run's value in a ``kind.key`` column, formatted; empty when the run has none."""
    kind, _, key = column.partition(".")
    if kind == "metrics":
        value = run.metrics.get(key)
        return "" if value is None else format_number(value)
    source = run.params if kind == "params" else run.tags
    return source.get(key, "")


def format_number(value: float) -> str:
    """Four significant figures, the way a table of metrics is read."""
    return f"{value:.4g}"


def format_time(ms: int | None) -> str:
    """A time in ms since the epoch as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(ms: int | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``; empty while running."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
