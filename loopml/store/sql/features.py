"""Applied feature definitions in SQL: one row per version, audited in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from loopml.entities.features import FeatureDefinitionRecord
from loopml.errors import FeatureViewNotFoundError, did_you_mean
from loopml.store.features import FeatureStore, check_definitions, check_kind
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import AnyRow, read_transaction, write_transaction
from loopml.timestamps import now_ms

_D = t.feature_definitions
_LABEL = {"entity": "entity", "view": "feature view", "service": "feature service"}


def _record(row: AnyRow, *, changed: bool = False) -> FeatureDefinitionRecord:
    return FeatureDefinitionRecord(
        kind=row.kind,
        name=row.name,
        version=row.version,
        fingerprint=row.fingerprint,
        spec=json.loads(row.spec_json),
        created_at=row.created_at,
        created_by=row.created_by,
        changed=changed,
    )


def _latest(kind: str) -> Any:
    """The subquery of (name, latest version) per definition of ``kind``."""
    return (
        select(_D.c.name, func.max(_D.c.version).label("version"))
        .where(_D.c.kind == kind)
        .group_by(_D.c.name)
        .subquery()
    )


class SqlFeatureStore(FeatureStore):
    """Feature definitions in the metadata database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def apply_feature_definitions(
        self, definitions: Sequence[Mapping[str, Any]], *, actor: str
    ) -> list[FeatureDefinitionRecord]:
        checked = check_definitions(definitions)
        out: list[FeatureDefinitionRecord] = []
        now = now_ms()
        with write_transaction(self._engine) as conn:
            for kind, name, spec, fingerprint, evidence in checked:
                old = conn.execute(
                    select(_D).where(_D.c.kind == kind, _D.c.name == name).order_by(_D.c.version.desc()).limit(1)
                ).first()
                if old is not None and old.fingerprint == fingerprint:
                    out.append(_record(old))
                    continue
                version = 1 if old is None else old.version + 1
                text = json.dumps(spec, sort_keys=True)
                conn.execute(
                    _D.insert().values(
                        kind=kind, name=name, version=version, fingerprint=fingerprint, spec_json=text,
                        created_at=now, created_by=actor,
                    )
                )  # fmt: skip
                append_event(
                    conn,
                    actor=actor,
                    action=f"feature.{kind}.apply",
                    target_type=f"feature_{kind}",
                    target=f"{name}/{version}",
                    before=None if old is None else {"version": old.version, "fingerprint": old.fingerprint},
                    after={"version": version, "fingerprint": fingerprint, "spec": spec},
                    evidence=evidence,
                )
                row = conn.execute(select(_D).where(_D.c.kind == kind, _D.c.name == name, _D.c.version == version))
                out.append(_record(row.one(), changed=True))
        return out

    def get_feature_definition(self, kind: str, name: str, version: int | None = None) -> FeatureDefinitionRecord:
        check_kind(kind)
        query = select(_D).where(_D.c.kind == kind, _D.c.name == name)
        query = (
            query.order_by(_D.c.version.desc()).limit(1) if version is None else query.where(_D.c.version == version)
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
            names = (
                []
                if row is not None
                else conn.execute(select(_D.c.name).where(_D.c.kind == kind).distinct()).scalars().all()
            )
        if row is None:
            what = f"{_LABEL[kind]} {name!r}" + ("" if version is None else f" version {version}")
            raise FeatureViewNotFoundError(f"No {what} has been applied.{did_you_mean(str(name), names)}")
        return _record(row)

    def list_feature_definitions(self, kind: str) -> list[FeatureDefinitionRecord]:
        check_kind(kind)
        latest = _latest(kind)
        query = (
            select(_D)
            .join(latest, (_D.c.name == latest.c.name) & (_D.c.version == latest.c.version))
            .where(_D.c.kind == kind)
            .order_by(_D.c.name)
        )
        with read_transaction(self._engine) as conn:
            return [_record(row) for row in conn.execute(query)]

    def feature_definition_history(self, kind: str, name: str) -> list[FeatureDefinitionRecord]:
        check_kind(kind)
        query = select(_D).where(_D.c.kind == kind, _D.c.name == name).order_by(_D.c.version)
        with read_transaction(self._engine) as conn:
            return [_record(row) for row in conn.execute(query)]

    def feature_definitions_version(self) -> int:
        with read_transaction(self._engine) as conn:
            return int(conn.execute(select(func.max(_D.c.def_id))).scalar() or 0)
