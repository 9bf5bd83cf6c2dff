"""The TrackingStore on SQLAlchemy Core: SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Engine, Table, and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from loopml.entities.artifacts import ArtifactEntry
from loopml.entities.datasets import ColumnProfile, Dataset
from loopml.entities.search import Filter, OrderBy, named_keys
from loopml.entities.series import MetricSeries, SeriesX
from loopml.entities.tracking import DatasetInput, Experiment, Metric, Run, RunInfo, RunPage, RunStatus
from loopml.errors import (
    ArtifactImmutableError,
    ArtifactNotFoundError,
    DatasetNotFoundError,
    ExperimentAlreadyExistsError,
    ExperimentNotFoundError,
    InvalidValueError,
    MetricNotFoundError,
    ParamConflictError,
    RunNotActiveError,
    RunNotFoundError,
    did_you_mean,
)
from loopml.names import check_key, check_run_name
from loopml.paths import check_artifact_path
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import AnyRow, read_statement, read_transaction, write_transaction
from loopml.store.sql.rollups import metric_series
from loopml.store.sql.search import RunQuery, decode_page_token, encode_page_token, like_prefix, numeric_value
from loopml.store.tracking import TrackingStore
from loopml.timestamps import now_ms

MAX_RESULTS_LIMIT = 50_000
_IN_CHUNK = 5_000
# Default-order searches with value filters: below this many matches, sort them all (see _page_by_walking);
# above it, first walk the newest runs, at most this many times the rows the page needs.
_FEW_MATCHES = 250
_WALK_FACTOR = 20
# Searches ordered by one metric: walk at most this many times the rows the page needs (see _page_by_metric_walk).
_METRIC_WALK_FACTOR = 20
_HEX_PREFIX = re.compile(r"^[0-9a-f]{1,64}$")



def _insert(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _artifact_row(run_id: str, entry: ArtifactEntry) -> dict[str, Any]:
    return {"run_id": run_id, "path": entry.path, "digest": entry.digest, "size": entry.size}


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _metric_row(run_id: str, point: Metric) -> dict[str, Any]:
    nan = math.isnan(point.value)
    return {
        "run_id": run_id,
        "key": point.key,
        "value": None if nan else point.value,
        "is_nan": nan,
        # SQLite stores an integral REAL as an integer on disk, so -0.0 would come back as 0.0
        "negative_zero": point.value == 0.0 and math.copysign(1.0, point.value) < 0,
        "step": point.step,
        "timestamp": point.timestamp,
    }


_METRIC_COLUMNS = ("run_id", "key", "value", "is_nan", "negative_zero", "step", "timestamp")


def _insert_metric_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany of tuples at the driver: the hot path of metric logging.

    SQLAlchemy's per-row parameter processing cost more than SQLite's own
    inserts (83 ms against 38 ms for 10,000 points); these columns need none.
    """
    quote = conn.dialect.identifier_preparer.quote
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(t.metrics.name)} ({', '.join(quote(c) for c in _METRIC_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(_METRIC_COLUMNS))})"
    )
    conn.exec_driver_sql(sql, [tuple(row[c] for c in _METRIC_COLUMNS) for row in rows])


_RUN_COLUMNS = ("run_id", "experiment_id", "name", "status", "start_time", "end_time", "parent_run_id", "user_name")
# What a run carries besides its row (see _run_data_sql): each table, then its columns read as
# (key, text, text2, number, is_nan, negative_zero), None where the table has none.
_RUN_DATA: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("params", ("key", "value", None, None, None, None)),
    ("tags", ("key", "value", None, None, None, None)),
    ("latest_metrics", ("key", None, None, "value", "is_nan", "negative_zero")),
    ("dataset_inputs", ("name", "digest", "context", None, None, None)),
)
_PARAM, _TAG, _METRIC, _INPUT, _RUN = range(5)  # _RUN: the run's own row, in PostgreSQL's ``all`` statement
_NULLS = ("TEXT", "TEXT", "TEXT", "DOUBLE PRECISION", "BOOLEAN", "BOOLEAN")  # typed for PostgreSQL's UNION


@lru_cache(maxsize=4)
def _latest_metrics_upsert(dialect_name: str) -> Any:
    """The upsert of ``latest_metrics`` (a newer (step, timestamp) wins), built once per dialect.

    Building it (its ``excluded`` columns) cost more than running it: about 0.4 ms of every
    one-point ``log_metric``. A statement is immutable, so one object serves every call and thread.
    """
    stmt: Any
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(t.latest_metrics)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(t.latest_metrics)
    current = t.latest_metrics.c
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={
            "value": stmt.excluded.value,
            "is_nan": stmt.excluded.is_nan,
            "negative_zero": stmt.excluded.negative_zero,
            "step": stmt.excluded.step,
            "timestamp": stmt.excluded.timestamp,
        },
        where=or_(
            stmt.excluded.step > current.step,
            and_(stmt.excluded.step == current.step, stmt.excluded.timestamp >= current.timestamp),
        ),
    )


@lru_cache(maxsize=256)
def _run_data_sql(dialect: Dialect, what: str, n_ids: int) -> tuple[tuple[str, int], ...]:
    """The statements reading the runs' rows (``runs``), everything they carry (``data``), or both
    (``all``, PostgreSQL only), once per shape, each with how many times it takes the ids.

    ``data`` reads params, tags, latest metrics and dataset inputs as rows tagged by a leading
    number: on PostgreSQL as one UNION ALL (one round trip instead of four), on SQLite, where a
    statement is a function call and the compound SELECT cost 0.4 ms more for 100 runs, as four.
    ``all`` puts the runs' rows in the same UNION ALL, each as a JSON array in the ``text`` column
    (kind ``_RUN``): ``get_run`` is then one statement, at the 0.1 ms a round trip costs there.
    """
    quote = dialect.identifier_preparer.quote
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    ids = f"{quote('run_id')} IN ({', '.join([marker] * n_ids)})"
    if what == "runs":
        return ((f"SELECT {', '.join(quote(c) for c in _RUN_COLUMNS)} FROM {quote('runs')} WHERE {ids}", 1),)
    branches = []
    for kind, (table, columns) in enumerate(_RUN_DATA):
        picked = [quote(c) if c else f"CAST(NULL AS {null})" for c, null in zip(columns, _NULLS, strict=True)]
        branches.append(f"SELECT {kind} AS kind, {quote('run_id')}, {', '.join(picked)} FROM {quote(table)} WHERE {ids}")
    if what == "all":
        row = f"CAST(json_build_array({', '.join(quote(c) for c in _RUN_COLUMNS[1:])}) AS TEXT)"
        picked = [row if i == 1 else f"CAST(NULL AS {null})" for i, null in enumerate(_NULLS)]
        branches.insert(0, f"SELECT {_RUN} AS kind, {quote('run_id')}, {', '.join(picked)} FROM {quote('runs')} WHERE {ids}")
    if dialect.name == "sqlite":
        return tuple((branch, 1) for branch in branches)
    return ((" UNION ALL ".join(branches), len(branches)),)


def _read_run_data(conn: Connection, what: str, run_ids: Sequence[str]) -> list[Any]:
    """The ``runs`` rows of these runs, or their ``data`` (see ``_run_data_sql``), as tuples from the driver.

    Hydrating a page of runs reads a few thousand rows of strings and floats that need no type
    processing; through SQLAlchemy Core (statement building, IN expansion, Row objects) that cost
    about 5 times the queries themselves.
    """
    rows: list[Any] = []
    for chunk in _chunks(run_ids, _IN_CHUNK // (len(_RUN_DATA) + 1)):
        for sql, repeat in _run_data_sql(conn.dialect, what, len(chunk)):
            rows.extend(conn.exec_driver_sql(sql, tuple(chunk) * repeat).all())
    return rows


def _metric_value(value: float | None, is_nan: bool, negative_zero: bool = False) -> float:
    if negative_zero:
        return -0.0
    return math.nan if is_nan or value is None else float(value)


def _check_run_data(metrics: Sequence[Metric], params: Mapping[str, str] | None, tags: Mapping[str, str] | None) -> None:
    """The key grammar at the store boundary too, so every client of every backend gets the same answer."""
    for key in {point.key for point in metrics}:  # a batch repeats few keys over many points
        check_key(key, "Metric")
    for key in params or ():
        check_key(key, "Param")
    for key in tags or ():
        check_key(key, "Tag")


def _page_by_walking(
    conn: Connection,
    experiment_ids: Sequence[int] | None,
    filter: Filter | None,
    order_by: Sequence[OrderBy],
    offset: int,
    wanted: int,
) -> list[str] | None:
    """The page's run ids, found by walking the newest runs; None where the usual plan is the better one.

    With the default order (newest first) and a filter on metric or param values, SQLite starts at the
    ``(key, value)`` index and sorts every match: 480 ms for 100,000 runs of which half match. Walking
    the experiment's runs newest first and probing each run's keys stops after one page instead, but
    would scan every run when few match. Two bounded queries decide. If fewer than ``_FEW_MATCHES``
    runs match, sorting them all is cheap: the usual plan. Otherwise the walk covers only the newest
    ``_WALK_FACTOR`` pages of runs, a prefix of the order; when it fills the page, no older run can
    come before these, so it is the page. When it does not, the usual plan runs as before.
    PostgreSQL keeps statistics and picks between the two plans itself.
    """
    if order_by or filter is None or experiment_ids is None or len(experiment_ids) != 1:
        return None
    if conn.dialect.name != "sqlite" or not named_keys(filter):
        return None
    matches = RunQuery().build(experiment_ids, filter, ()).order_by(None).limit(_FEW_MATCHES).subquery()
    if conn.execute(select(func.count()).select_from(matches)).scalar_one() < _FEW_MATCHES:
        return None
    r = t.runs.c
    oldest = (
        select(r.start_time)
        .where(r.experiment_id == experiment_ids[0])
        .order_by(r.start_time.desc())
        .limit(1)
        .offset((offset + wanted) * _WALK_FACTOR - 1)
        .scalar_subquery()
    )
    walk = (
        RunQuery(walk_runs=True)
        .build(experiment_ids, filter, ())
        .where(r.start_time >= func.coalesce(oldest, -(2**63)))
        .limit(wanted)
        .offset(offset)
    )
    run_ids = list(conn.execute(walk).scalars().all())
    return run_ids if len(run_ids) == wanted else None


def _page_by_metric_walk(
    conn: Connection,
    experiment_ids: Sequence[int] | None,
    filter: Filter | None,
    order_by: Sequence[OrderBy],
    offset: int,
    wanted: int,
) -> list[str] | None:
    """The page's run ids, found by walking one metric's values in order; None where the usual plan must run.

    Ordered by one metric with a filter, SQLite starts from the experiment's runs and sorts every match:
    490 ms for 100,000 runs of which a sixth match. The ``(key, value)`` index holds the order's first
    term. The walk reads the best ``_METRIC_WALK_FACTOR`` pages of that metric's values and keeps those
    strictly better than the last one read, so that a tie is never split: a prefix of the order (runs
    missing the metric, or NaN, sort last). The usual query, limited to these runs, sorts them with its
    own tie-breakers and filters. When they fill the page, no other run can come before them, so it is
    the page; when they do not, the usual plan runs as before.
    """
    if len(order_by) != 1 or order_by[0].kind != "metric" or filter is None or conn.dialect.name != "sqlite":
        return None
    clause = order_by[0]
    if (clause.kind, clause.key) in named_keys(filter):  # the usual plan already starts from that key's index
        return None
    lm = t.latest_metrics.c
    value = lm.value.desc() if clause.descending else lm.value.asc()
    bound = (offset + wanted) * _METRIC_WALK_FACTOR
    values = select(lm.value).where(lm.key == clause.key, lm.value.is_not(None)).order_by(value)
    last = conn.execute(values.limit(1).offset(bound - 1)).scalar_one_or_none()
    walked = select(lm.run_id).where(lm.key == clause.key, lm.value.is_not(None))
    if last is not None:  # more values than the walk reads: keep those strictly better than the last one
        walked = walked.where(lm.value > last if clause.descending else lm.value < last)
    page = (
        RunQuery(walk_runs=True)
        .build(experiment_ids, filter, order_by)
        .where(t.runs.c.run_id.in_(walked))
        .limit(wanted)
        .offset(offset)
    )
    run_ids = list(conn.execute(page).scalars().all())
    return run_ids if len(run_ids) == wanted else None


class SqlTrackingStore(TrackingStore):
    """Tracking metadata in one SQL database, schema managed by Alembic."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- experiments -------------------------------------------------------------
    def create_experiment(self, name: str) -> Experiment:
        created = now_ms()
        try:
            with write_transaction(self._engine) as conn:
                result = conn.execute(t.experiments.insert().values(name=name, created_at=created))
                # typed Optional for executemany; a single-row INSERT always has its key
                experiment_id = int(cast("AnyRow", result.inserted_primary_key)[0])
        except IntegrityError as exc:
            raise ExperimentAlreadyExistsError(f"An experiment named {name!r} already exists.") from exc
        return Experiment(experiment_id=experiment_id, name=name, created_at=created)

    def get_experiment(self, experiment_id: int) -> Experiment:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(t.experiments).where(t.experiments.c.experiment_id == experiment_id)
            ).first()
        if row is None:
            raise ExperimentNotFoundError(f"No experiment with id {experiment_id}.")
        return Experiment(row.experiment_id, row.name, row.created_at)

    def get_experiment_by_name(self, name: str) -> Experiment:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
            if row is None:
                names = conn.execute(select(t.experiments.c.name)).scalars().all()
        if row is None:
            raise ExperimentNotFoundError(f"No experiment named {name!r}.{did_you_mean(name, names)}")
        return Experiment(row.experiment_id, row.name, row.created_at)

    def list_experiments(self) -> list[Experiment]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(t.experiments).order_by(t.experiments.c.experiment_id)).all()
        return [Experiment(r.experiment_id, r.name, r.created_at) for r in rows]

    # -- runs ----------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: int,
        *,
        name: str,
        user: str,
        start_time: int,
        parent_run_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        check_run_name(name)
        _check_run_data((), params, tags)
        run_id = uuid.uuid4().hex
        with write_transaction(self._engine) as conn:
            exists = conn.execute(
                select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == experiment_id)
            ).first()
            if exists is None:
                raise ExperimentNotFoundError(f"No experiment with id {experiment_id}.")
            if parent_run_id is not None:
                self._status(conn, parent_run_id)
            conn.execute(
                t.runs.insert().values(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    name=name,
                    status=RunStatus.RUNNING.value,
                    start_time=start_time,
                    end_time=None,
                    parent_run_id=parent_run_id,
                    user_name=user,
                )
            )
            if params:
                self._write_params(conn, run_id, params)
            if tags:
                self._write_tags(conn, run_id, tags)
        info = RunInfo(run_id, experiment_id, name, RunStatus.RUNNING, start_time, None, parent_run_id, user)
        return Run(
            info=info,
            params=MappingProxyType(dict(params or {})),
            tags=MappingProxyType(dict(tags or {})),
        )

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        if not status.is_terminal:
            raise InvalidValueError(f"end_run needs a terminal status, not {status.value}.")
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                t.runs.update()
                .where(t.runs.c.run_id == run_id, t.runs.c.status == RunStatus.RUNNING.value)
                .values(status=status.value, end_time=end_time)
            )
            if result.rowcount == 0:
                current = self._status(conn, run_id)
                raise RunNotActiveError(f"Run {run_id} has already ended ({current.value}).")
            return self._hydrate(conn, [run_id])[run_id]  # in the same transaction: no second BEGIN

    def get_run(self, run_id: str) -> Run:
        with read_statement(self._engine) as conn:  # one statement on PostgreSQL (see _hydrate)
            found = self._hydrate(conn, [run_id])
        if not found:
            raise RunNotFoundError(f"No run with id {run_id!r}.")
        return found[run_id]

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None,
        filter: Filter | None,
        order_by: Sequence[OrderBy],
        max_results: int,
        page_token: str | None,
    ) -> RunPage:
        if not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise InvalidValueError(f"max_results must be an integer from 1 to {MAX_RESULTS_LIMIT}, got {max_results!r}.")
        offset = decode_page_token(page_token)
        with read_transaction(self._engine) as conn:
            run_ids = _page_by_walking(conn, experiment_ids, filter, order_by, offset, max_results + 1)
            if run_ids is None:
                run_ids = _page_by_metric_walk(conn, experiment_ids, filter, order_by, offset, max_results + 1)
            if run_ids is None:
                ids_query = RunQuery().build(experiment_ids, filter, order_by).limit(max_results + 1).offset(offset)
                run_ids = list(conn.execute(ids_query).scalars().all())
            more = len(run_ids) > max_results
            run_ids = run_ids[:max_results]
            by_id = self._hydrate(conn, run_ids)
        token = encode_page_token(offset + max_results) if more else None
        return RunPage(runs=tuple(by_id[r] for r in run_ids), next_page_token=token)

    # -- run data --------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        _check_run_data(metrics, params, tags)
        with write_transaction(self._engine) as conn:
            status = self._status(conn, run_id)
            if (metrics or params) and status.is_terminal:
                raise RunNotActiveError(
                    f"Run {run_id} has ended ({status.value}); metrics and params can no longer be logged."
                )
            if idempotency_key is not None:
                applied = conn.execute(
                    _insert(conn, t.applied_batches)
                    .values(run_id=run_id, idempotency_key=idempotency_key, applied_at=now_ms())
                    .on_conflict_do_nothing()
                    .returning(t.applied_batches.c.run_id)
                )
                if applied.first() is None:
                    return  # this batch was applied before; a retry must not duplicate it
            if params:
                self._write_params(conn, run_id, params)
            if tags:
                self._write_tags(conn, run_id, tags)
            if metrics:
                self._write_metrics(conn, run_id, metrics)

    def _write_params(self, conn: Connection, run_id: str, params: Mapping[str, str]) -> None:
        rows = [{"run_id": run_id, "key": k, "value": v, "value_num": numeric_value(v)} for k, v in params.items()]
        conn.execute(_insert(conn, t.params).on_conflict_do_nothing(), rows)
        stored = dict(
            conn.execute(
                select(t.params.c.key, t.params.c.value).where(
                    t.params.c.run_id == run_id, t.params.c.key.in_(list(params))
                )
            ).all()
        )
        clashes = {k: (stored[k], v) for k, v in params.items() if stored.get(k) != v}
        if clashes:
            detail = ", ".join(f"{k}: logged {old!r}, now {new!r}" for k, (old, new) in clashes.items())
            raise ParamConflictError(
                f"Params are immutable once logged; run {run_id} already has different values ({detail}). "
                "Log the new value under another key or start a new run."
            )

    def _write_tags(self, conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
        rows = [{"run_id": run_id, "key": k, "value": v, "value_num": numeric_value(v)} for k, v in tags.items()]
        stmt = _insert(conn, t.tags)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"value": stmt.excluded.value, "value_num": stmt.excluded.value_num},
        )
        conn.execute(stmt, rows)

    def _write_metrics(self, conn: Connection, run_id: str, points: Sequence[Metric]) -> None:
        rows = [_metric_row(run_id, p) for p in points]
        _insert_metric_rows(conn, rows)
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:  # the last point of the highest (step, timestamp) wins, as in the history
            best = latest.get(row["key"])
            if best is None or (row["step"], row["timestamp"]) >= (best["step"], best["timestamp"]):
                latest[row["key"]] = row
        conn.execute(_latest_metrics_upsert(conn.dialect.name), list(latest.values()))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        m = t.metrics.c
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(m.key, m.value, m.is_nan, m.negative_zero, m.step, m.timestamp)
                .where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.timestamp, m.id)
            ).all()
            if not rows:
                self._status(conn, run_id)
                keys = conn.execute(
                    select(t.latest_metrics.c.key).where(t.latest_metrics.c.run_id == run_id)
                ).scalars().all()
                raise MetricNotFoundError(f"Run {run_id} has no metric {key!r}.{did_you_mean(key, keys)}")
        return [Metric(r.key, _metric_value(r.value, r.is_nan, r.negative_zero), r.step, r.timestamp) for r in rows]

    def get_metric_series(
        self,
        run_id: str,
        key: str,
        *,
        x: SeriesX = "step",
        x_from: int | None = None,
        x_to: int | None = None,
        max_points: int = 1000,
    ) -> MetricSeries:
        def not_found(conn: Connection) -> Exception:
            self._status(conn, run_id)
            keys = conn.execute(select(t.latest_metrics.c.key).where(t.latest_metrics.c.run_id == run_id)).scalars()
            return MetricNotFoundError(f"Run {run_id} has no metric {key!r}.{did_you_mean(key, list(keys))}")

        return metric_series(
            self._engine, run_id, key, x=x, x_from=x_from, x_to=x_to, max_points=max_points, not_found=not_found
        )

    # -- datasets -------------------------------------------------------------------------
    def log_dataset_input(self, run_id: str, dataset: Dataset, context: str) -> Dataset:
        with write_transaction(self._engine) as conn:
            self._status(conn, run_id)
            conn.execute(
                _insert(conn, t.datasets)
                .values(
                    digest=dataset.digest,
                    name=dataset.name,
                    source=dataset.source,
                    n_rows=dataset.n_rows,
                    schema_json=json.dumps(dict(dataset.schema)),
                    profile_json=json.dumps([c.to_dict() for c in dataset.profile]),
                    storage_digest=dataset.storage_digest,
                    storage_format=dataset.storage_format,
                    created_at=dataset.created_at,
                )
                .on_conflict_do_nothing()
            )
            conn.execute(
                _insert(conn, t.dataset_inputs)
                .values(run_id=run_id, digest=dataset.digest, name=dataset.name, context=context)
                .on_conflict_do_nothing()
            )
            row = conn.execute(select(t.datasets).where(t.datasets.c.digest == dataset.digest)).one()
        return _dataset(row)

    def get_dataset(self, ref: str) -> Dataset:
        name, _, prefix = ref.rpartition("@") if "@" in ref else ("", "", ref)
        prefix = prefix.lower()
        if not _HEX_PREFIX.match(prefix):
            raise InvalidValueError(
                f"Malformed dataset reference {ref!r}: use <name>@<sha256 prefix> or a sha256 hex digest."
            )
        d = t.datasets.c
        query = select(t.datasets).where(d.digest.like(prefix + "%")).limit(6)
        if name:
            named = select(t.dataset_inputs.c.digest).where(t.dataset_inputs.c.name == name)
            query = query.where(or_(d.name == name, d.digest.in_(named)))
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise DatasetNotFoundError(f"No dataset matches {ref!r}.")
        if len(rows) > 1:
            found = ", ".join(f"{r.name}@{r.digest[:12]}" for r in rows[:5])
            raise InvalidValueError(f"Dataset reference {ref!r} is ambiguous ({found}); give more hex digits.")
        return _dataset(rows[0])

    def list_dataset_runs(self, digest: str) -> list[tuple[str, str, str]]:
        di = t.dataset_inputs.c
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(di.run_id, di.name, di.context)
                .join(t.runs, t.runs.c.run_id == di.run_id)
                .where(di.digest == digest)
                .order_by(t.runs.c.start_time, di.run_id)
            ).all()
        return [(r.run_id, r.name, r.context) for r in rows]

    # -- artifact index -----------------------------------------------------------------
    def log_artifact_entries(self, run_id: str, entries: Sequence[ArtifactEntry], *, actor: str | None = None) -> None:
        # one entry a path (the last wins, as it would have over several calls), every path checked
        latest = {check_artifact_path(e.path): e for e in entries}
        if not latest:
            return
        with write_transaction(self._engine) as conn:
            status, user = self._status_and_user(conn, run_id)
            if status is RunStatus.RUNNING:
                stmt = _insert(conn, t.artifacts)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["run_id", "path"],
                    set_={"digest": stmt.excluded.digest, "size": stmt.excluded.size},
                )
                conn.execute(stmt, [_artifact_row(run_id, e) for e in latest.values()])
                return
            added = self._append_only(conn, run_id, status, list(latest.values()))
            if added:
                conn.execute(t.artifacts.insert(), [_artifact_row(run_id, e) for e in added])
                append_event(
                    conn,
                    actor=actor or user,
                    action="run.artifacts.append",
                    target_type="run",
                    target=run_id,
                    after={"entries": [{"path": e.path, "digest": e.digest, "size": e.size} for e in added]},
                    reason=f"artifacts added after the run ended ({status.value})",
                )

    @staticmethod
    def _append_only(conn: Connection, run_id: str, status: RunStatus, entries: list[ArtifactEntry]) -> list[ArtifactEntry]:
        """The entries an ended run does not hold yet; ArtifactImmutableError if one would change a held path."""
        a = t.artifacts.c
        held: dict[str, str] = {}
        for chunk in _chunks([e.path for e in entries]):
            rows = conn.execute(select(a.path, a.digest).where(a.run_id == run_id, a.path.in_(chunk)))
            held.update({r.path: r.digest for r in rows})
        changed = sorted(e.path for e in entries if e.path in held and held[e.path] != e.digest)
        if changed:
            shown = ", ".join(repr(p) for p in changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise ArtifactImmutableError(
                f"Run {run_id} has ended ({status.value}) and its artifacts never change: {shown} already "
                "hold other bytes. Log under a new path, or in a new run."
            )
        return [e for e in entries if e.path not in held]

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        a = t.artifacts.c
        query = select(a.path, a.digest, a.size).where(a.run_id == run_id).order_by(a.path)
        prefix = check_artifact_path(prefix, folder=True)
        if prefix:
            query = query.where(or_(a.path == prefix, a.path.like(like_prefix(prefix + "/"), escape="\\")))
        with read_transaction(self._engine) as conn:
            self._status(conn, run_id)
            rows = conn.execute(query).all()
        return [ArtifactEntry(r.path, r.digest, r.size) for r in rows]

    def get_artifact_entry(self, run_id: str, path: str) -> ArtifactEntry:
        a = t.artifacts.c
        check_artifact_path(path)
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(a.path, a.digest, a.size).where(a.run_id == run_id, a.path == path)).first()
            if row is None:
                self._status(conn, run_id)
                raise ArtifactNotFoundError(f"Run {run_id} has no artifact {path!r}.")
        return ArtifactEntry(row.path, row.digest, row.size)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _status_and_user(conn: Connection, run_id: str) -> tuple[RunStatus, str]:
        row = conn.execute(select(t.runs.c.status, t.runs.c.user_name).where(t.runs.c.run_id == run_id)).first()
        if row is None:
            raise RunNotFoundError(f"No run with id {run_id!r}.")
        return RunStatus(row.status), str(row.user_name)

    @staticmethod
    def _status(conn: Connection, run_id: str) -> RunStatus:
        status = conn.execute(select(t.runs.c.status).where(t.runs.c.run_id == run_id)).scalar()
        if status is None:
            raise RunNotFoundError(f"No run with id {run_id!r}.")
        return RunStatus(status)

    @staticmethod
    def _hydrate(conn: Connection, run_ids: Sequence[str]) -> dict[str, Run]:
        """The runs with these ids (those that exist), with their params, tags, latest metrics and inputs."""
        params: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        tags: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        metrics: dict[str, dict[str, float]] = {r: {} for r in run_ids}
        inputs: dict[str, list[DatasetInput]] = {r: [] for r in run_ids}
        if conn.dialect.name == "postgresql":  # one statement: the rows come tagged _RUN among the data
            rows, data = [], []
            for row in _read_run_data(conn, "all", run_ids):
                if row[0] == _RUN:
                    rows.append((row[1], *json.loads(row[3])))
                else:
                    data.append(row)
        else:
            rows = _read_run_data(conn, "runs", run_ids)
            data = _read_run_data(conn, "data", run_ids) if rows else []
        if not rows:
            return {}
        for kind, run_id, key, text, text2, number, is_nan, negative_zero in data:
            if kind == _METRIC:
                metrics[run_id][key] = _metric_value(number, is_nan, negative_zero)
            elif kind == _PARAM:
                params[run_id][key] = text
            elif kind == _TAG:
                tags[run_id][key] = text
            else:
                inputs[run_id].append(DatasetInput(key, text, text2))
        for held in inputs.values():
            held.sort(key=lambda i: i.name)  # by name, in code point order on every backend
        return {
            run_id: Run(
                info=RunInfo(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    name=name,
                    status=RunStatus(status),
                    start_time=start_time,
                    end_time=end_time,
                    parent_run_id=parent_run_id,
                    user=user_name,
                ),
                params=MappingProxyType(params[run_id]),
                metrics=MappingProxyType(dict(sorted(metrics[run_id].items()))),
                tags=MappingProxyType(tags[run_id]),
                inputs=tuple(inputs[run_id]),
            )
            for run_id, experiment_id, name, status, start_time, end_time, parent_run_id, user_name in rows
        }


def _dataset(row: Any) -> Dataset:
    return Dataset(
        digest=row.digest,
        name=row.name,
        source=row.source,
        n_rows=row.n_rows,
        schema=MappingProxyType(json.loads(row.schema_json)),
        profile=tuple(ColumnProfile.from_dict(c) for c in json.loads(row.profile_json)),
        storage_digest=row.storage_digest,
        storage_format=row.storage_format,
        created_at=row.created_at,
    )
