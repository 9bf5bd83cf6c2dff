"""The online store contract: the latest feature values per entity key, read in one round trip.

An online store keeps, for each (feature view, entity key), one row: the feature values and the event time they
were observed at. It promises:

- **newest wins**: ``write`` replaces a key's row only when the new event time is not older than the stored one,
  so replaying a materialization, or pushing while materializing, never moves a key back in time (an equal time
  replaces, which makes replays idempotent and lets a push correct a value it got wrong);
- **atomic per key, per call**: each ``write`` call is one transaction (SQLite) or one server-side script (Redis),
  so a failure leaves every key either as it was or consistently at its new row, never half-written;
- **one round trip**: ``read`` answers many views and many keys with one query or one pipeline, so a request's
  cost does not grow with the number of views in the registry.

Values are encoded compactly (orjson) with the event time beside them; the caller (``loopml.features.online``)
decides freshness against each view's ttl. The materialized-up-to watermark of each view is kept in the online
store itself, next to the data it describes: a flushed Redis resets both together, so an incremental
materialization then starts from the beginning instead of trusting a watermark that no longer holds.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

#: The values of a view's join keys, in the view's join-key order.
EntityKey = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class OnlineRow:
    """One stored row: the feature values of one entity key in one view, and when they were observed."""

    values: dict[str, Any]
    event_time: datetime


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Rows for one view: ``keys[i]`` gets ``values[i]`` observed at ``event_times[i]`` (UTC microseconds)."""

    view: str
    join_keys: tuple[str, ...]
    keys: Sequence[EntityKey]
    values: Sequence[Mapping[str, Any]]
    event_times: Sequence[int]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """Keys to read from one view (its join-key names, so backends can address keys shared across views)."""

    view: str
    join_keys: tuple[str, ...]
    keys: Sequence[EntityKey]


class OnlineStore(ABC):
    """Latest feature values per (view, entity key); see the module docstring for the promises."""

    #: Where the store lives, printable: never holds a password.
    url: str

    @abstractmethod
    def write(self, batch: WriteBatch) -> int:
        """Store the rows of ``batch`` atomically; return how many keys were replaced or added.

        Keys whose stored row is newer keep it. Raises OnlineStoreError when the store cannot be reached.
        """

    @abstractmethod
    def read(self, requests: Sequence[ReadRequest]) -> list[list[OnlineRow | None]]:
        """The stored rows for every request's keys, in order (``None`` where a key has none), in one round trip."""

    @abstractmethod
    def get_watermark(self, view: str) -> datetime | None:
        """The event time up to which ``view`` was materialized (exclusive), or ``None`` if never."""

    @abstractmethod
    def set_watermark(self, view: str, until: datetime) -> None:
        """Record that ``view`` is materialized up to ``until``; never moves an existing watermark back."""

    @abstractmethod
    def delete_view(self, view: str) -> None:
        """Drop every row and the watermark of ``view`` (used when a view is removed or re-keyed)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""


# -- encoding shared by the backends ---------------------------------------------------------------------------


def encode_key(join_keys: Sequence[str], key: EntityKey) -> bytes:
    """A stable byte string for an entity key: its join-key names and JSON values (``42`` and ``"42"`` differ)."""
    return ",".join(join_keys).encode() + b"=" + orjson.dumps(list(key), default=_default, option=_OPTIONS)


def encode_values(values: Mapping[str, Any]) -> bytes:
    """Feature values as compact JSON bytes (orjson); timestamps as ISO strings (naive = UTC), NaN/NA as null.

    orjson writes Python and numpy scalars, NaN (as null) and datetimes itself; only what it does not know
    (pandas NA/NaT and Timestamps, numpy datetimes) goes through :func:`plain`.
    """
    return orjson.dumps(values if type(values) is dict else dict(values), default=_default, option=_OPTIONS)


_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    converted = plain(value)
    if converted is value:
        raise TypeError(f"cannot store a {type(value).__name__} as a feature value")
    return converted


def decode_values(payload: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_values`."""
    decoded: dict[str, Any] = orjson.loads(payload)
    return decoded


def plain(value: Any) -> Any:
    """A JSON-ready Python scalar for a numpy/pandas scalar; ``None`` for missing values (NaN, NaT, NA)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, datetime):  # naive datetimes are UTC, as everywhere in the feature store
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item):  # numpy scalars
        return plain(item())
    try:
        missing = bool(value != value)  # NaN-like: NaT
    except TypeError:  # pandas.NA refuses bool()
        return None
    return None if missing else value


def to_micros(moment: datetime) -> int:
    """UTC microseconds since the epoch for an aware datetime (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The inverse of :func:`to_micros`: an aware UTC datetime."""
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
