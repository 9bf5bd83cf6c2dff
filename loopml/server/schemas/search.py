"""The JSON form of parsed filters and orderings, with converters both ways.

Clients parse the filter text themselves (``loopml.tracking.search``) and send
the tree; the server never sees filter strings. The form::

    {"type": "comparison", "kind": "metric", "key": "acc", "op": ">", "value": 0.9}
    {"type": "and", "items": [<filter>, ...]}     {"type": "or", "items": [...]}
    {"type": "not", "item": <filter>}
    order by: {"kind": "metric", "key": "acc", "descending": true}

A value is a JSON number, string, boolean or null, a list of those for ``in``
and ``not in``, and ``{"float": "nan" | "inf" | "-inf"}`` for the non-finite
floats (a bare string would be taken for text). Unknown types, kinds,
operators or fields are refused with 422, naming the path to the offending
field.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from loopml.entities.search import And, Comparison, Filter, KeyKind, Not, Operator, Or, OrderBy, Scalar
from loopml.server.schemas.common import Schema

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class NonFinite(Schema):
    """A NaN or infinite filter value."""

    float: Literal["nan", "inf", "-inf"]


ScalarJson = Annotated[
    StrictBool | StrictInt | StrictFloat | StrictStr | NonFinite | None,
    Field(union_mode="left_to_right"),
]


class ComparisonJson(Schema):
    type: Literal["comparison"]
    kind: KeyKind
    key: str
    op: Operator
    value: ScalarJson | list[ScalarJson]

    @model_validator(mode="after")
    def _value_fits_operator(self) -> ComparisonJson:
        """The shapes the filter parser produces: a list for ``in``, one value otherwise."""
        listed = isinstance(self.value, list)
        if self.op in ("in", "not in"):
            if not isinstance(self.value, list):  # i.e. not listed; spelled out so the type narrows
                raise ValueError(f"operator {self.op!r} needs a list value")
            if any(v is None for v in self.value):
                raise ValueError(f"an {self.op!r} list cannot hold null; use 'is null' instead")
        elif listed:
            raise ValueError(f"operator {self.op!r} needs a single value, not a list")
        elif self.value is None and self.op not in ("=", "!="):
            raise ValueError(f"null only compares with '=' or '!=', not {self.op!r}")
        elif self.op in ("like", "not like", "ilike") and not isinstance(self.value, str):
            raise ValueError(f"operator {self.op!r} needs a string pattern")
        elif isinstance(self.value, bool) and self.op not in ("=", "!="):
            raise ValueError(f"true and false only compare with '=' or '!=', not {self.op!r}")
        return self


class AndJson(Schema):
    type: Literal["and"]
    items: list[FilterJson]


class OrJson(Schema):
    type: Literal["or"]
    items: list[FilterJson]


class NotJson(Schema):
    type: Literal["not"]
    item: FilterJson


FilterJson = Annotated[ComparisonJson | AndJson | OrJson | NotJson, Field(discriminator="type")]


class OrderByJson(Schema):
    kind: KeyKind
    key: str
    descending: bool = False

    def to_entity(self) -> OrderBy:
        return OrderBy(self.kind, self.key, self.descending)


# -- JSON form -> entities ---------------------------------------------------------------


def _scalar(value: bool | int | float | str | NonFinite | None) -> Scalar:
    return _NON_FINITE[value.float] if isinstance(value, NonFinite) else value


def to_filter(node: ComparisonJson | AndJson | OrJson | NotJson | None) -> Filter | None:
    """The entity tree for a validated JSON filter (None stays None)."""
    if node is None:
        return None
    if isinstance(node, AndJson):
        return And(tuple(_required(to_filter(item)) for item in node.items))
    if isinstance(node, OrJson):
        return Or(tuple(_required(to_filter(item)) for item in node.items))
    if isinstance(node, NotJson):
        return Not(_required(to_filter(node.item)))
    value = tuple(_scalar(v) for v in node.value) if isinstance(node.value, list) else _scalar(node.value)
    return Comparison(node.kind, node.key, node.op, value)


def _required(node: Filter | None) -> Filter:
    if node is None:  # pragma: no cover - to_filter only returns None for None
        raise TypeError("a filter item cannot be null")
    return node


def to_order_by(items: list[OrderByJson]) -> tuple[OrderBy, ...]:
    return tuple(item.to_entity() for item in items)


# -- entities -> JSON form ----------------------------------------------------------------


def _scalar_json(value: Scalar) -> bool | int | float | str | dict[str, str] | None:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def filter_to_json(node: Filter | None) -> dict[str, object] | None:
    """The JSON form of an entity tree (what the REST client sends)."""
    if node is None:
        return None
    if isinstance(node, And | Or):
        return {"type": "and" if isinstance(node, And) else "or", "items": [filter_to_json(i) for i in node.items]}
    if isinstance(node, Not):
        return {"type": "not", "item": filter_to_json(node.item)}
    value = node.value
    encoded = [_scalar_json(v) for v in value] if isinstance(value, tuple) else _scalar_json(value)
    return {"type": "comparison", "kind": node.kind, "key": node.key, "op": node.op, "value": encoded}


def order_by_to_json(items: tuple[OrderBy, ...] | list[OrderBy]) -> list[dict[str, object]]:
    return [{"kind": o.kind, "key": o.key, "descending": o.descending} for o in items]


for _model in (AndJson, OrJson, NotJson):
    _model.model_rebuild()

__all__ = [
    "FilterJson",
    "OrderByJson",
    "filter_to_json",
    "order_by_to_json",
    "to_filter",
    "to_order_by",
]
