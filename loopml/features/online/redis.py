"""The Redis online store: one hash per entity key, holding every view's row for that key.

Layout, under a per-project key prefix (default ``loopml``):

- ``{prefix}:e:{join-key names}={JSON key values}`` is a hash with two fields per view: ``v:{view}`` (the event
  time in UTC microseconds, a space, then the feature values as orjson) and ``t:{view}`` (the event time alone,
  which the write script compares). Views keyed by the same entity share the hash. A read is one Lua script
  call per set of views asked for (``HMGET`` of the ``v:`` fields of every key, answered as one flat list), all
  in one pipeline: one round trip, and a cost that does not grow with the number of views in the registry.
- ``{prefix}:watermarks`` is a hash view → materialized-up-to time (microseconds).

A write is one Lua script over the batch's keys: Redis runs it without interleaving any other command, and for
each key it compares the stored event time with the new one and sets both fields with one ``HSET``, so a key is
never half-written and never moves back in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from loopml.errors import OnlineStoreError
from loopml.features.online.base import (
    OnlineRow,
    OnlineStore,
    ReadRequest,
    WriteBatch,
    decode_values,
    encode_key,
    encode_values,
    from_micros,
    to_micros,
)

_WRITE_NEWER = """
local fv, ft = ARGV[1], ARGV[2]
local n = 0
for i, key in ipairs(KEYS) do
  local ts = ARGV[1 + 2 * i]
  local old = redis.call('HGET', key, ft)
  if (not old) or tonumber(old) <= tonumber(ts) then
    redis.call('HSET', key, fv, ARGV[2 + 2 * i], ft, ts)
    n = n + 1
  end
end
return n
"""

_READ = """
local n = tonumber(ARGV[1])
local out = {}
for _, key in ipairs(KEYS) do
  local values = redis.call('HMGET', key, unpack(ARGV, 2, n + 1))
  for j = 1, n do out[#out + 1] = values[j] end
end
return out
"""

_SET_WATERMARK = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if (not old) or tonumber(old) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""

#: Keys per write script: large enough to amortise the round trip, small enough not to stall Redis for long.
WRITE_CHUNK = 2_000


def redact(url: str) -> str:
    """``redis://user:secret@host:6379/0`` -> ``redis://***@host:6379/0``: printable, never a credential."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


class RedisOnlineStore(OnlineStore):
    """Feature rows in a Redis server (``redis://host:port/db``, ``rediss://`` for TLS)."""

    def __init__(self, url: str, *, prefix: str = "loopml") -> None:
        import redis

        self.url = redact(url)
        self.prefix = prefix
        self._redis_errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._no_script: type[BaseException] = redis.exceptions.NoScriptError
        try:
            self._client: Any = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        except (ValueError, *self._redis_errors) as exc:
            raise OnlineStoreError(f"invalid Redis URL {self.url}: {type(exc).__name__}") from exc
        self._write = self._client.register_script(_WRITE_NEWER)
        self._read = self._client.register_script(_READ)
        self._watermark = self._client.register_script(_SET_WATERMARK)

    def _key(self, join_keys: Sequence[str], key: tuple[Any, ...]) -> bytes:
        return self.prefix.encode() + b":e:" + encode_key(join_keys, key)

    def _fail(self, action: str, exc: BaseException) -> OnlineStoreError:
        return OnlineStoreError(f"cannot {action} the Redis online store {self.url}: {type(exc).__name__}: {exc}")

    def write(self, batch: WriteBatch) -> int:
        fields = [f"v:{batch.view}", f"t:{batch.view}"]
        written = 0
        rows = list(zip(batch.keys, batch.values, batch.event_times, strict=True))
        try:
            for start in range(0, len(rows), WRITE_CHUNK):
                chunk = rows[start : start + WRITE_CHUNK]
                keys = [self._key(batch.join_keys, key) for key, _, _ in chunk]
                args: list[Any] = list(fields)
                for _, values, ts in chunk:
                    args.append(ts)
                    args.append(b"%d " % ts + encode_values(values))  # the time rides along: reads need one field
                written += int(self._write(keys=keys, args=args))
        except self._redis_errors as exc:
            raise self._fail("write to", exc) from exc
        return written

    def read(self, requests: Sequence[ReadRequest]) -> list[list[OnlineRow | None]]:
        # per entity key the views asked for; keys asking for the same views go to one script call, which
        # answers a flat list (one value per key and view): cheap to send and to parse, one round trip in all
        per_key: dict[bytes, list[tuple[int, int, str]]] = {}
        for r, request in enumerate(requests):
            for k, key in enumerate(request.keys):
                per_key.setdefault(self._key(request.join_keys, key), []).append((r, k, request.view))
        out: list[list[OnlineRow | None]] = [[None] * len(request.keys) for request in requests]
        if not per_key:
            return out
        groups: dict[tuple[str, ...], list[bytes]] = {}
        for redis_key, wants in per_key.items():
            groups.setdefault(tuple(view for _, _, view in wants), []).append(redis_key)
        calls = [
            ("EVALSHA", self._read.sha, len(keys), *keys, len(views), *(f"v:{view}" for view in views))
            for views, keys in groups.items()
        ]
        try:
            try:
                answers = self._run(calls)
            except self._no_script:  # a restarted or flushed server: load the script once, then again
                self._client.script_load(_READ)
                answers = self._run(calls)
        except self._redis_errors as exc:
            raise self._fail("read", exc) from exc
        for (views, keys), flat in zip(groups.items(), answers, strict=True):
            width = len(views)
            for i, redis_key in enumerate(keys):
                for j, (r, k, _) in enumerate(per_key[redis_key]):
                    payload = flat[i * width + j]
                    if payload is not None:
                        ts, _, values = payload.partition(b" ")
                        out[r][k] = OnlineRow(decode_values(values), from_micros(int(ts)))
        return out

    def _run(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        """One round trip: a single command as it is, several in a pipeline (raw EVALSHA: a pipeline of
        registered scripts would first ask the server whether they exist, a second round trip)."""
        if len(calls) == 1:
            return [self._client.execute_command(*calls[0])]
        pipe = self._client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call)
        return list(pipe.execute())

    def get_watermark(self, view: str) -> datetime | None:
        try:
            raw = self._client.hget(f"{self.prefix}:watermarks", view)
        except self._redis_errors as exc:
            raise self._fail("read", exc) from exc
        return None if raw is None else from_micros(int(raw))

    def set_watermark(self, view: str, until: datetime) -> None:
        try:
            self._watermark(keys=[f"{self.prefix}:watermarks"], args=[view, to_micros(until)])
        except self._redis_errors as exc:
            raise self._fail("write to", exc) from exc

    def delete_view(self, view: str) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for redis_key in self._client.scan_iter(match=f"{self.prefix}:e:*", count=1000):
                pipe.hdel(redis_key, f"v:{view}", f"t:{view}")
            pipe.hdel(f"{self.prefix}:watermarks", view)
            pipe.execute()
        except self._redis_errors as exc:
            raise self._fail("write to", exc) from exc

    def close(self) -> None:
        self._client.close()
