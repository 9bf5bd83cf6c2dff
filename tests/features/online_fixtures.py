"""Fixtures for the online-store tests: each backend for real (a SQLite file, the Redis server on 127.0.0.1).

Redis tests use database 13 and a key prefix of their own, deleted afterwards; where no Redis server answers they
skip with the reason, or fail where ``LOOPML_TEST_REDIS_URL`` was set explicitly (CI sets it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.features.online import OnlineStore, open_online_store

REDIS_URL = os.environ.get("LOOPML_TEST_REDIS_URL") or "redis://127.0.0.1:6379/13"
ONLINE_BACKENDS = ["sqlite", "redis"]


def redis_problem() -> str | None:
    """Why the Redis server cannot be used, or None when it answers."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except (redis.RedisError, OSError) as exc:
        return f"no Redis server answers at {REDIS_URL}: {type(exc).__name__}: {exc}"
    return None


def drop_prefix(prefix: str) -> None:
    """Delete every key under ``prefix`` in the test database."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def online_url(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    """(URL, key prefix) for a fresh store of ``backend``; skips Redis where no server answers."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'online.db'}", None
    problem = redis_problem()
    if problem is not None:
        if os.environ.get("LOOPML_TEST_REDIS_URL"):
            pytest.fail(problem)
        pytest.skip(problem)
    return REDIS_URL, f"loopml-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(name="online_store", params=ONLINE_BACKENDS)
def online_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    """A fresh, empty online store on each backend."""
    url, prefix = online_url(request.param, tmp_path)
    store = open_online_store(url, prefix=prefix)
    yield store
    store.close()
    if prefix is not None:
        drop_prefix(prefix)
