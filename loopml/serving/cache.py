"""Loaded model versions in an LRU cache bounded by count and by estimated memory.

A version loads on first use, once however many requests ask for it at the
same moment (they all wait on the one load), and in a worker thread so the
event loop keeps answering meanwhile. When the cache holds more than
``max_models`` versions or more than ``max_bytes`` (estimated from each
package's size on disk), the least recently used versions are dropped; a
request still holding one finishes with it. A load that failed is not
retried for ``retry_after`` seconds, so a broken model cannot make every
request hit the store.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from loopml.errors import InvalidValueError, LoopMLError, NotFoundError, ServiceUnavailableError
from loopml.serving.metrics import ServingMetrics
from loopml.serving.predictor import Predictor

Key = tuple[str, int]
Loader = Callable[[str, int], Predictor]

DEFAULT_MAX_MODELS = 100
DEFAULT_RETRY_AFTER_S = 5.0


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """What ``/v1/models`` shows of a loaded version."""

    name: str
    version: int
    nbytes: int
    loaded_at: float
    fast_path: bool


class ModelCache:
    """``get`` for the request path (a dict lookup), ``aload``/``load`` to bring a version in."""

    def __init__(
        self,
        loader: Loader,
        *,
        max_models: int = DEFAULT_MAX_MODELS,
        max_bytes: int | None = None,
        metrics: ServingMetrics | None = None,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        load_threads: int = 2,
    ) -> None:
        if isinstance(max_models, bool) or not isinstance(max_models, int) or max_models < 1:
            raise InvalidValueError(f"max_models must be a whole number from 1, got {max_models!r}.")
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
            raise InvalidValueError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}.")
        self._loader = loader
        self.max_models = max_models
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        self._entries: OrderedDict[Key, Predictor] = OrderedDict()
        self._bytes = 0
        self._loading: dict[Key, Future[Predictor]] = {}
        self._failed: dict[Key, tuple[float, BaseException]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=load_threads, thread_name_prefix="loopml-load")
        self.evictions = 0

    # -- the request path -------------------------------------------------------------------
    def get(self, key: Key) -> Predictor | None:
        """The loaded version (marked as just used), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
        if self._metrics is not None:
            (self._metrics.cache_hits if found is not None else self._metrics.cache_misses).inc()
        return found

    async def aload(self, key: Key) -> Predictor:
        """Load ``key`` in a worker thread (or join a load already running) without blocking the event loop."""
        future, owner = self._claim(key)
        if owner:
            self._pool.submit(self._run, key, future)
        return await asyncio.wrap_future(future)

    def load(self, key: Key) -> Predictor:
        """Load ``key`` in this thread (or wait for a load already running); the cached one if present."""
        with self._lock:
            found = self._entries.get(key)
        if found is not None:
            return found
        future, owner = self._claim(key)
        if owner:
            self._run(key, future)
        return future.result()

    # -- bookkeeping -------------------------------------------------------------------------
    def _claim(self, key: Key) -> tuple[Future[Predictor], bool]:
        with self._lock:
            running = self._loading.get(key)
            if running is not None:
                return running, False
            future: Future[Predictor] = Future()
            found = self._entries.get(key)
            if found is not None:
                future.set_result(found)
                return future, False
            failed = self._failed.get(key)
            if failed is not None and failed[0] > time.monotonic():
                future.set_exception(failed[1])
                return future, False
            self._loading[key] = future
            return future, True

    def _run(self, key: Key, future: Future[Predictor]) -> None:
        start = time.perf_counter()
        try:
            predictor = self._loader(*key)
        except Exception as exc:  # handed to every waiter, remembered for retry_after_s
            error = _as_load_error(key, exc)
            now = time.monotonic()
            with self._lock:
                self._loading.pop(key, None)
                # forget failures whose time is up, oldest first (re-inserting keeps the dict in expiry
                # order): requests for versions that do not exist must not grow it without bound
                failed = self._failed
                failed.pop(key, None)
                while failed and next(iter(failed.values()))[0] <= now:
                    del failed[next(iter(failed))]
                failed[key] = (now + self._retry_after_s, error)
            future.set_exception(error)
            return
        if self._metrics is not None:
            self._metrics.load_seconds.observe(time.perf_counter() - start)
        with self._lock:
            self._loading.pop(key, None)
            self._failed.pop(key, None)
            self._entries[key] = predictor
            self._bytes += predictor.nbytes
            self._evict()
        future.set_result(predictor)

    def _evict(self) -> None:
        """Drop least recently used versions until both bounds hold (the newest always stays)."""
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_models or (self.max_bytes is not None and self._bytes > self.max_bytes)
        ):
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes
            self.evictions += 1
            if self._metrics is not None:
                self._metrics.cache_evictions.inc()

    def discard(self, key: Key) -> bool:
        """Release a version (a deployment moved away from it); True when it was loaded."""
        with self._lock:
            dropped = self._entries.pop(key, None)
            if dropped is not None:
                self._bytes -= dropped.nbytes
        return dropped is not None

    def forget_failure(self, key: Key) -> None:
        with self._lock:
            self._failed.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def entries(self) -> list[CacheEntry]:
        """Loaded versions, least recently used first."""
        with self._lock:
            items = list(self._entries.items())
        return [CacheEntry(n, v, p.nbytes, p.loaded_at, p.fast is not None) for (n, v), p in items]

    def loading(self) -> list[Key]:
        with self._lock:
            return list(self._loading)

    def failures(self) -> dict[Key, str]:
        now = time.monotonic()
        with self._lock:
            return {key: str(error) for key, (until, error) in self._failed.items() if until > now}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _as_load_error(key: Key, exc: BaseException) -> BaseException:
    """Not-found errors reach the client as they are (404); any other failure is the server's (503)."""
    if isinstance(exc, NotFoundError):
        return exc
    name, version = key
    detail = exc.message if isinstance(exc, LoopMLError) else f"{type(exc).__name__}: {exc}"
    return ServiceUnavailableError(f"Model {name!r} version {version} could not be loaded: {detail}")


_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2,
          "G": 1024**3, "GB": 1024**3, "GIB": 1024**3, "T": 1024**4, "TB": 1024**4, "TIB": 1024**4}  # fmt: skip


def parse_size(text: str | int) -> int:
    """``"512MB"``, ``"2G"``, ``"1.5GiB"`` or a number of bytes, as bytes (units are powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    raw = str(text).strip().upper().replace(" ", "")
    number = raw.rstrip("KMGTIB")
    unit = raw[len(number) :]
    try:
        value = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        raise InvalidValueError(f"Not a size: {text!r}; use bytes or a number with K, M, G or T (e.g. 2G).") from None
    if not value >= 1:
        raise InvalidValueError(f"A memory bound must be at least 1 byte, got {text!r}.")
    return int(value)
