"""Where a feature view's values live: parquet files, a pandas DataFrame, or a SQL table or query.

Every source is read through DuckDB so that nothing needs to fit in memory:
``scan`` registers a view's source on a DuckDB connection as a relation with
the join keys, the event time as ``__ts`` (``TIMESTAMP_NS``, naive UTC) and
each declared feature cast to its declared dtype, after checking that every
declared column is there with a compatible type (``FeatureSourceError``
naming the view and the column otherwise). Parquet files and DataFrames are
scanned in place; a SQL source is streamed through SQLAlchemy into a DuckDB
table (which spills to disk past the memory limit), its time filter pushed
down into the query.

``iter_batches`` streams a view's rows in a time range as Arrow record
batches, in bounded memory, for materialization.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from loopml.errors import FeatureDefinitionError, FeatureSourceError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa  # type: ignore[import-untyped]

    from loopml.features.definitions import FeatureView

#: The DuckDB type a declared dtype is cast to.
DUCK_TYPES = {
    "int64": "BIGINT",
    "int32": "INTEGER",
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP_NS",
}
_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_FLOATS = {"FLOAT", "DOUBLE"}
_TIMES = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "TIMESTAMP WITH TIME ZONE", "DATE"}
_NULL = {'"NULL"', "NULL"}
_ACCEPTS: dict[str, set[str]] = {
    "int64": _INTS,
    "int32": _INTS,
    "float64": _INTS | _FLOATS,
    "float32": _INTS | _FLOATS,
    "string": {"VARCHAR"},
    "bool": {"BOOLEAN"},
    "timestamp": _TIMES,
}
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _accepts(dtype: str, found: str) -> bool:
    if found in _NULL:
        return True
    if found.startswith("DECIMAL"):
        return dtype in ("float64", "float32")
    return found in _ACCEPTS[dtype]


def connect(memory_limit: str = "2GB", threads: int | None = None) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A DuckDB connection in UTC that spills past ``memory_limit`` to a fresh temporary folder (returned)."""
    import duckdb

    spill = tempfile.mkdtemp(prefix="loopml-duckdb-")
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill})
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con, spill


@dataclass(frozen=True)
class Scan:
    """A source registered on a connection: the relation's name and whether its event times carry a timezone."""

    relation: str
    aware: bool | None


class Source(ABC):
    """Where a feature view's rows come from."""

    kind: ClassVar[str]

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form, without credentials or data."""

    @abstractmethod
    def describe(self) -> str:
        """A short text for messages (never a password)."""

    @abstractmethod
    def _raw(
        self, con: duckdb.DuckDBPyConnection, view: FeatureView, name: str, start: datetime | None, end: datetime | None
    ) -> None:
        """Make ``name`` a DuckDB relation over the source's own columns plus ``__ord``, the row's place in the source.

        ``__ord`` orders rows that share a key and a timestamp: the one read last wins. The time
        filter is optional to apply here (``scan`` applies it again).
        """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Source) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class FileSource(Source):
    """Parquet: one file or a folder of them (read recursively, in name order), local or any fsspec URL."""

    kind = "file"

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not path.strip():
            raise FeatureDefinitionError("FileSource needs a path: a parquet file or folder, local or an fsspec URL.")
        self.path = path

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path}

    def describe(self) -> str:
        return f"path={self.path!r}"

    def files(self) -> tuple[list[str], Any]:
        """The parquet files (sorted) and the fsspec filesystem (None for local paths)."""
        import fsspec

        protocol = self.path.split("://", 1)[0] if "://" in self.path else "file"
        fs = fsspec.filesystem(protocol)
        try:
            if fs.isdir(self.path):
                found = sorted(p for p in fs.find(self.path) if p.endswith(".parquet"))
            elif fs.exists(self.path):
                found = [self.path]
            else:
                found = []
        except OSError as exc:
            raise FeatureSourceError(f"Cannot list the FileSource {self.path!r}: {type(exc).__name__}.") from None
        if not found:
            raise FeatureSourceError(f"FileSource {self.path!r} holds no parquet file.")
        if protocol in ("file", "local"):
            return [p if "://" not in p else p.split("://", 1)[1] for p in found], None
        return [p if "://" in p else f"{protocol}://{p}" for p in found], fs

    def _raw(
        self, con: duckdb.DuckDBPyConnection, view: FeatureView, name: str, start: datetime | None, end: datetime | None
    ) -> None:
        files, fs = self.files()
        if fs is not None and not con.filesystem_is_registered(
            fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        ):
            con.register_filesystem(fs)
        quoted = ["'" + f.replace("'", "''") + "'" for f in files]
        rows = ", ".join(f"({i}, {q})" for i, q in enumerate(quoted))
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}__files" AS SELECT * FROM (VALUES {rows}) AS t(idx, path)')
        listed = ", ".join(quoted)
        try:
            con.execute(
                f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT p.* EXCLUDE (__file, file_row_number), '
                f"(f.idx::BIGINT << 40) + p.file_row_number AS __ord "
                f"FROM read_parquet([{listed}], filename = '__file', file_row_number = true) AS p "
                f'JOIN "{name}__files" AS f ON f.path = p.__file'
            )
            con.execute(f'DESCRIBE SELECT * FROM "{name}"')
        except Exception as exc:  # duckdb raises its own IOException/InvalidInputException
            raise FeatureSourceError(
                f"Feature view {view.name!r}: cannot read the parquet of {self.path!r} ({type(exc).__name__})."
            ) from None


_FRAMES: dict[str, DataFrameSource] = {}
_SQL_URLS: dict[str, str] = {}


class DataFrameSource(Source):
    """A pandas DataFrame held in this process (stored by content hash; usable where it was applied)."""

    kind = "dataframe"

    def __init__(self, df: pd.DataFrame) -> None:
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise FeatureDefinitionError(f"DataFrameSource needs a pandas DataFrame, got {type(df).__name__}.")
        self.df = df
        self._sha: str | None = None

    @property
    def sha256(self) -> str:
        """Content hash of the frame's columns, dtypes and values."""
        if self._sha is None:
            import pandas as pd

            digest = hashlib.sha256(repr([(str(c), str(t)) for c, t in self.df.dtypes.items()]).encode())
            digest.update(pd.util.hash_pandas_object(self.df, index=False).to_numpy().tobytes())
            self._sha = digest.hexdigest()
            _FRAMES[self._sha] = self
        return self._sha

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sha256": self.sha256, "rows": len(self.df)}

    def describe(self) -> str:
        return f"DataFrame of {len(self.df)} rows, sha256 {self.sha256[:12]}"

    def _raw(
        self, con: duckdb.DuckDBPyConnection, view: FeatureView, name: str, start: datetime | None, end: datetime | None
    ) -> None:
        con.register(f"{name}__df", self.df)
        con.execute(
            f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM "{name}__df" '
            f"POSITIONAL JOIN (SELECT range::BIGINT AS __ord FROM range({len(self.df)}))"
        )


class SqlSource(Source):
    """A table or a query on any SQLAlchemy database; the stored URL never holds the password."""

    kind = "sql"

    def __init__(self, url: str, table: str | None = None, query: str | None = None) -> None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if (table is None) == (query is None):
            raise FeatureDefinitionError("SqlSource needs exactly one of table= or query=.")
        if table is not None and not _TABLE.match(table):
            raise FeatureDefinitionError(f"SqlSource table {table!r} is not a [schema.]table name.")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise FeatureDefinitionError("SqlSource query must be a non-empty SQL SELECT.")
        try:
            parsed = make_url(url)
        except (ArgumentError, TypeError, ValueError):
            raise FeatureDefinitionError("SqlSource url is not a SQLAlchemy database URL.") from None
        self.url = parsed._replace(password=None).render_as_string(hide_password=False)
        self.table = table
        self.query = query.strip().rstrip(";") if query else None
        _SQL_URLS[self.url] = parsed.render_as_string(hide_password=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "table": self.table, "query": self.query}

    def describe(self) -> str:
        return f"url={self.url!r}, " + (f"table={self.table!r}" if self.table else "query")

    def _select(
        self, view: FeatureView, engine: Any, start: datetime | None, end: datetime | None
    ) -> tuple[str, dict[str, Any]]:
        quote = engine.dialect.identifier_preparer.quote
        if self.table:
            body = ".".join(quote(part) for part in self.table.split("."))
        else:
            body = f"({self.query}) AS loopml_source"
        where, params = [], {}
        ts = quote(view.timestamp)
        if start is not None:
            where.append(f"{ts} >= :loopml_start")
            params["loopml_start"] = start
        if end is not None:
            where.append(f"{ts} < :loopml_end")
            params["loopml_end"] = end
        return f"SELECT * FROM {body}" + (" WHERE " + " AND ".join(where) if where else ""), params

    def _raw(
        self, con: duckdb.DuckDBPyConnection, view: FeatureView, name: str, start: datetime | None, end: datetime | None
    ) -> None:
        import pandas as pd
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError

        engine = create_engine(_SQL_URLS.get(self.url, self.url))
        try:
            sql, params = self._select(view, engine, start, end)
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=50_000).execute(text(sql), params)
                columns = list(result.keys())
                created = False
                while True:
                    rows = result.fetchmany(50_000)
                    if not rows and created:
                        break
                    con.register("__sql_chunk", pd.DataFrame.from_records(rows, columns=columns))
                    if not created:
                        con.execute(f'CREATE TEMP TABLE "{name}__sql" AS SELECT * FROM __sql_chunk')
                        created = True
                    else:
                        con.execute(f'INSERT INTO "{name}__sql" BY NAME SELECT * FROM __sql_chunk')
                    con.unregister("__sql_chunk")
                    if not rows:
                        break
        except SQLAlchemyError as exc:
            raise FeatureSourceError(
                f"Feature view {view.name!r}: cannot read its SqlSource ({self.describe()}): {type(exc).__name__}."
            ) from None
        finally:
            engine.dispose()
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT *, rowid AS __ord FROM "{name}__sql"')


def source_from_dict(data: Mapping[str, Any]) -> Source:
    """The source of a stored definition (a DataFrame source only in the process that applied it)."""
    kind = data.get("kind")
    if kind == "file":
        return FileSource(data["path"])
    if kind == "sql":
        return SqlSource(_SQL_URLS.get(data["url"], data["url"]), table=data.get("table"), query=data.get("query"))
    if kind == "dataframe":
        frame = _FRAMES.get(data["sha256"])
        if frame is None:
            raise FeatureSourceError(
                f"A DataFrame source (sha256 {str(data['sha256'])[:12]}) lives only in the process that applied it; "
                "apply the view again in this process, or use a FileSource or SqlSource."
            )
        return frame
    raise FeatureSourceError(f"Unknown feature source kind {kind!r}.")


def _aware(view: FeatureView, found: str) -> bool | None:
    if found == "TIMESTAMP WITH TIME ZONE":
        return True
    if found in _TIMES:
        return False
    if found in _NULL:
        return None
    raise FeatureSourceError(
        f"Feature view {view.name!r}: timestamp column {view.timestamp!r} has type {found}, not a timestamp."
    )


def scan(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    name: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    features: list[str] | None = None,
) -> Scan:
    """Register ``view``'s source as relation ``name``: join keys, ``__ts`` and the features, checked and cast.

    Only rows with ``start <= time < end`` are kept (each bound optional; naive bounds are UTC).
    """
    raw = f"{name}__raw"
    view.source._raw(con, view, raw, start, end)
    described = con.execute(f'DESCRIBE SELECT * FROM "{raw}"').fetchall()
    types = {str(row[0]): str(row[1]) for row in described}
    wanted = list(view.features if features is None else features)
    for column in [*view.join_keys, view.timestamp, *wanted]:
        if column not in types:
            raise FeatureSourceError(
                f"Feature view {view.name!r}: its source ({view.source.describe()}) has no column {column!r}."
            )
    for feature in wanted:
        dtype = view.schema[feature]
        if not _accepts(dtype, types[feature]):
            raise FeatureSourceError(
                f"Feature view {view.name!r}: column {feature!r} has type {types[feature]}, "
                f"but the schema declares {dtype}."
            )
    aware = _aware(view, types[view.timestamp])
    ts = f'"{view.timestamp}"'
    ts_expr = f"CAST(timezone('UTC', {ts}) AS TIMESTAMP_NS)" if aware else f"CAST({ts} AS TIMESTAMP_NS)"
    cols = [f'"{k}"' for k in view.join_keys] + [f"{ts_expr} AS __ts"]
    cols += [_cast(f'"{f}"', view.schema[f], types[f]) + f' AS "{f}"' for f in wanted] + ["__ord"]
    bounds = ["TRUE"]  # rows without an event time never match anything
    if start is not None:
        bounds.append(f"__ts >= {_literal(start)}")
    if end is not None:
        bounds.append(f"__ts < {_literal(end)}")
    con.execute(
        f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM (SELECT {", ".join(cols)} FROM "{raw}" '
        f"WHERE {ts} IS NOT NULL) WHERE {' AND '.join(bounds)}"
    )
    return Scan(name, aware)


def _cast(column: str, dtype: str, found: str) -> str:
    if dtype == "timestamp" and found == "TIMESTAMP WITH TIME ZONE":
        return f"CAST(timezone('UTC', {column}) AS TIMESTAMP_NS)"
    return f"CAST({column} AS {DUCK_TYPES[dtype]})"


def _literal(moment: datetime) -> str:
    """A TIMESTAMP_NS literal of ``moment`` in UTC (naive moments are UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP_NS '{moment.isoformat(sep=' ')}'"


def iter_batches(
    view: FeatureView,
    start: datetime | None,
    end: datetime | None,
    columns: list[str] | None = None,
    batch_rows: int = 100_000,
    *,
    memory_limit: str = "1GB",
) -> Iterator[pa.RecordBatch]:
    """Stream the rows with ``start <= time < end``: join keys, the timestamp (UTC) and ``columns`` (all features).

    Bounded memory: DuckDB scans the source and hands out ``batch_rows`` at a time.
    FeatureSourceError (naming the view and the column) when a declared column is missing or mistyped.
    """
    import shutil

    features = list(view.features if columns is None else columns)
    unknown = [c for c in features if c not in view.schema]
    if unknown:
        raise FeatureSourceError(f"Feature view {view.name!r} has no feature {unknown[0]!r}.")
    con, spill = connect(memory_limit)
    try:
        scan(con, view, "src", start=start, end=end, features=features)
        keys = ", ".join(f'"{k}"' for k in view.join_keys)
        feats = "".join(f', "{f}"' for f in features)
        reader = con.sql(
            f'SELECT {keys}, CAST(__ts AS TIMESTAMPTZ) AS "{view.timestamp}"{feats} FROM src'
        ).to_arrow_reader(batch_rows)
        yield from reader
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
