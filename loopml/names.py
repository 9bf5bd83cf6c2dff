"""The one grammar for the names users give things: metric, param and tag keys, and run names.

Keys end up in SQL rows, JSON bodies, filter strings, CSV exports and terminal
tables. A NUL is refused by PostgreSQL but kept by SQLite, a newline or an
escape sequence forges lines and colours in logs and the CLI, and a
zero-width or bidi character makes two keys look alike. So a key is a
non-empty string of at most 250 printable characters (``str.isprintable``:
letters, digits, punctuation, symbols and the plain space, in any script);
control, format and separator characters other than the space are refused.
The client, every store backend and so the server (whose store checks again)
apply these same functions, so no backend accepts what another refuses.

Searches join one table per key they name, and SQLite allows at most 64
tables in a join, so a filter with its ordering may name at most
``MAX_FILTER_KEYS`` distinct keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopml.entities.search import Filter, OrderBy, named_keys
from loopml.errors import InvalidFilterError, InvalidValueError

#: Longest metric, param or tag key, in characters (as MLflow; the columns are VARCHAR(250)).
MAX_KEY_LENGTH = 250
#: Longest run name, in characters (the column is VARCHAR(256)).
MAX_RUN_NAME_LENGTH = 250
#: Most distinct metric, param and tag keys one search (filter and order-by together) may name.
MAX_FILTER_KEYS = 50


def _unprintable(text: str) -> str | None:
    """The first character ``text`` may not hold, or None."""
    if text.isprintable():
        return None
    return next(c for c in text if not c.isprintable())


def check_key(key: Any, what: str) -> str:
    """``key`` if it is a valid ``what`` key (``"Metric"``, ``"Param"``, ``"Tag"``); InvalidValueError otherwise."""
    if not isinstance(key, str):
        raise InvalidValueError(f"{what} key must be a string, got {type(key).__name__} {key!r}.")
    if not key.strip():
        raise InvalidValueError(f"{what} key must not be empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidValueError(f"{what} key {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY_LENGTH}.")
    bad = _unprintable(key)
    if bad is not None:
        raise InvalidValueError(
            f"{what} key {key[:60]!r} holds the control or invisible character {bad!r} (U+{ord(bad):04X}); "
            "keys use printable characters only."
        )
    return key


def check_run_name(name: Any) -> str:
    """``name`` if it is a valid run name: a non-empty printable string of at most 250 characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(f"Run name must be a non-empty string, got {name!r}.")
    if len(name) > MAX_RUN_NAME_LENGTH:
        raise InvalidValueError(
            f"Run name {name[:40]!r}... is {len(name)} characters; the limit is {MAX_RUN_NAME_LENGTH}."
        )
    bad = _unprintable(name)
    if bad is not None:
        raise InvalidValueError(
            f"Run name {name[:60]!r} holds the control or invisible character {bad!r} (U+{ord(bad):04X}); "
            "use printable characters only."
        )
    return name


def check_search_keys(filter: Filter | None, order_by: Sequence[OrderBy] = ()) -> None:
    """InvalidFilterError when a search names more than ``MAX_FILTER_KEYS`` distinct keys."""
    n_keys = len(named_keys(filter, order_by))
    if n_keys > MAX_FILTER_KEYS:
        raise InvalidFilterError(
            f"The search names {n_keys} distinct metric, param and tag keys (filter and order_by together); "
            f"the limit is {MAX_FILTER_KEYS}. Split it into several searches, or select runs by fewer keys."
        )
