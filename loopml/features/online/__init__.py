"""Online stores: where the latest feature values wait for the prediction path.

``open_online_store()`` picks the backend from ``LOOPML_ONLINE_STORE_URL``: ``redis://host:port/db`` (or
``rediss://``) for Redis, ``sqlite:///path/online.db`` for a SQLite file; unset, an ``online.db`` file next to the
embedded metadata database (or under ``LOOPML_HOME`` when the metadata lives in PostgreSQL).
``LOOPML_ONLINE_STORE_PREFIX`` (default ``loopml``) names the Redis key prefix, one per project sharing a server.
"""

from __future__ import annotations

import os
from pathlib import Path

from loopml.errors import UnsupportedSchemeError
from loopml.features.online.base import OnlineRow, OnlineStore, ReadRequest, WriteBatch


def default_online_url() -> str:
    """The online store URL from the environment, or the SQLite file beside the metadata store."""
    from loopml.config import get_settings

    explicit = os.environ.get("LOOPML_ONLINE_STORE_URL")
    if explicit:
        return explicit
    settings = get_settings()
    if settings.db_url.startswith("sqlite:///"):
        folder = Path(settings.db_url.removeprefix("sqlite:///")).parent
    else:
        folder = settings.home
    return f"sqlite:///{folder / 'online.db'}"


def open_online_store(url: str | None = None, *, prefix: str | None = None) -> OnlineStore:
    """Open the online store at ``url`` (default: :func:`default_online_url`)."""
    target = url or default_online_url()
    scheme = target.partition("://")[0].lower()
    if scheme in {"redis", "rediss", "unix"}:
        from loopml.features.online.redis import RedisOnlineStore

        return RedisOnlineStore(target, prefix=prefix or os.environ.get("LOOPML_ONLINE_STORE_PREFIX") or "loopml")
    if scheme == "sqlite":
        from loopml.features.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(target.removeprefix("sqlite:///"))
    raise UnsupportedSchemeError(f"online store URL scheme {scheme!r} is not supported (use redis:// or sqlite:///)")


__all__ = ["OnlineRow", "OnlineStore", "ReadRequest", "WriteBatch", "default_online_url", "open_online_store"]
