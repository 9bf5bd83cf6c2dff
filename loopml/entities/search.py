"""Parsed search filters and orderings: small values the store compiles to SQL.

`loopml.tracking.search` turns the string a user types into these; each store
backend compiles them (the SQL store into one indexed query). Keeping them
here, below the store, lets the store know nothing of the parser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: Which family a key belongs to: ``metrics.acc``, ``params.lr``, ``tags.team``
#: or a run attribute (``status``, ``name``, ``start_time``, ``end_time``,
#: ``duration``, ``run_id``, ``experiment_id``, ``parent_run_id``, ``user``).
KeyKind = Literal["metric", "param", "tag", "attribute"]

#: Comparison operators; ``in``/``not in`` take a tuple value,
#: ``like``/``not like``/``ilike`` take a string with ``%`` and ``_`` wildcards.
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "in", "not in", "like", "not like", "ilike"]

ATTRIBUTES: tuple[str, ...] = (
    "run_id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "duration",
    "parent_run_id",
    "user",
)

Scalar = str | float | int | bool | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """``<kind>.<key> <op> <value>``."""

    kind: KeyKind
    key: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


Filter = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderBy:
    """Sort key; runs missing the key sort last whatever the direction."""

    kind: KeyKind
    key: str
    descending: bool = False


def named_keys(filter: Filter | None, order_by: Sequence[OrderBy] = ()) -> set[tuple[KeyKind, str]]:
    """The distinct metric, param and tag keys a search names (attributes excluded): one join each in SQL."""
    keys: set[tuple[KeyKind, str]] = {(o.kind, o.key) for o in order_by if o.kind != "attribute"}
    stack: list[Filter] = [] if filter is None else [filter]
    while stack:  # iterative: a deep tree must not hit the recursion limit
        node = stack.pop()
        if isinstance(node, And | Or):
            stack.extend(node.items)
        elif isinstance(node, Not):
            stack.append(node.item)
        elif node.kind != "attribute":
            keys.add((node.kind, node.key))
    return keys
