"""Data contracts: a versioned spec of a source's columns and constraints, checked in one call.

A contract is written in YAML, JSON or Python and turned into the checks of
``loopml.validation.checks``; ``contract.validate(frame)`` reports every
violation at once and names the contract as ``name@version`` in the report,
so a failed step says which promise the data broke::

    name: transactions
    version: "3"
    description: Card transactions from the payments export.
    columns:
      id:       {dtype: int, nullable: false, unique: true}
      amount:   {dtype: float, min: 0}
      currency: {dtype: text, allowed: [EUR, USD]}
      comment:  {dtype: text, max_missing_share: 0.2}
      ts:       {dtype: datetime, nullable: false}
    rows: {min: 1000}
    unique: [[id, ts]]
    freshness: {column: ts, max_age: 2d}
    allow_extra_columns: true

A column is nullable unless ``nullable: false``; ``max_missing_share`` bounds
the share of missing values instead. Reading YAML needs PyYAML.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loopml.errors import InvalidValueError
from loopml.validation.checks import (
    Check,
    ValidationReport,
    allowed_values,
    check_kind,
    freshness,
    in_range,
    missing_share,
    parse_age,
    row_count,
    schema,
    unique,
    validate_data,
)

_COLUMN_KEYS = {"dtype", "nullable", "max_missing_share", "min", "max", "allowed", "unique", "description"}
_TOP_KEYS = {"name", "version", "description", "columns", "rows", "unique", "freshness", "allow_extra_columns"}


@dataclass(frozen=True)
class ColumnContract:
    """What one column promises."""

    name: str
    dtype: str | None = None
    nullable: bool = True
    max_missing_share: float | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    unique: bool = False
    description: str = ""


@dataclass(frozen=True)
class DataContract:
    """A named, versioned set of promises about a dataset (see the module docstring for the format).

    Example:
        >>> contract = DataContract.load("contracts/transactions.yaml")   # doctest: +SKIP
        >>> contract.validate(frame)                                       # doctest: +SKIP
    """

    name: str
    version: str
    columns: tuple[ColumnContract, ...]
    description: str = ""
    min_rows: int | None = None
    max_rows: int | None = None
    unique: tuple[tuple[str, ...], ...] = ()
    freshness: tuple[str, str | float] | None = None
    allow_extra_columns: bool = True

    @property
    def ref(self) -> str:
        """``name@version``, as reports name the contract."""
        return f"{self.name}@{self.version}"

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the spec: two contracts with one ref but other rules differ here."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()

    # -- reading ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> DataContract:
        """Build from a parsed spec; InvalidValueError lists every problem in it at once."""
        problems: list[str] = []
        if not isinstance(spec, Mapping):
            raise InvalidValueError(f"A data contract is a mapping, got {type(spec).__name__}.")
        for key in sorted(set(spec) - _TOP_KEYS):
            problems.append(f"unknown key {key!r} (known: {', '.join(sorted(_TOP_KEYS))})")
        name, version = spec.get("name"), spec.get("version")
        if not isinstance(name, str) or not name.strip():
            problems.append("'name' must be a non-empty string")
        if not isinstance(version, str | int) or isinstance(version, bool) or not str(version).strip():
            problems.append('\'version\' must be a string such as "1" or "2024-06"')
        columns = _columns(spec.get("columns"), problems)
        rows = spec.get("rows") or {}
        if not isinstance(rows, Mapping) or set(rows) - {"min", "max"}:
            problems.append("'rows' takes {min: N, max: N}")
            rows = {}
        for key in ("min", "max"):
            value = rows.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                problems.append(f"'rows' {key} must be a whole number >= 0, got {value!r}")
                rows = {}
        if rows.get("min") is not None and rows.get("max") is not None and rows["min"] > rows["max"]:
            problems.append(f"'rows' min {rows['min']} is above max {rows['max']}")
        keys: list[tuple[str, ...]] = []
        groups = spec.get("unique") or []
        if isinstance(groups, str):  # one column: unique: id
            groups = [groups]
        if not isinstance(groups, list | tuple):
            problems.append(f"'unique' is a list of column names or of lists of them, not {groups!r}")
            groups = []
        for item in groups:
            group = (item,) if isinstance(item, str) else tuple(item) if isinstance(item, list | tuple) else ()
            if not group or not all(isinstance(c, str) for c in group):
                problems.append(f"'unique' holds column names or lists of them, not {item!r}")
            else:
                keys.append(group)
        fresh = spec.get("freshness")
        fresh_pair = None
        if fresh is not None:
            if not isinstance(fresh, Mapping) or set(fresh) != {"column", "max_age"}:
                problems.append("'freshness' takes {column: name, max_age: 2d}")
            elif not isinstance(fresh["column"], str) or not fresh["column"]:
                problems.append(f"freshness: column must be a column name, got {fresh['column']!r}")
            else:
                try:
                    parse_age(fresh["max_age"])
                    fresh_pair = (fresh["column"], _age_spec(fresh["max_age"]))
                except InvalidValueError as exc:
                    problems.append(f"freshness: {exc}")
        extra = spec.get("allow_extra_columns", True)
        if not isinstance(extra, bool):
            problems.append(f"'allow_extra_columns' must be true or false, got {extra!r}")
        if problems:
            label = name if isinstance(name, str) else "?"
            raise InvalidValueError(f"Data contract {label!r} is invalid:\n  - " + "\n  - ".join(problems))
        return cls(
            name=str(name),
            version=str(version),
            columns=tuple(columns),
            description=str(spec.get("description") or ""),
            min_rows=rows.get("min"),
            max_rows=rows.get("max"),
            unique=tuple(keys),
            freshness=fresh_pair,
            allow_extra_columns=extra,
        )

    @classmethod
    def from_yaml(cls, text: str) -> DataContract:
        """Parse YAML text (needs PyYAML)."""
        try:
            import yaml
        except ImportError as exc:
            raise InvalidValueError("Reading a YAML contract needs PyYAML: pip install pyyaml (or use JSON).") from exc
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidValueError(f"The data contract is not valid YAML: {exc}") from exc
        return cls.from_dict(spec)

    @classmethod
    def from_json(cls, text: str) -> DataContract:
        try:
            spec = json.loads(text)
        except ValueError as exc:
            raise InvalidValueError(f"The data contract is not valid JSON: {exc}") from exc
        return cls.from_dict(spec)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DataContract:
        """Read a ``.yaml``/``.yml`` or ``.json`` file."""
        source = Path(path)
        if not source.is_file():
            raise InvalidValueError(f"No data contract file at {str(source)!r}.")
        text = source.read_text(encoding="utf-8")
        if source.suffix.lower() == ".json":
            return cls.from_json(text)
        return cls.from_yaml(text)

    def to_dict(self) -> dict[str, Any]:
        """The spec, in the file format (round-trips through ``from_dict``)."""
        columns: dict[str, Any] = {}
        for column in self.columns:
            entry: dict[str, Any] = {}
            for key in ("dtype", "max_missing_share", "min", "max", "description"):
                value = getattr(column, key)
                if value not in (None, ""):
                    entry[key] = value
            if not column.nullable:
                entry["nullable"] = False
            if column.allowed is not None:
                entry["allowed"] = list(column.allowed)
            if column.unique:
                entry["unique"] = True
            columns[column.name] = entry
        spec: dict[str, Any] = {"name": self.name, "version": self.version, "columns": columns}
        if self.description:
            spec["description"] = self.description
        if self.min_rows is not None or self.max_rows is not None:
            spec["rows"] = {k: v for k, v in (("min", self.min_rows), ("max", self.max_rows)) if v is not None}
        if self.unique:
            spec["unique"] = [list(group) for group in self.unique]
        if self.freshness:
            spec["freshness"] = {"column": self.freshness[0], "max_age": self.freshness[1]}
        if not self.allow_extra_columns:
            spec["allow_extra_columns"] = False
        return spec

    # -- checking -----------------------------------------------------------------------------------
    def checks(self, *, now: datetime | None = None) -> list[Check]:
        """The checks this contract stands for, schema first."""
        result: list[Check] = [
            schema({c.name: c.dtype or "any" for c in self.columns}, allow_extra=self.allow_extra_columns)
        ]
        for column in self.columns:
            if column.max_missing_share is not None:
                result.append(missing_share(column.name, column.max_missing_share))
            elif not column.nullable:
                result.append(missing_share(column.name, 0.0))
            if column.min is not None or column.max is not None:
                result.append(in_range(column.name, column.min, column.max))
            if column.allowed is not None:
                result.append(allowed_values(column.name, column.allowed))
            if column.unique:
                result.append(unique(column.name))
        if self.min_rows is not None or self.max_rows is not None:
            result.append(row_count(self.min_rows, self.max_rows))
        result.extend(unique(*group) for group in self.unique)
        if self.freshness:
            result.append(freshness(self.freshness[0], self.freshness[1], now=now))
        return result

    def validate(
        self, data: Any, *, raise_on_failure: bool = True, log: bool = True, now: datetime | None = None
    ) -> ValidationReport:
        """Check ``data`` against every promise; see :func:`loopml.validation.checks.validate_data`."""
        return validate_data(
            data,
            self.checks(now=now),
            name=self.name,
            contract=self.ref,
            raise_on_failure=raise_on_failure,
            log=log,
        )


def _columns(raw: Any, problems: list[str]) -> list[ColumnContract]:
    if isinstance(raw, list):  # [{name: id, dtype: int}, ...]
        items = []
        for entry in raw:
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                items.append((entry["name"], {k: v for k, v in entry.items() if k != "name"}))
            else:
                problems.append(f"a column entry needs a 'name', got {entry!r}")
    elif isinstance(raw, Mapping):
        items = [(str(k), v if v is not None else {}) for k, v in raw.items()]
    else:
        problems.append("'columns' must map each column name to its rules")
        return []
    if not items:
        problems.append("'columns' is empty")
    columns = []
    seen: set[str] = set()
    for name, rules in items:
        if name in seen:
            problems.append(f"column {name!r} is listed more than once")
            continue
        seen.add(name)
        if not isinstance(rules, Mapping):
            problems.append(f"column {name!r}: rules must be a mapping, got {rules!r}")
            continue
        for key in sorted(set(rules) - _COLUMN_KEYS):
            problems.append(f"column {name!r}: unknown rule {key!r} (known: {', '.join(sorted(_COLUMN_KEYS))})")
        dtype = rules.get("dtype")
        if dtype is not None:
            try:
                check_kind(dtype, name)
            except InvalidValueError as exc:
                problems.append(str(exc))
        for key in ("min", "max", "max_missing_share"):
            value = rules.get(key)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
            ):
                problems.append(f"column {name!r}: {key} must be a number, got {value!r}")
        low, high = rules.get("min"), rules.get("max")
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            problems.append(f"column {name!r}: min {low} is above max {high}")
        for key in ("nullable", "unique"):
            if key in rules and not isinstance(rules[key], bool):
                problems.append(f"column {name!r}: {key} must be true or false, got {rules[key]!r}")
        share = rules.get("max_missing_share")
        if isinstance(share, int | float) and not 0 <= share <= 1:
            problems.append(f"column {name!r}: max_missing_share must be between 0 and 1, got {share}")
        allowed = rules.get("allowed")
        if allowed is not None and (not isinstance(allowed, list | tuple) or not allowed):
            problems.append(f"column {name!r}: allowed must be a non-empty list, got {allowed!r}")
        columns.append(
            ColumnContract(
                name=name,
                dtype=dtype,
                nullable=rules.get("nullable", True) is not False,
                max_missing_share=share,
                min=rules.get("min"),
                max=rules.get("max"),
                allowed=tuple(allowed) if isinstance(allowed, list | tuple) else None,
                unique=rules.get("unique", False) is True,
                description=str(rules.get("description") or ""),
            )
        )
    return columns


def _age_spec(max_age: Any) -> str | float:
    """``max_age`` as the spec keeps it: text as written, a number (or timedelta) as seconds."""
    if isinstance(max_age, timedelta):
        return max_age.total_seconds()
    return max_age if isinstance(max_age, str) else float(max_age)
