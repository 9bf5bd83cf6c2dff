"""Which backend opens which URL scheme, as lazy dotted paths.

A backend is imported only when a URL of its scheme is opened, so importing
loopml never pulls in SQLAlchemy or httpx. Third-party packages can add
schemes through the ``loopml.stores`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeAlias, cast

from loopml.errors import UnsupportedSchemeError

if TYPE_CHECKING:
    from loopml.store import Store

#: what a backend's opener is called with: (uri, artifacts_url)
Opener: TypeAlias = "Callable[[str, str], Store]"

#: scheme -> "module:function" taking (uri, artifacts_url) and returning a Store.
BACKENDS: dict[str, str] = {
    "sqlite": "loopml.store.sql:open_sql_store",
    "postgresql": "loopml.store.sql:open_sql_store",
    "postgres": "loopml.store.sql:open_sql_store",
    "http": "loopml.store.rest:open_rest_store",
    "https": "loopml.store.rest:open_rest_store",
}


def scheme_of(uri: str) -> str:
    """``postgresql+psycopg://…`` -> ``postgresql``."""
    head, sep, _ = uri.partition("://")
    if not sep:
        head, sep, _ = uri.partition(":")
    return head.split("+", 1)[0].lower() if sep else ""


def resolve(uri: str) -> Opener:
    """The opener for ``uri``'s scheme; UnsupportedSchemeError listing the known ones."""
    scheme = scheme_of(uri)
    target = BACKENDS.get(scheme)
    if target is None:
        for entry in entry_points(group="loopml.stores"):
            if entry.name == scheme:
                return cast("Opener", entry.load())  # entry points are untyped; the group's contract says so
        known = ", ".join(sorted(BACKENDS))
        raise UnsupportedSchemeError(f"No loopml store for {uri!r} (scheme {scheme!r}). Supported schemes: {known}.")
    module, _, name = target.partition(":")
    return cast("Opener", getattr(importlib.import_module(module), name))  # BACKENDS names only openers
