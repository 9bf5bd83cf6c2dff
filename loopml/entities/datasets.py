"""Datasets recorded by content hash, with their schema and column profile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Summary of one column: its type, missing count and value statistics.

    Numeric columns fill ``min``/``max``/``mean``/``std``; other columns fill
    ``top`` with up to five ``(value, count)`` pairs, most frequent first.
    """

    name: str
    dtype: str
    n_missing: int
    n_unique: int | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    top: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "n_missing": self.n_missing,
            "n_unique": self.n_unique,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "top": [list(pair) for pair in self.top],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            n_missing=int(data["n_missing"]),
            n_unique=data.get("n_unique"),
            min=data.get("min"),
            max=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            top=tuple((str(v), int(c)) for v, c in data.get("top", ())),
        )


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset identified by the sha256 of its canonical serialisation.

    ``schema`` maps column name to dtype string, in column order. ``source``
    says where it came from (``pandas``, ``numpy`` or a file path);
    ``storage_digest`` is the artifact holding its bytes, if they were stored.
    """

    digest: str
    name: str
    source: str
    n_rows: int
    schema: Mapping[str, str]
    profile: tuple[ColumnProfile, ...]
    storage_digest: str | None
    storage_format: str | None
    created_at: int

    @property
    def ref(self) -> str:
        """The identifier users type: ``name@<first 12 hex of the digest>``."""
        return f"{self.name}@{self.digest[:12]}"
