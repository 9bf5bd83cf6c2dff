"""The RegistryStore in SQL: versions numbered under a lock, every change audited in its transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from loopml.entities.registry import (
    MANIFEST_FILE,
    PRODUCTION_ALIAS,
    ModelVersion,
    RegisteredModel,
    RequestStatus,
    Stage,
    TransitionRequest,
)
from loopml.entities.search import Filter
from loopml.errors import (
    AliasNotFoundError,
    ApprovalRequiredError,
    ArtifactNotFoundError,
    InvalidTransitionError,
    InvalidValueError,
    ModelAlreadyExistsError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RequestNotFoundError,
    RunNotFoundError,
    did_you_mean,
)
from loopml.paths import check_artifact_path
from loopml.store.registry import RegistryStore
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import read_transaction, write_transaction
from loopml.store.sql.registry_search import model_filter, version_filter
from loopml.store.sql.search import numeric_value
from loopml.timestamps import now_ms
from loopml.uris import check_alias

_RETRIES = 5
#: Which stage may follow which; the same stage again is never a transition.
ALLOWED: Mapping[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.CANDIDATE, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.CANDIDATE, Stage.STAGING}),
}



class SqlRegistryStore(RegistryStore):
    """Registered models and versions in the metadata database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- models ----------------------------------------------------------------------
    def create_model(
        self, name: str, *, description: str | None, tags: Mapping[str, str], require_approval: bool, actor: str
    ) -> RegisteredModel:
        try:
            with write_transaction(self._engine) as conn:
                self._insert_model(conn, name, description, tags, require_approval, actor)
        except IntegrityError as exc:
            raise ModelAlreadyExistsError(f"A registered model named {name!r} already exists.") from exc
        return self.get_model(name)

    def _insert_model(
        self,
        conn: Connection,
        name: str,
        description: str | None,
        tags: Mapping[str, str],
        require_approval: bool,
        actor: str,
    ) -> None:
        now = now_ms()
        conn.execute(
            t.registered_models.insert().values(
                name=name,
                description=description,
                require_approval=require_approval,
                latest_version=0,
                created_at=now,
                updated_at=now,
            )
        )
        if tags:
            conn.execute(
                t.registered_model_tags.insert(),
                [{"name": name, "key": k, "value": v, "value_num": numeric_value(v)} for k, v in tags.items()],
            )
        append_event(
            conn,
            actor=actor,
            action="model.create",
            target_type="model",
            target=name,
            after={"description": description, "tags": dict(tags), "require_approval": require_approval},
        )

    def get_model(self, name: str) -> RegisteredModel:
        with read_transaction(self._engine) as conn:
            return self._model(conn, name)

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        row = conn.execute(select(t.registered_models).where(t.registered_models.c.name == name)).first()
        if row is None:
            names = conn.execute(select(t.registered_models.c.name).limit(10_000)).scalars().all()
            raise ModelNotFoundError(f"No registered model named {name!r}.{did_you_mean(name, names)}")
        return self._hydrate_models(conn, [row])[0]

    def search_models(self, filter: Filter | None, max_results: int) -> list[RegisteredModel]:
        if not isinstance(max_results, int) or not 1 <= max_results <= 100_000:
            raise InvalidValueError(f"max_results must be an integer from 1 to 100000, got {max_results!r}.")
        query = select(t.registered_models).order_by(t.registered_models.c.name).limit(max_results)
        if filter is not None:
            query = query.where(model_filter(filter))
        with read_transaction(self._engine) as conn:
            return self._hydrate_models(conn, conn.execute(query).all())

    # -- versions ----------------------------------------------------------------------
    def create_version(
        self,
        name: str,
        *,
        run_id: str,
        source: str,
        description: str | None,
        tags: Mapping[str, str],
        actor: str,
    ) -> ModelVersion:
        for attempt in range(_RETRIES):
            try:
                with write_transaction(self._engine) as conn:
                    version = self._next_version(conn, name, run_id, actor)
                    manifest_digest = _manifest_digest(conn, run_id, source)
                    now = now_ms()
                    conn.execute(
                        t.model_versions.insert().values(
                            name=name,
                            version=version,
                            run_id=run_id,
                            source=source,
                            manifest_digest=manifest_digest,
                            stage=Stage.CANDIDATE.value,
                            description=description,
                            evidence_json="{}",
                            created_by=actor,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    if tags:
                        conn.execute(
                            t.model_version_tags.insert(),
                            [
                                {"name": name, "version": version, "key": k, "value": v, "value_num": numeric_value(v)}
                                for k, v in tags.items()
                            ],
                        )
                    append_event(
                        conn,
                        actor=actor,
                        action="model_version.register",
                        target_type="model_version",
                        target=f"{name}/{version}",
                        after={
                            "version": version,
                            "run_id": run_id,
                            "source": source,
                            "stage": "candidate",
                            "manifest_digest": manifest_digest,
                        },
                    )
                return self.get_version(name, version)
            except IntegrityError:
                # Two writers created the model or took the same number at once on PostgreSQL;
                # the transaction rolled back whole, so trying again is safe.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _next_version(self, conn: Connection, name: str, run_id: str, actor: str) -> int:
        if conn.execute(select(t.runs.c.run_id).where(t.runs.c.run_id == run_id)).first() is None:
            raise RunNotFoundError(f"No run with id {run_id!r}.")
        m = t.registered_models
        locked = select(m.c.latest_version).where(m.c.name == name)
        if conn.dialect.name == "postgresql":
            locked = locked.with_for_update()
        latest = conn.execute(locked).scalar()
        if latest is None:
            self._insert_model(conn, name, None, {}, False, actor)
            latest = 0
        version = int(latest) + 1
        conn.execute(m.update().where(m.c.name == name).values(latest_version=version, updated_at=now_ms()))
        return version

    def get_version(self, name: str, version: int) -> ModelVersion:
        with read_transaction(self._engine) as conn:
            return self._version(conn, name, version)

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        v = t.model_versions.c
        row = conn.execute(select(t.model_versions).where(v.name == name, v.version == version)).first()
        if row is None:
            model = self._model(conn, name)  # ModelNotFoundError first
            numbers = conn.execute(select(v.version).where(v.name == name).order_by(v.version)).scalars().all()
            known = ", ".join(map(str, numbers[-10:])) or "none"
            raise ModelVersionNotFoundError(
                f"Model {model.name!r} has no version {version} (versions: {known})."
            )
        return self._hydrate_versions(conn, [row])[0]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with read_transaction(self._engine) as conn:
            a = t.model_aliases.c
            version = conn.execute(select(a.version).where(a.name == name, a.alias == alias)).scalar()
            if version is None:
                self._model(conn, name)
                aliases = conn.execute(select(a.alias).where(a.name == name)).scalars().all()
                known = ", ".join(sorted(aliases)) or "none"
                raise AliasNotFoundError(
                    f"Model {name!r} has no alias {alias!r} (aliases: {known}).{did_you_mean(alias, aliases)}"
                )
            return self._version(conn, name, int(version))

    def list_versions(
        self, name: str, *, stage: Stage | None = None, filter: Filter | None = None
    ) -> list[ModelVersion]:
        v = t.model_versions.c
        query = select(t.model_versions).where(v.name == name).order_by(v.version.desc())
        if stage is not None:
            query = query.where(v.stage == Stage(stage).value)
        if filter is not None:
            query = query.where(version_filter(filter))
        with read_transaction(self._engine) as conn:
            self._model(conn, name)
            return self._hydrate_versions(conn, conn.execute(query).all())

    def versions_of_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]:
        if not run_ids:
            return []
        v = t.model_versions.c
        query = select(t.model_versions).where(v.run_id.in_(list(run_ids))).order_by(v.name, v.version)
        with read_transaction(self._engine) as conn:
            return self._hydrate_versions(conn, conn.execute(query).all())

    # -- aliases ------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int, *, actor: str, reason: str | None) -> ModelVersion:
        check_alias(alias)
        with write_transaction(self._engine) as conn:
            current = self._version(conn, name, version)
            if alias == PRODUCTION_ALIAS:
                self.require_approved(conn, name, [version], f"become @{PRODUCTION_ALIAS} (production)")
            elif _served_alias(conn, name, alias):
                self.require_approved(conn, name, [version], f"be served through @{alias}, which a deployment follows")
            self._point(conn, name, alias, version, actor=actor, reason=reason)
            if alias == PRODUCTION_ALIAS and current.stage is not Stage.PRODUCTION:
                # the stage is derived from the alias: promoting is one write, never two that can disagree
                self._set_stage(conn, name, current, Stage.PRODUCTION, actor=actor, archive_existing=True,
                                reason=f"@{PRODUCTION_ALIAS} moved to version {version}" + (f": {reason}" if reason else ""))  # fmt: skip
        return self.get_version(name, version)

    @staticmethod
    def _point(conn: Connection, name: str, alias: str, version: int, *, actor: str, reason: str | None) -> None:
        """Point ``alias`` at ``version`` (audited as ``alias.set`` or ``alias.move``); nothing when it already does."""
        a = t.model_aliases.c
        previous = conn.execute(select(a.version).where(a.name == name, a.alias == alias)).scalar()
        if previous is not None and int(previous) == version:
            return
        if previous is None:
            conn.execute(t.model_aliases.insert().values(name=name, alias=alias, version=version))
        else:
            conn.execute(t.model_aliases.update().where(a.name == name, a.alias == alias).values(version=version))
        append_event(
            conn,
            actor=actor,
            action="alias.set" if previous is None else "alias.move",
            target_type="alias",
            target=f"{name}@{alias}",
            before=None if previous is None else {"version": int(previous)},
            after={"version": version},
            reason=reason,
        )

    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str | None) -> None:
        with write_transaction(self._engine) as conn:
            a = t.model_aliases.c
            previous = conn.execute(select(a.version).where(a.name == name, a.alias == alias)).scalar()
            if previous is None:
                self._model(conn, name)
                raise AliasNotFoundError(f"Model {name!r} has no alias {alias!r}.")
            conn.execute(t.model_aliases.delete().where(a.name == name, a.alias == alias))
            append_event(
                conn,
                actor=actor,
                action="alias.delete",
                target_type="alias",
                target=f"{name}@{alias}",
                before={"version": int(previous)},
                reason=reason,
            )

    # -- lifecycle ------------------------------------------------------------------------
    def transition(
        self,
        name: str,
        version: int,
        to_stage: Stage,
        *,
        actor: str,
        reason: str | None,
        archive_existing: bool,
        request_id: int | None = None,
    ) -> ModelVersion:
        to_stage = Stage(to_stage)
        with write_transaction(self._engine) as conn:
            current = self._version(conn, name, version)
            if to_stage not in ALLOWED[current.stage]:
                allowed = ", ".join(sorted(s.value for s in ALLOWED[current.stage]))
                raise InvalidTransitionError(
                    f"{name}/{version} is {current.stage.value}; it can move to {allowed}, not {to_stage.value}."
                )
            if request_id is not None:
                self._apply_request(conn, request_id, name, version, to_stage)
            elif to_stage is Stage.PRODUCTION:
                self.require_approved(conn, name, [version], "move to production")
            a = t.model_aliases.c
            champion = conn.execute(select(a.version).where(a.name == name, a.alias == PRODUCTION_ALIAS)).scalar()
            if to_stage is not Stage.PRODUCTION and champion is not None and int(champion) == version:
                raise InvalidTransitionError(
                    f"{name}/{version} is @{PRODUCTION_ALIAS}, so it is in production; move @{PRODUCTION_ALIAS} to "
                    "another version first (set_alias), which archives this one."
                )
            self._set_stage(conn, name, current, to_stage, actor=actor, archive_existing=archive_existing,
                            reason=reason, request_id=request_id)  # fmt: skip
            if to_stage is Stage.PRODUCTION:
                self._point(conn, name, PRODUCTION_ALIAS, version, actor=actor,
                            reason=f"version {version} moved to production" + (f": {reason}" if reason else ""))  # fmt: skip
        return self.get_version(name, version)

    @staticmethod
    def _set_stage(
        conn: Connection,
        name: str,
        current: ModelVersion,
        to_stage: Stage,
        *,
        actor: str,
        archive_existing: bool,
        reason: str | None,
        request_id: int | None = None,
    ) -> None:
        """Move ``current`` to ``to_stage`` (archiving the other production versions), each move audited."""
        version = current.version
        v = t.model_versions.c
        now = now_ms()
        if to_stage is Stage.PRODUCTION and archive_existing:
            superseded = conn.execute(
                select(v.version).where(v.name == name, v.stage == Stage.PRODUCTION.value, v.version != version)
            ).scalars().all()
            for old in superseded:
                conn.execute(
                    t.model_versions.update()
                    .where(v.name == name, v.version == old)
                    .values(stage=Stage.ARCHIVED.value, updated_at=now)
                )
                append_event(
                    conn,
                    actor=actor,
                    action="model_version.transition",
                    target_type="model_version",
                    target=f"{name}/{old}",
                    before={"stage": "production"},
                    after={"stage": "archived"},
                    reason=f"superseded by version {version}",
                )
        conn.execute(
            t.model_versions.update()
            .where(v.name == name, v.version == version)
            .values(stage=to_stage.value, updated_at=now)
        )
        append_event(
            conn,
            actor=actor,
            action="model_version.transition",
            target_type="model_version",
            target=f"{name}/{version}",
            before={"stage": current.stage.value},
            after={"stage": to_stage.value, **({"request_id": request_id} if request_id else {})},
            reason=reason,
        )

    def require_approved(self, conn: Connection, name: str, versions: Sequence[int], what: str) -> None:
        """ApprovalRequiredError unless each version may be served: the model needs no approval, or the
        version has a production request that another person approved (approved or applied)."""
        if not self._model(conn, name).require_approval:
            return
        r = t.transition_requests.c
        wanted = sorted(set(versions))
        approved = set(
            conn.execute(
                select(r.version).where(
                    r.name == name,
                    r.version.in_(wanted),
                    r.to_stage == Stage.PRODUCTION.value,
                    r.status.in_([RequestStatus.APPROVED.value, RequestStatus.APPLIED.value]),
                )
            ).scalars()
        )
        missing = [v for v in wanted if v not in approved]
        if missing:
            listed = ", ".join(map(str, missing))
            raise ApprovalRequiredError(
                f"Model {name!r} requires approval: version {listed} cannot {what} before a request to move it "
                f"to production is approved (request_transition({name!r}, {missing[0]}, 'production'), then "
                "another person approves it)."
            )

    def _apply_request(self, conn: Connection, request_id: int, name: str, version: int, to_stage: Stage) -> None:
        r = t.transition_requests.c
        row = conn.execute(select(t.transition_requests).where(r.request_id == request_id)).first()
        if row is None or (row.name, row.version, row.to_stage) != (name, version, to_stage.value):
            raise InvalidTransitionError(f"Request {request_id} is not a request to move {name}/{version} to {to_stage}.")
        if row.status != RequestStatus.APPROVED.value:
            raise InvalidTransitionError(f"Request {request_id} is {row.status}, not approved.")
        conn.execute(
            t.transition_requests.update().where(r.request_id == request_id).values(status=RequestStatus.APPLIED.value)
        )

    # -- approvals ------------------------------------------------------------------------
    def create_request(
        self, name: str, version: int, to_stage: Stage, *, actor: str, comment: str | None
    ) -> TransitionRequest:
        to_stage = Stage(to_stage)
        with write_transaction(self._engine) as conn:
            current = self._version(conn, name, version)
            if to_stage not in ALLOWED[current.stage]:
                raise InvalidTransitionError(f"{name}/{version} is {current.stage.value}; it cannot move to {to_stage.value}.")
            now = now_ms()
            request_id = conn.execute(
                t.transition_requests.insert()
                .values(
                    name=name,
                    version=version,
                    to_stage=to_stage.value,
                    status=RequestStatus.PENDING.value,
                    requested_by=actor,
                    requested_at=now,
                    comment=comment,
                )
                .returning(t.transition_requests.c.request_id)
            ).scalar_one()
            append_event(
                conn,
                actor=actor,
                action="request.create",
                target_type="model_version",
                target=f"{name}/{version}",
                after={"request_id": int(request_id), "to_stage": to_stage.value},
                reason=comment,
            )
        return self._request(int(request_id))

    def decide_request(self, request_id: int, *, approve: bool, actor: str, comment: str | None) -> TransitionRequest:
        r = t.transition_requests.c
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(t.transition_requests).where(r.request_id == request_id)).first()
            if row is None:
                raise RequestNotFoundError(f"No transition request with id {request_id}.")
            if row.status != RequestStatus.PENDING.value:
                raise InvalidTransitionError(f"Request {request_id} was already decided ({row.status}).")
            if approve and row.requested_by == actor:
                raise InvalidTransitionError(
                    f"{actor!r} requested this transition and cannot approve it too; another person must approve."
                )
            status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
            conn.execute(
                t.transition_requests.update()
                .where(r.request_id == request_id)
                .values(status=status.value, decided_by=actor, decided_at=now_ms(), decision_comment=comment)
            )
            append_event(
                conn,
                actor=actor,
                action="request.approve" if approve else "request.reject",
                target_type="model_version",
                target=f"{row.name}/{row.version}",
                before={"request_id": request_id, "status": "pending"},
                after={"request_id": request_id, "status": status.value, "to_stage": row.to_stage},
                reason=comment,
            )
        return self._request(request_id)

    def list_requests(
        self, name: str, *, version: int | None = None, status: RequestStatus | None = None
    ) -> list[TransitionRequest]:
        r = t.transition_requests.c
        query = select(t.transition_requests).where(r.name == name).order_by(r.request_id.desc())
        if version is not None:
            query = query.where(r.version == version)
        if status is not None:
            query = query.where(r.status == RequestStatus(status).value)
        with read_transaction(self._engine) as conn:
            self._model(conn, name)
            return [_request(row) for row in conn.execute(query).all()]

    def _request(self, request_id: int) -> TransitionRequest:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(t.transition_requests).where(t.transition_requests.c.request_id == request_id)
            ).one()
        return _request(row)

    # -- evidence and deletion ------------------------------------------------------------
    def set_evidence(self, name: str, version: int, evidence: Mapping[str, Any], *, actor: str) -> ModelVersion:
        try:
            text = json.dumps(evidence, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"Evidence must be JSON-serialisable: {exc}") from exc
        with write_transaction(self._engine) as conn:
            before = self._version(conn, name, version).evidence
            v = t.model_versions.c
            conn.execute(
                t.model_versions.update()
                .where(v.name == name, v.version == version)
                .values(evidence_json=text, updated_at=now_ms())
            )
            append_event(
                conn,
                actor=actor,
                action="model_version.evidence",
                target_type="model_version",
                target=f"{name}/{version}",
                before=dict(before) or None,
                after=None,
                evidence=json.loads(text),
            )
        return self.get_version(name, version)

    def delete_version(self, name: str, version: int, *, actor: str, reason: str | None) -> None:
        with write_transaction(self._engine) as conn:
            current = self._version(conn, name, version)
            v, a, vt = t.model_versions.c, t.model_aliases.c, t.model_version_tags.c
            conn.execute(t.model_aliases.delete().where(a.name == name, a.version == version))
            conn.execute(t.model_version_tags.delete().where(vt.name == name, vt.version == version))
            conn.execute(t.model_versions.delete().where(v.name == name, v.version == version))
            append_event(
                conn,
                actor=actor,
                action="model_version.delete",
                target_type="model_version",
                target=f"{name}/{version}",
                before={"stage": current.stage.value, "run_id": current.run_id, "aliases": list(current.aliases)},
                reason=reason,
            )

    # -- hydration --------------------------------------------------------------------------
    @staticmethod
    def _hydrate_models(conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        names = [r.name for r in rows]
        tags: dict[str, dict[str, str]] = {n: {} for n in names}
        aliases: dict[str, dict[str, int]] = {n: {} for n in names}
        if names:
            mt = t.registered_model_tags.c
            for r in conn.execute(select(mt.name, mt.key, mt.value).where(mt.name.in_(names))):
                tags[r.name][r.key] = r.value
            a = t.model_aliases.c
            for r in conn.execute(select(a.name, a.alias, a.version).where(a.name.in_(names)).order_by(a.alias)):
                aliases[r.name][r.alias] = r.version
        return [
            RegisteredModel(
                name=r.name,
                description=r.description,
                require_approval=bool(r.require_approval),
                created_at=r.created_at,
                updated_at=r.updated_at,
                latest_version=r.latest_version,
                tags=MappingProxyType(tags[r.name]),
                aliases=MappingProxyType(aliases[r.name]),
            )
            for r in rows
        ]

    @staticmethod
    def _hydrate_versions(conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        keys = {(r.name, r.version) for r in rows}
        names = sorted({name for name, _ in keys})
        tags: dict[tuple[str, int], dict[str, str]] = {k: {} for k in keys}
        aliases: dict[tuple[str, int], list[str]] = {k: [] for k in keys}
        if names:
            vt = t.model_version_tags.c
            for r in conn.execute(select(vt.name, vt.version, vt.key, vt.value).where(vt.name.in_(names))):
                if (r.name, r.version) in tags:
                    tags[(r.name, r.version)][r.key] = r.value
            a = t.model_aliases.c
            for ar in conn.execute(select(a.name, a.alias, a.version).where(a.name.in_(names)).order_by(a.alias)):
                if (ar.name, ar.version) in aliases:
                    aliases[(ar.name, ar.version)].append(ar.alias)
        return [
            ModelVersion(
                name=r.name,
                version=r.version,
                run_id=r.run_id,
                source=r.source,
                stage=Stage(r.stage),
                description=r.description,
                created_at=r.created_at,
                updated_at=r.updated_at,
                created_by=r.created_by,
                tags=MappingProxyType(tags[(r.name, r.version)]),
                aliases=tuple(aliases[(r.name, r.version)]),
                evidence=MappingProxyType(json.loads(r.evidence_json)),
                manifest_digest=r.manifest_digest,
            )
            for r in rows
        ]


def _request(row: Any) -> TransitionRequest:
    return TransitionRequest(
        request_id=int(row.request_id),
        name=row.name,
        version=row.version,
        to_stage=Stage(row.to_stage),
        status=RequestStatus(row.status),
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        comment=row.comment,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_comment=row.decision_comment,
    )


def _manifest_digest(conn: Connection, run_id: str, source: str) -> str:
    """The sha256 of the manifest that ``source`` (``runs:/<run_id>/<path>``) names now: the version's pin.

    Read in the registering transaction, so the pin is what the index held at
    registration; the client's own check before it is only for a kinder message.
    """
    prefix = f"runs:/{run_id}/"
    if not source.startswith(prefix):
        raise InvalidValueError(f"A version's source must be {prefix}<model path>, got {source!r}.")
    path = check_artifact_path(source[len(prefix) :])
    a = t.artifacts.c
    digest = conn.execute(
        select(a.digest).where(a.run_id == run_id, a.path == f"{path}/{MANIFEST_FILE}")
    ).scalar()
    if digest is None:
        raise ArtifactNotFoundError(f"Run {run_id} has no packaged model at {path!r}.")
    return str(digest)


def _served_alias(conn: Connection, name: str, alias: str) -> bool:
    """Whether the model's current deployment follows ``alias`` (moving it changes what is served)."""
    d = t.deployments.c
    latest = select(d.deployment_id).where(d.name == name).order_by(d.deployment_id.desc()).limit(1).scalar_subquery()
    target = conn.execute(select(d.target).where(d.deployment_id == latest)).scalar()
    return target == alias
