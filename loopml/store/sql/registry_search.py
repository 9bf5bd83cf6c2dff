"""Compile registry search filters (``name``, ``tags.<key>``, ``run_id``) into SQL conditions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Table, and_, exists, false, not_, or_, true

from loopml.entities.search import And, Comparison, Filter, Not, Or
from loopml.errors import InvalidFilterError
from loopml.names import check_search_keys
from loopml.store.sql import tables as t
from loopml.store.sql.search import compare_column

#: the condition for one comparison; model and version filters each know their own columns
_Leaf: TypeAlias = Callable[[Comparison], ColumnElement[bool]]


def _tag_condition(table: Table, owner: list[ColumnElement[Any]], node: Comparison) -> ColumnElement[bool]:
    """A comparison on ``tags.<key>`` of a model or version, as an EXISTS subquery."""
    c = table.c
    match = and_(*owner, c.key == node.key)
    if node.value is None:
        present = exists().where(match)
        return not_(present) if node.op == "=" else present
    value = node.value
    if isinstance(value, bool):  # stored as text, as run tags are; booleans have no order
        if node.op not in ("=", "!="):
            raise InvalidFilterError(
                f"tags.{node.key}: true and false only compare with '=' or '!=', not {node.op!r}.", token=node.key
            )
        return exists().where(match, compare_column(c.value, node.op, str(value).lower()))
    if isinstance(value, tuple):
        column_value = c.value if all(isinstance(x, str) for x in value) else c.value_num
    else:
        column_value = c.value if isinstance(value, str) else c.value_num
    return exists().where(match, compare_column(column_value, node.op, value))


def _compile(node: Filter, leaf: _Leaf) -> ColumnElement[bool]:
    """The condition for ``node``; each tag key is one EXISTS subquery, so keys are capped as for runs."""
    check_search_keys(node)
    return _compile_node(node, leaf)


def _compile_node(node: Filter, leaf: _Leaf) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(true(), *(_compile_node(i, leaf) for i in node.items))
    if isinstance(node, Or):
        return or_(false(), *(_compile_node(i, leaf) for i in node.items))
    if isinstance(node, Not):
        return not_(_compile_node(node.item, leaf))
    return leaf(node)


def model_filter(node: Filter) -> ColumnElement[bool]:
    m = t.registered_models.c

    def leaf(cmp: Comparison) -> ColumnElement[bool]:
        if cmp.kind == "tag":
            return _tag_condition(t.registered_model_tags, [t.registered_model_tags.c.name == m.name], cmp)
        if cmp.kind == "attribute" and cmp.key == "name":
            return compare_column(m.name, cmp.op, cmp.value)
        raise InvalidFilterError(
            f"search_models filters on name and tags.<key>, not {cmp.kind} {cmp.key!r}.", token=cmp.key
        )

    return _compile(node, leaf)


def version_filter(node: Filter) -> ColumnElement[bool]:
    v = t.model_versions.c
    vt = t.model_version_tags.c

    def leaf(cmp: Comparison) -> ColumnElement[bool]:
        if cmp.kind == "tag":
            return _tag_condition(t.model_version_tags, [vt.name == v.name, vt.version == v.version], cmp)
        if cmp.kind == "attribute" and cmp.key == "run_id":
            return compare_column(v.run_id, cmp.op, cmp.value)
        raise InvalidFilterError(
            f"Version filters use tags.<key> and run_id, not {cmp.kind} {cmp.key!r}; pass stage= for stages.",
            token=cmp.key,
        )

    return _compile(node, leaf)
