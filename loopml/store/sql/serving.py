"""The ServingStore in SQL: deployments audited in their transaction, predictions and feedback appended in batches."""

from __future__ import annotations

import functools
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from loopml.entities.serving import Deployment, Feedback, PredictionRecord
from loopml.errors import (
    AliasNotFoundError,
    DeploymentNotFoundError,
    InvalidValueError,
    PredictionNotFoundError,
    did_you_mean,
)
from loopml.store.predictions import bodies
from loopml.store.predictions.policy import (
    LogPolicy,
    check_erase_key,
    check_policy,
    entity_token,
    policy_to_json,
    redaction_key,
)
from loopml.store.serving import (
    ServingStore,
    check_deployment,
    check_max_results,
    check_request_id,
    check_role,
    check_version_number,
)
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import AnyRow, read_transaction, write_transaction
from loopml.store.sql.registry import SqlRegistryStore
from loopml.timestamps import now_ms

if TYPE_CHECKING:
    from loopml.store.predictions.parquet import ParquetPredictionLog

#: Above this many names, ``current_deployments`` reads every model's and filters here (bound-parameter limits).
_MAX_IN = 5_000
#: Rows per INSERT statement of the prediction log: 9 parameters a row stays under SQLite's 32,766.
_INSERT_ROWS = 1_000
#: Unknown request ids a refused feedback batch names (in the error's ``request_ids``).
_MAX_NAMED = 100
logger = logging.getLogger("loopml.store")
#: Seconds a store trusts its copy of the log policies (a policy set through this store applies at once).
_POLICY_TTL_S = 5.0
_PREDICTION_COLUMNS = (
    "request_id", "time", "model", "version", "role", "inputs", "inputs_zstd", "outputs", "latency_ms", "status"
)  # fmt: skip


def _deployment(row: AnyRow) -> Deployment:
    target = row.target
    version = int(target) if target.isdigit() else (None if row.alias_version is None else int(row.alias_version))
    return Deployment(
        deployment_id=int(row.deployment_id),
        name=row.name,
        target=target,
        version=version,
        canary_version=row.canary_version,
        canary_percent=row.canary_percent,
        shadow_version=row.shadow_version,
        action=row.action,
        created_at=row.created_at,
        created_by=row.created_by,
        reason=row.reason,
        previous_id=None if row.previous_id is None else int(row.previous_id),
    )


def _config(deployment: Deployment | AnyRow | None) -> dict[str, Any] | None:
    """What an audit event records of a deployment."""
    if deployment is None:
        return None
    return {
        "target": deployment.target,
        "canary": None
        if deployment.canary_version is None
        else {"version": deployment.canary_version, "percent": deployment.canary_percent},
        "shadow": None if deployment.shadow_version is None else {"version": deployment.shadow_version},
    }


@functools.lru_cache(maxsize=64)
def _insert_sql(paramstyle: str, rows: int) -> str:
    """``INSERT INTO predictions (...) VALUES (...), (...), ...`` for ``rows`` rows in the driver's paramstyle."""
    mark = "?" if paramstyle == "qmark" else "%s"
    row = "(" + ", ".join([mark] * len(_PREDICTION_COLUMNS)) + ")"
    return f"INSERT INTO predictions ({', '.join(_PREDICTION_COLUMNS)}) VALUES " + ", ".join([row] * rows)


class SqlServingStore(ServingStore):
    """Deployments, predictions and feedback in the metadata database."""

    def __init__(self, engine: Engine, *, sink: ParquetPredictionLog | None = None) -> None:
        self._engine = engine
        # The registry's lookups raise the same not-found errors (with their suggestions) as get_version.
        self._registry = SqlRegistryStore(engine)
        #: None: predictions live in the ``predictions`` table; otherwise in the parquet files of this sink.
        self._sink = sink
        self.prediction_sink = "sql" if sink is None else "parquet"
        self._policies: dict[str, LogPolicy] = {}
        self._policies_at = -_POLICY_TTL_S
        self._policy_lock = threading.Lock()

    # -- deployments ---------------------------------------------------------------------
    def _query(self) -> Any:
        d, a = t.deployments, t.model_aliases
        return select(d, a.c.version.label("alias_version")).select_from(
            d.outerjoin(a, (a.c.name == d.c.name) & (a.c.alias == d.c.target))
        )

    def _current_row(self, conn: Connection, name: str) -> AnyRow | None:
        d = t.deployments.c
        latest = select(func.max(d.deployment_id)).where(d.name == name).scalar_subquery()
        return conn.execute(self._query().where(d.deployment_id == latest)).first()

    def _check_servable(
        self, conn: Connection, name: str, target: str, canary_version: int | None, shadow_version: int | None
    ) -> None:
        """Every version the deployment would serve exists, and is approved where the model requires approval."""
        if target.isdigit():
            main = int(target)
            self._registry._version(conn, name, main)
        else:
            a = t.model_aliases.c
            found = conn.execute(select(a.version).where(a.name == name, a.alias == target)).scalar()
            if found is None:
                self._registry._model(conn, name)
                aliases = conn.execute(select(a.alias).where(a.name == name)).scalars().all()
                known = ", ".join(sorted(aliases)) or "none"
                raise AliasNotFoundError(
                    f"Model {name!r} has no alias {target!r} (aliases: {known}).{did_you_mean(target, aliases)}"
                )
            main = int(found)
        for version in (canary_version, shadow_version):
            if version is not None:
                self._registry._version(conn, name, version)
        served = [main, *(v for v in (canary_version, shadow_version) if v is not None)]
        self._registry.require_approved(conn, name, served, "be deployed (as target, canary or shadow)")

    def _lock(self, conn: Connection, name: str) -> None:
        """Serialise deployments of one model on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
        if conn.dialect.name == "postgresql":
            m = t.registered_models.c
            conn.execute(select(m.name).where(m.name == name).with_for_update())

    def create_deployment(
        self,
        name: str,
        *,
        target: str,
        canary_version: int | None,
        canary_percent: float | None,
        shadow_version: int | None,
        actor: str,
        reason: str | None,
    ) -> Deployment:
        target, canary_version, canary_percent, shadow_version = check_deployment(
            target, canary_version, canary_percent, shadow_version
        )
        with write_transaction(self._engine) as conn:
            self._lock(conn, name)
            self._check_servable(conn, name, target, canary_version, shadow_version)
            current = self._current_row(conn, name)
            return self._insert(
                conn,
                name,
                target=target,
                canary_version=canary_version,
                canary_percent=canary_percent,
                shadow_version=shadow_version,
                previous_id=None if current is None else int(current.deployment_id),
                action="deploy",
                before=_config(current),
                actor=actor,
                reason=reason,
            )

    def rollback_deployment(self, name: str, *, actor: str, reason: str | None) -> Deployment:
        with write_transaction(self._engine) as conn:
            self._lock(conn, name)
            current = self._current_row(conn, name)
            if current is None:
                self._registry._model(conn, name)
                raise DeploymentNotFoundError(f"Model {name!r} has never been deployed; there is nothing to roll back.")
            if current.previous_id is None:
                raise DeploymentNotFoundError(
                    f"Deployment {current.deployment_id} of {name!r} is its first; there is no earlier one to roll back to."
                )
            d = t.deployments.c
            earlier = conn.execute(select(t.deployments).where(d.deployment_id == current.previous_id)).one()
            self._check_servable(conn, name, earlier.target, earlier.canary_version, earlier.shadow_version)
            return self._insert(
                conn,
                name,
                target=earlier.target,
                canary_version=earlier.canary_version,
                canary_percent=earlier.canary_percent,
                shadow_version=earlier.shadow_version,
                previous_id=earlier.previous_id,
                action="rollback",
                before=_config(current),
                actor=actor,
                reason=reason,
                evidence={"restored_deployment_id": int(earlier.deployment_id)},
            )

    def _insert(
        self,
        conn: Connection,
        name: str,
        *,
        target: str,
        canary_version: int | None,
        canary_percent: float | None,
        shadow_version: int | None,
        previous_id: int | None,
        action: str,
        before: dict[str, Any] | None,
        actor: str,
        reason: str | None,
        evidence: dict[str, Any] | None = None,
    ) -> Deployment:
        now = now_ms()
        deployment_id = conn.execute(
            t.deployments.insert()
            .values(
                name=name,
                target=target,
                canary_version=canary_version,
                canary_percent=canary_percent,
                shadow_version=shadow_version,
                action=action,
                previous_id=previous_id,
                created_at=now,
                created_by=actor,
                reason=reason,
            )
            .returning(t.deployments.c.deployment_id)
        ).scalar_one()
        row = conn.execute(self._query().where(t.deployments.c.deployment_id == deployment_id)).one()
        created = _deployment(row)
        append_event(
            conn,
            actor=actor,
            action=f"deployment.{'create' if action == 'deploy' else 'rollback'}",
            target_type="deployment",
            target=name,
            before=before,
            after={**(_config(created) or {}), "deployment_id": created.deployment_id, "version": created.version},
            reason=reason,
            evidence=evidence,
        )
        return created

    def current_deployment(self, name: str) -> Deployment:
        with read_transaction(self._engine) as conn:
            row = self._current_row(conn, name)
            if row is None:
                self._registry._model(conn, name)
                raise DeploymentNotFoundError(f"Model {name!r} has no deployment; deploy it with loopml.deploy().")
        return _deployment(row)

    def current_deployments(self, names: Sequence[str] | None = None) -> list[Deployment]:
        d = t.deployments.c
        latest = select(func.max(d.deployment_id)).group_by(d.name)
        wanted = None if names is None else set(names)
        if wanted is not None and len(wanted) <= _MAX_IN:
            if not wanted:
                return []
            latest = latest.where(d.name.in_(sorted(wanted)))
        query = self._query().where(d.deployment_id.in_(latest)).order_by(d.name)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        found = [_deployment(row) for row in rows]
        return found if wanted is None else [item for item in found if item.name in wanted]

    def list_deployments(self, name: str | None = None, *, max_results: int = 1000) -> list[Deployment]:
        check_max_results(max_results)
        d = t.deployments.c
        query = self._query().order_by(d.deployment_id.desc()).limit(max_results)
        if name is not None:
            query = query.where(d.name == name)
        with read_transaction(self._engine) as conn:
            return [_deployment(row) for row in conn.execute(query)]

    def resolve_aliases(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        wanted = {(str(name), str(alias)) for name, alias in refs}
        if not wanted:
            return {}
        a = t.model_aliases.c
        names = sorted({name for name, _ in wanted})
        found: dict[tuple[str, str], int] = {}
        with read_transaction(self._engine) as conn:
            for start in range(0, len(names), _MAX_IN):
                chunk = names[start : start + _MAX_IN]
                for row in conn.execute(select(a.name, a.alias, a.version).where(a.name.in_(chunk))):
                    if (row.name, row.alias) in wanted:
                        found[(row.name, row.alias)] = int(row.version)
        return found

    # -- prediction log ------------------------------------------------------------------
    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        if not records:
            return
        if self._sink is not None:
            self._log_to_sink(records)
            return
        # One multi-row INSERT per chunk, its values bound as plain tuples. Both choices are about the GIL:
        # the writer runs beside the request path, and the sqlite3 module releases and retakes the GIL
        # around every statement it steps, so an executemany of 1,000 rows would wait for the busy event
        # loop 1,000 times where this waits once per chunk; Core's per-row parameter processing is skipped.
        # Redacted, and long bodies compressed, before the write transaction opens: a large batch is
        # redacted in a helper process, and the database's write lock is not held while it waits.
        records, keys = _apply_policies(records, self._current_policies())
        packed = [bodies.pack(r.inputs) for r in records]
        try:
            with write_transaction(self._engine) as conn:
                records = _unique_ids(conn, records)  # the same records in the same order, some renamed
                entities = _entity_rows(records, keys)
                for start, end in _insert_chunks(packed, records):
                    values = [
                        value
                        for r, (inputs, compressed) in zip(records[start:end], packed[start:end], strict=True)
                        for value in (
                            r.request_id, r.time, r.model, r.version, r.role, inputs, compressed, r.outputs,
                            r.latency_ms, r.status,
                        )
                    ]  # fmt: skip
                    conn.exec_driver_sql(_insert_sql(conn.dialect.paramstyle, end - start), tuple(values))
                if entities:
                    conn.execute(t.prediction_entities.insert(), entities)
        except IntegrityError as exc:  # a row a constraint or trigger forbids: the records' fault, not the store's
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]  # the first line quotes no row
            raise InvalidValueError(f"The database refused a logged prediction: {detail}") from exc

    def _log_to_sink(self, records: Sequence[PredictionRecord]) -> None:
        """The parquet sink: policies applied, entity keys indexed in SQL first, then one file per (model, day).

        Request ids are made unique within the batch (the service rewrites the ones it answered lately);
        scanning every file for older ids would cost the writer more than the log is worth. A batch whose
        file write fails is retried whole: its entity keys may then be indexed twice, which erasure absorbs.
        """
        from loopml.store.predictions.parquet import records_table

        assert self._sink is not None
        records = _unique_in_batch(records)
        records, keys = _apply_policies(records, self._current_policies())
        entities = _entity_rows(records, keys)
        if entities:
            with write_transaction(self._engine) as conn:
                conn.execute(t.prediction_entities.insert(), entities)
        self._sink.write(records_table(records, keys))

    def _current_policies(self) -> dict[str, LogPolicy]:
        """The log policies: the cached copy while fresh, else read again."""
        policies = self._fresh_policies()
        if policies is None:
            with read_transaction(self._engine) as conn:
                policies = self._log_policies(conn)
        return policies

    def _fresh_policies(self) -> dict[str, LogPolicy] | None:
        """The cached log policies while they are fresh, else None."""
        with self._policy_lock:
            return self._policies if time.monotonic() - self._policies_at < _POLICY_TTL_S else None

    def _log_policies(self, conn: Connection) -> dict[str, LogPolicy]:
        """Every model's log policy, re-read at most every few seconds (one small table)."""
        fresh = self._fresh_policies()
        if fresh is not None:
            return fresh
        lp = t.prediction_log_policies.c
        rows = conn.execute(select(lp.model, lp.redact, lp.entity_key)).all()
        policies = {row.model: LogPolicy(redact=json.loads(row.redact), entity_key=row.entity_key) for row in rows}
        with self._policy_lock:
            self._policies, self._policies_at = policies, time.monotonic()
        return policies

    def read_predictions(
        self,
        name: str,
        *,
        since: int | None = None,
        until: int | None = None,
        version: int | None = None,
        role: str | None = None,
        max_results: int = 100_000,
    ) -> list[PredictionRecord]:
        check_max_results(max_results)
        if self._sink is not None:
            return self._sink.read(
                name,
                since=since,
                until=until,
                version=None if version is None else check_version_number(version),
                role=None if role is None else check_role(role),
                max_results=max_results,
            )
        p = t.predictions.c
        query = select(t.predictions).where(p.model == name).order_by(p.time, p.id).limit(max_results)
        if since is not None:
            query = query.where(p.time >= since)
        if until is not None:
            query = query.where(p.time < until)
        if version is not None:
            query = query.where(p.version == check_version_number(version))
        if role is not None:
            query = query.where(p.role == check_role(role))
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [
            PredictionRecord(
                r.request_id,
                r.time,
                r.model,
                r.version,
                r.role,
                bodies.unpack(r.inputs, r.inputs_zstd),
                r.outputs,
                r.latency_ms,
                r.status,
            )
            for r in rows
        ]

    # -- feedback ------------------------------------------------------------------------
    def log_feedback(self, items: Sequence[Feedback]) -> None:
        if not items:
            return
        rows: list[dict[str, Any]] = []
        for item in items:
            try:
                label = json.dumps(item.label, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidValueError(f"A feedback label must be a JSON value, got {item.label!r}.") from exc
            rows.append({"request_id": check_request_id(item.request_id), "label": label, "time": item.time})
        ids = sorted({row["request_id"] for row in rows})
        located = self._sink.locate(ids) if self._sink is not None else None
        with write_transaction(self._engine) as conn:
            # Checked in the transaction that inserts: prediction rows are removed only by retention and
            # erasure, which remove their feedback with them.
            models = located if located is not None else _logged_ids(conn, ids)
            unknown = sorted(set(ids) - set(models))
            if unknown:
                named = ", ".join(repr(rid) for rid in unknown[:5]) + (
                    f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
                )
                raise PredictionNotFoundError(
                    f"The prediction log holds no request {named}; feedback is taken only for requests a "
                    f"prediction service answered and logged (check the id in the answer's request_id). "
                    f"Nothing was stored.",
                    request_ids=unknown[:_MAX_NAMED],
                )
            for row in rows:
                row["model"] = models[row["request_id"]]
            conn.execute(t.prediction_feedback.insert(), rows)

    def read_feedback(
        self,
        *,
        name: str | None = None,
        request_ids: Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        max_results: int = 100_000,
    ) -> list[Feedback]:
        check_max_results(max_results)
        f, p = t.prediction_feedback.c, t.predictions.c
        query = select(t.prediction_feedback).order_by(f.time, f.id).limit(max_results)
        if name is not None and self._sink is not None:
            query = query.where(f.model == name)
        elif name is not None:
            query = query.where(f.request_id.in_(select(p.request_id).where(p.model == name)))
        if request_ids is not None:
            ids = sorted(set(request_ids))
            if not ids:
                return []
            if len(ids) > _MAX_IN:
                raise InvalidValueError(f"Ask for at most {_MAX_IN} request ids at a time, got {len(ids)}.")
            query = query.where(f.request_id.in_(ids))
        if since is not None:
            query = query.where(f.time >= since)
        if until is not None:
            query = query.where(f.time < until)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [Feedback(r.request_id, json.loads(r.label), r.time) for r in rows]

    # -- log policies, erasure, retention ------------------------------------------------------
    def set_log_policy(
        self,
        name: str,
        *,
        redact: Mapping[str, str],
        entity_key: str | None,
        actor: str,
        reason: str | None = None,
    ) -> LogPolicy:
        policy = check_policy(redact, entity_key)
        lp = t.prediction_log_policies.c
        with write_transaction(self._engine) as conn:
            self._registry._model(conn, name)
            before = conn.execute(select(lp.redact, lp.entity_key).where(lp.model == name)).first()
            conn.execute(delete(t.prediction_log_policies).where(lp.model == name))
            if not policy.empty:
                conn.execute(
                    t.prediction_log_policies.insert().values(
                        model=name,
                        redact=policy_to_json(policy),
                        entity_key=policy.entity_key,
                        updated_at=now_ms(),
                        updated_by=actor,
                    )
                )
            append_event(
                conn,
                actor=actor,
                action="predictions.policy",
                target_type="model",
                target=name,
                before=None
                if before is None
                else {"redact": json.loads(before.redact), "entity_key": before.entity_key},
                after={"redact": dict(policy.redact), "entity_key": policy.entity_key},
                reason=reason,
            )
        with self._policy_lock:
            self._policies_at = -_POLICY_TTL_S  # this store's writer sees the new policy at its next batch
        return policy

    def get_log_policy(self, name: str) -> LogPolicy:
        lp = t.prediction_log_policies.c
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(lp.redact, lp.entity_key).where(lp.model == name)).first()
            if row is None:
                self._registry._model(conn, name)
                return LogPolicy()
        return LogPolicy(redact=json.loads(row.redact), entity_key=row.entity_key)

    def erase_predictions(
        self, key: str, *, name: str | None = None, actor: str, reason: str | None = None
    ) -> dict[str, int]:
        key = check_erase_key(key)
        lp, e, p, f = (t.prediction_log_policies.c, t.prediction_entities.c, t.predictions.c, t.prediction_feedback.c)
        hash_key = redaction_key()
        with write_transaction(self._engine) as conn:
            query = select(lp.model, lp.redact, lp.entity_key).where(lp.entity_key.is_not(None))
            if name is not None:
                self._registry._model(conn, name)
                query = query.where(lp.model == name)
            declared = conn.execute(query).all()
            if name is not None and not declared:
                raise InvalidValueError(
                    f"Model {name!r} declares no entity key, so its log cannot be searched by key; declare one "
                    f"with loopml.set_redaction({name!r}, {{...}}, entity_key='<column>')."
                )
            matches = [
                and_(
                    e.model == row.model,
                    e.entity_key == entity_token(key, json.loads(row.redact).get(row.entity_key), hash_key)[:256],
                )
                for row in declared
            ]
            hits = conn.execute(select(e.request_id, e.model, e.time).where(or_(*matches))).all() if matches else []
            by_model: dict[str, list[Any]] = {}
            for hit in hits:
                by_model.setdefault(hit.model, []).append(hit)
            ids = sorted({hit.request_id for hit in hits})
            removed = 0
            for start in range(0, len(ids), _INSERT_ROWS):
                chunk = ids[start : start + _INSERT_ROWS]
                if self._sink is None:
                    removed += conn.execute(delete(t.predictions).where(p.request_id.in_(chunk))).rowcount
                conn.execute(delete(t.prediction_entities).where(e.request_id.in_(chunk)))
            feedback = 0
            for start in range(0, len(ids), _INSERT_ROWS):
                chunk = ids[start : start + _INSERT_ROWS]
                feedback += conn.execute(delete(t.prediction_feedback).where(f.request_id.in_(chunk))).rowcount
            if self._sink is not None:
                # Inside the transaction: if a file cannot be rewritten, the index rows stay and a retry finds them.
                for model, model_hits in sorted(by_model.items()):
                    times = [hit.time for hit in model_hits]
                    removed += self._sink.erase_ids(
                        model, [hit.request_id for hit in model_hits], since=min(times), until=max(times) + 1
                    )
            counts = {"predictions": removed, "feedback": feedback}
            append_event(
                conn,
                actor=actor,
                action="predictions.erase",
                target_type="model" if name is not None else "predictions",
                target=name if name is not None else "*",
                after={**counts, "models": sorted(by_model)},
                reason=reason,
            )
        return counts

    def prune_predictions(self, older_than_ms: int, *, actor: str) -> dict[str, int]:
        if isinstance(older_than_ms, bool) or not isinstance(older_than_ms, int) or older_than_ms < 1:
            raise InvalidValueError(f"A retention is a whole number of milliseconds from 1, got {older_than_ms!r}.")
        cutoff = now_ms() - older_than_ms
        e, p, f = t.prediction_entities.c, t.predictions.c, t.prediction_feedback.c
        with write_transaction(self._engine) as conn:
            if self._sink is None:
                removed = conn.execute(delete(t.predictions).where(p.time < cutoff)).rowcount
            else:
                removed = self._sink.prune(cutoff)
            conn.execute(delete(t.prediction_entities).where(e.time < cutoff))
            feedback = conn.execute(delete(t.prediction_feedback).where(f.time < cutoff)).rowcount
            counts = {"predictions" if self._sink is None else "files": removed, "feedback": feedback}
            append_event(
                conn,
                actor=actor,
                action="predictions.prune",
                target_type="predictions",
                target="*",
                after={**counts, "before": cutoff},
            )
        return counts


#: Bytes of bodies bound by one INSERT: binding copies them with the GIL held, so a batch of large
#: bodies goes in several statements and the event loop gets the GIL back between them.
_INSERT_BYTES = 4 * 1024 * 1024


def _insert_chunks(
    packed: Sequence[tuple[str, bytes | None]], records: Sequence[PredictionRecord]
) -> list[tuple[int, int]]:
    """``(start, end)`` of each INSERT: at most ``_INSERT_ROWS`` rows and about ``_INSERT_BYTES`` of bodies."""
    chunks: list[tuple[int, int]] = []
    start = size = 0
    for index, ((inputs, compressed), record) in enumerate(zip(packed, records, strict=True)):
        size += len(inputs) + (len(compressed) if compressed is not None else 0) + len(record.outputs)
        if index + 1 - start >= _INSERT_ROWS or size >= _INSERT_BYTES:
            chunks.append((start, index + 1))
            start, size = index + 1, 0
    if start < len(records):
        chunks.append((start, len(records)))
    return chunks


def _logged_ids(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """The model of each of ``ids`` the prediction log holds (any role)."""
    p = t.predictions.c
    found: dict[str, str] = {}
    for start in range(0, len(ids), _INSERT_ROWS):
        chunk = list(ids[start : start + _INSERT_ROWS])
        for row in conn.execute(select(p.request_id, p.model).where(p.request_id.in_(chunk)).distinct()):
            found[row.request_id] = row.model
    return found


def _apply_policies(
    records: Sequence[PredictionRecord], policies: Mapping[str, LogPolicy]
) -> tuple[Sequence[PredictionRecord], list[list[str]] | None]:
    """``records`` redacted by their model's policy, and each record's entity keys (None: no policy applied).

    Runs in the writer, never on the request path; models without a policy cost one dictionary lookup.
    A large batch is redacted in a helper process (``loopml.store.predictions.redactor``).
    """
    if not policies or not any(r.model in policies for r in records):
        return records, None
    from loopml.store.predictions.redactor import REDACTOR

    governed = [i for i, r in enumerate(records) if (policy := policies.get(r.model)) is not None and not policy.empty]
    redacted = REDACTOR.redact([(records[i].inputs, policies[records[i].model]) for i in governed], redaction_key())
    out: list[PredictionRecord] = list(records)
    keys: list[list[str]] = [[] for _ in records]
    for i, (inputs, found) in zip(governed, redacted, strict=True):
        record = records[i]
        out[i] = record if inputs == record.inputs else replace(record, inputs=inputs)
        keys[i] = [token[:256] for token in found]
    return out, keys


def _entity_rows(records: Sequence[PredictionRecord], keys: list[list[str]] | None) -> list[dict[str, Any]]:
    """The prediction_entities rows of ``records`` (after any renaming of their request ids)."""
    if keys is None:
        return []
    return [
        {"request_id": record.request_id, "model": record.model, "entity_key": token, "time": record.time}
        for record, found in zip(records, keys, strict=True)
        for token in found
    ]


def _unique_in_batch(records: Sequence[PredictionRecord]) -> Sequence[PredictionRecord]:
    """``records`` with a repeated (request id, answer-or-shadow) within the batch stored under a new id."""
    seen: set[tuple[str, bool]] = set()
    renamed: dict[str, str] = {}
    out: list[PredictionRecord] = []
    for record in records:
        shadow = record.role == "shadow"
        rid = renamed.get(record.request_id, record.request_id) if shadow else record.request_id
        if (rid, shadow) in seen:
            rid = f"{record.request_id[:47]}.dup.{secrets.token_hex(6)}"
            if not shadow:
                renamed[record.request_id] = rid
        seen.add((rid, shadow))
        out.append(record if rid == record.request_id else replace(record, request_id=rid))
    return out


def _unique_ids(conn: Connection, records: Sequence[PredictionRecord]) -> Sequence[PredictionRecord]:
    """``records``, each whose request id the log (or an earlier record) holds in its place under a new id.

    A request id has one answer row and at most one shadow row. The service already rewrites an id it
    answered lately (and says so in the answer); this catches what it cannot see: ids from before a
    restart and ids another replica answered. The first answer keeps the id.
    """
    if conn.dialect.name == "postgresql":
        # Replicas write batches at the same time: one writer at a time reads the ids and inserts (readers
        # are not blocked). On SQLite the write transaction's BEGIN IMMEDIATE already does this.
        conn.exec_driver_sql("LOCK TABLE predictions IN SHARE ROW EXCLUSIVE MODE")
    p = t.predictions.c
    ids = sorted({r.request_id for r in records})
    taken: set[tuple[str, bool]] = set()
    for start in range(0, len(ids), _INSERT_ROWS):
        chunk = ids[start : start + _INSERT_ROWS]
        rows = conn.execute(select(p.request_id, p.role).where(p.request_id.in_(chunk)).distinct())
        taken.update((row.request_id, row.role == "shadow") for row in rows)
    renamed: dict[str, str] = {}  # an answer's old id -> its new one, for its shadow later in the batch
    unique: list[PredictionRecord] = []
    changed = 0
    for record in records:
        shadow = record.role == "shadow"
        rid = renamed.get(record.request_id, record.request_id) if shadow else record.request_id
        if (rid, shadow) in taken:
            rid = f"{record.request_id[:47]}.dup.{secrets.token_hex(6)}"
            if not shadow:
                renamed[record.request_id] = rid
        taken.add((rid, shadow))
        if rid == record.request_id:
            unique.append(record)
        else:
            unique.append(replace(record, request_id=rid))
            changed += 1
    if changed:
        logger.warning("Prediction log: %d record(s) whose request id was logged already stored under new ids", changed)
    return unique
