"""The embedded online store: one SQLite file (WAL) next to the metadata store.

One table keyed by (view, entity key) holds each key's latest row; an upsert whose ``WHERE`` compares event times
keeps the newest row, and each ``write`` is one transaction, so a failure rolls the whole batch back. A read joins
the requested keys (a ``VALUES`` list) against the table in one statement, whatever the number of views.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from loopml.errors import OnlineStoreError
from loopml.features.online.base import (
    OnlineRow,
    OnlineStore,
    ReadRequest,
    WriteBatch,
    decode_values,
    encode_key,
    encode_values,
    from_micros,
    to_micros,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_rows (
    view TEXT NOT NULL,
    entity_key BLOB NOT NULL,
    event_ts INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (view, entity_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_watermarks (
    view TEXT PRIMARY KEY,
    until_ts INTEGER NOT NULL
);
"""

_UPSERT = """
INSERT INTO online_rows (view, entity_key, event_ts, payload) VALUES (?, ?, ?, ?)
ON CONFLICT (view, entity_key) DO UPDATE SET event_ts = excluded.event_ts, payload = excluded.payload
WHERE excluded.event_ts >= online_rows.event_ts
"""

#: Keys per read statement: three bound values each, under SQLite's 32,766-variable limit.
_READ_CHUNK = 10_000


class SqliteOnlineStore(OnlineStore):
    """The default online store, a SQLite file in WAL mode shared by the processes of one machine."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path.name}"
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OnlineStoreError(f"cannot open the online store {self.url}: {type(exc).__name__}") from exc

    def write(self, batch: WriteBatch) -> int:
        rows = [
            (batch.view, encode_key(batch.join_keys, key), ts, encode_values(values))
            for key, values, ts in zip(batch.keys, batch.values, batch.event_times, strict=True)
        ]
        with self._lock:
            try:
                before = self._conn.total_changes
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(_UPSERT, rows)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                return self._conn.total_changes - before
            except sqlite3.Error as exc:
                raise OnlineStoreError(f"cannot write to the online store {self.url}: {exc}") from exc

    def read(self, requests: Sequence[ReadRequest]) -> list[list[OnlineRow | None]]:
        wanted: list[tuple[int, str, bytes]] = []
        out: list[list[OnlineRow | None]] = []
        for request in requests:
            out.append([None] * len(request.keys))
            for key in request.keys:
                wanted.append((len(wanted), request.view, encode_key(request.join_keys, key)))
        found: dict[int, tuple[int, bytes]] = {}
        with self._lock:
            try:
                for start in range(0, len(wanted), _READ_CHUNK):
                    chunk = wanted[start : start + _READ_CHUNK]
                    values = ",".join("(?, ?, ?)" for _ in chunk)
                    sql = (
                        f"WITH k(i, view, ek) AS (VALUES {values}) "
                        "SELECT k.i, o.event_ts, o.payload FROM k "
                        "JOIN online_rows o ON o.view = k.view AND o.entity_key = k.ek"
                    )
                    params = [p for row in chunk for p in row]
                    for i, ts, payload in self._conn.execute(sql, params):
                        found[i] = (ts, payload)
            except sqlite3.Error as exc:
                raise OnlineStoreError(f"cannot read the online store {self.url}: {exc}") from exc
        i = 0
        for r, request in enumerate(requests):
            for k in range(len(request.keys)):
                hit = found.get(i)
                if hit is not None:
                    out[r][k] = OnlineRow(decode_values(hit[1]), from_micros(hit[0]))
                i += 1
        return out

    def get_watermark(self, view: str) -> datetime | None:
        with self._lock:
            row = self._conn.execute("SELECT until_ts FROM online_watermarks WHERE view = ?", (view,)).fetchone()
        return None if row is None else from_micros(row[0])

    def set_watermark(self, view: str, until: datetime) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO online_watermarks (view, until_ts) VALUES (?, ?) ON CONFLICT (view) DO UPDATE "
                "SET until_ts = excluded.until_ts WHERE excluded.until_ts > online_watermarks.until_ts",
                (view, to_micros(until)),
            )

    def delete_view(self, view: str) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM online_rows WHERE view = ?", (view,))
            self._conn.execute("DELETE FROM online_watermarks WHERE view = ?", (view,))
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
