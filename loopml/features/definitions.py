"""Feature definitions in plain Python, with the names Feast users know.

``Entity`` names the join keys, ``FeatureView`` says where the values of some
features live (a ``Source``), which column carries their event time and how
long a value stays valid (``ttl``); ``FeatureService`` groups views (or a
projection of some of their features) that a model uses together.

Every definition turns into canonical JSON (``to_dict``); its sha256
(``fingerprint``) decides versions: applying a definition whose fingerprint
differs from the latest applied one stores a new version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from loopml.errors import FeatureDefinitionError

if TYPE_CHECKING:
    from loopml.features.sources import Source

#: The dtypes a schema may declare, as written by users.
DTYPES = ("int64", "int32", "float64", "float32", "string", "bool", "timestamp")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TTL_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)")
_TTL_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def check_name(name: Any, what: str) -> str:
    """``name`` if it is an identifier (letters, digits, ``_``; at most 128); FeatureDefinitionError otherwise.

    Names end up quoted in SQL, in Redis keys and in column names, so one plain grammar serves all.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeatureDefinitionError(
            f"{what} {name!r} is not a valid name: use letters, digits and '_' (not first), at most 128 characters."
        )
    return name


def parse_ttl(ttl: Any, *, view: str = "") -> timedelta:
    """A positive ``timedelta`` from ``"30d"``, ``"1d12h"``, ``"90m"``, ``"2w"``, ``"45s"``, seconds or a timedelta."""
    where = f" of feature view {view!r}" if view else ""
    if isinstance(ttl, timedelta):
        value = ttl
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        value = timedelta(seconds=float(ttl))
    elif isinstance(ttl, str):
        text = ttl.strip().lower()
        parts = _TTL_PART.findall(text)
        if not text or _TTL_PART.sub("", text).strip():
            raise FeatureDefinitionError(
                f"ttl{where} {ttl!r} does not parse: write a duration such as '30d', '12h', '1d12h', '90m' or '45s'."
            )
        value = timedelta(seconds=sum(float(n) * _TTL_UNITS[u] for n, u in parts))
    else:
        raise FeatureDefinitionError(f"ttl{where} must be a duration string or a timedelta, got {type(ttl).__name__}.")
    if value <= timedelta(0):
        raise FeatureDefinitionError(f"ttl{where} must be positive, got {ttl!r}.")
    return value


def format_ttl(ttl: timedelta) -> str:
    """The canonical text of ``ttl`` (whole seconds as ``<n>s``, else milliseconds) for JSON and fingerprints."""
    ms = round(ttl.total_seconds() * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _digest(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Entity:
    """What features are about (a customer, a driver), identified by its join keys."""

    name: str
    join_keys: list[str]
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "Entity")
        if isinstance(self.join_keys, str) or not isinstance(self.join_keys, Sequence) or not self.join_keys:
            raise FeatureDefinitionError(f"Entity {self.name!r} needs join_keys, a non-empty list of column names.")
        keys = [check_name(k, f"Join key of entity {self.name!r}") for k in self.join_keys]
        if len(set(keys)) != len(keys):
            raise FeatureDefinitionError(f"Entity {self.name!r} lists a join key twice: {keys}.")
        object.__setattr__(self, "join_keys", keys)

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form."""
        return {"name": self.name, "join_keys": list(self.join_keys), "description": self.description}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        return cls(name=data["name"], join_keys=list(data["join_keys"]), description=data.get("description", ""))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON."""
        return _digest(self.to_dict())


@dataclass(frozen=True)
class FeatureViewProjection:
    """Some of a view's features (``view[["a", "b"]]``), as listed in a FeatureService."""

    view: FeatureView
    features: list[str]

    @property
    def name(self) -> str:
        return self.view.name


class FeatureView:
    """Features that share entities, a source, an event-time column and a ttl.

    ``ttl`` bounds how old a value may be and still count: a point-in-time join
    returns the latest value at or before the entity row's time and no older
    than ``ttl`` (a value exactly ``ttl`` old counts), nulls otherwise.
    """

    __slots__ = ("description", "entities", "name", "schema", "source", "tags", "timestamp", "ttl")

    name: str
    entities: list[Entity]
    source: Source
    timestamp: str
    ttl: timedelta
    schema: dict[str, str]
    description: str
    tags: dict[str, str]

    def __init__(
        self,
        name: str,
        entities: Sequence[Entity],
        source: Source,
        *,
        timestamp: str = "event_time",
        ttl: str | timedelta | int | float,
        schema: Mapping[str, str],
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        from loopml.features.sources import Source

        check_name(name, "Feature view")
        if isinstance(entities, Entity) or not entities or not all(isinstance(e, Entity) for e in entities):
            raise FeatureDefinitionError(f"Feature view {name!r} needs entities, a non-empty list of Entity.")
        if not isinstance(source, Source):
            raise FeatureDefinitionError(
                f"Feature view {name!r}: source must be a FileSource, DataFrameSource or SqlSource, "
                f"got {type(source).__name__}."
            )
        check_name(timestamp, f"Timestamp column of feature view {name!r}")
        if not isinstance(schema, Mapping) or not schema:
            raise FeatureDefinitionError(f"Feature view {name!r} needs a schema: {{feature name: dtype}}.")
        keys: list[str] = []
        for entity in entities:
            for key in entity.join_keys:
                if key in keys:
                    raise FeatureDefinitionError(f"Feature view {name!r}: join key {key!r} comes from two entities.")
                keys.append(key)
        clean: dict[str, str] = {}
        for feature, dtype in schema.items():
            check_name(feature, f"Feature of view {name!r}")
            if feature in keys or feature == timestamp:
                raise FeatureDefinitionError(
                    f"Feature view {name!r}: {feature!r} is a join key or the timestamp column, not a feature."
                )
            if dtype not in DTYPES:
                raise FeatureDefinitionError(
                    f"Feature view {name!r}: feature {feature!r} has dtype {dtype!r}; use one of {', '.join(DTYPES)}."
                )
            clean[feature] = dtype
        if timestamp in keys:
            raise FeatureDefinitionError(f"Feature view {name!r}: the timestamp column {timestamp!r} is a join key.")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "entities", list(entities))
        set_(self, "source", source)
        set_(self, "timestamp", timestamp)
        set_(self, "ttl", parse_ttl(ttl, view=name))
        set_(self, "schema", clean)
        set_(self, "description", str(description))
        set_(self, "tags", {str(k): str(v) for k, v in (tags or {}).items()})

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"FeatureView is immutable; build a new one to change {key!r}.")

    @property
    def join_keys(self) -> list[str]:
        """Every entity's join keys, in order."""
        return [key for entity in self.entities for key in entity.join_keys]

    @property
    def features(self) -> list[str]:
        """The feature names, in schema order."""
        return list(self.schema)

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        if isinstance(features, str):
            features = [features]
        missing = [f for f in features if f not in self.schema]
        if missing:
            raise FeatureDefinitionError(f"Feature view {self.name!r} has no feature {missing[0]!r}.")
        return FeatureViewProjection(self, list(features))

    def __repr__(self) -> str:
        return f"FeatureView(name={self.name!r}, join_keys={self.join_keys}, features={self.features})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureView) and other.fingerprint() == self.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form (the source by reference: a path, a query, a DataFrame's content hash)."""
        return {
            "name": self.name,
            "entities": [e.to_dict() for e in self.entities],
            "source": self.source.to_dict(),
            "timestamp": self.timestamp,
            "ttl": format_ttl(self.ttl),
            "schema": dict(self.schema),
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureView:
        """Rebuild a view from ``to_dict``'s form (a DataFrame source only in the process that applied it)."""
        from loopml.features.sources import source_from_dict

        return cls(
            data["name"],
            [Entity.from_dict(e) for e in data["entities"]],
            source_from_dict(data["source"]),
            timestamp=data["timestamp"],
            ttl=data["ttl"],
            schema=data["schema"],
            description=data.get("description", ""),
            tags=data.get("tags") or {},
        )

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: equal definitions, equal fingerprints."""
        return _digest(self.to_dict())


@dataclass(frozen=True)
class FeatureService:
    """The features one model uses, from one or more views, under one name."""

    name: str
    features: list[FeatureView | FeatureViewProjection]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.name, "Feature service")
        if not self.features or not all(isinstance(f, (FeatureView, FeatureViewProjection)) for f in self.features):
            raise FeatureDefinitionError(
                f"Feature service {self.name!r} needs features: a list of FeatureView or view[['feature', ...]]."
            )
        seen: set[str] = set()
        for item in self.features:
            if item.name in seen:
                raise FeatureDefinitionError(f"Feature service {self.name!r} lists view {item.name!r} twice.")
            seen.add(item.name)
        object.__setattr__(self, "features", list(self.features))
        object.__setattr__(self, "tags", {str(k): str(v) for k, v in self.tags.items()})

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def projections(self) -> list[tuple[str, list[str]]]:
        """(view name, feature names) for every view the service draws on, in order."""
        return [(item.name, list(item.features)) for item in self.features]

    @property
    def views(self) -> list[FeatureView]:
        """The views the service draws on, in order."""
        return [item.view if isinstance(item, FeatureViewProjection) else item for item in self.features]

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form: the views by name with their features (not the views' definitions)."""
        return {
            "name": self.name,
            "features": [{"view": view, "features": features} for view, features in self.projections()],
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON."""
        return _digest(self.to_dict())


@dataclass(frozen=True)
class ServiceSpec:
    """A feature service as stored: the views by name with their features, without the views' definitions."""

    name: str
    features: list[tuple[str, list[str]]]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceSpec:
        return cls(
            name=data["name"],
            features=[(item["view"], list(item["features"])) for item in data["features"]],
            description=data.get("description", ""),
            tags=dict(data.get("tags") or {}),
        )

    def projections(self) -> list[tuple[str, list[str]]]:
        """(view name, feature names), in order."""
        return [(view, list(features)) for view, features in self.features]


Definition = Entity | FeatureView | FeatureService
