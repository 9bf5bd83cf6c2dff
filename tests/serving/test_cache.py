"""The model cache: LRU bounded by count and by memory, one load per version however many ask, failures remembered."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import pytest

from loopml.errors import InvalidValueError, ModelVersionNotFoundError, ServiceUnavailableError
from loopml.serving.cache import ModelCache, parse_size
from loopml.serving.metrics import ServingMetrics


@dataclass
class FakePredictor:
    """What the cache needs of a Predictor: its size, when it loaded, whether it has a fast path."""

    name: str
    version: int
    nbytes: int
    loaded_at: float = 0.0
    fast: object = None


class Loader:
    def __init__(self, sizes: dict[int, int] | None = None, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.sizes = sizes or {}
        self.delay = delay
        self.fail = fail
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, version: int) -> FakePredictor:
        with self.lock:
            self.calls.append((name, version))
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return FakePredictor(name, version, self.sizes.get(version, 100))


def test_least_recently_used_versions_go_first_when_over_the_count():
    metrics = ServingMetrics()
    cache = ModelCache(Loader(), max_models=3, metrics=metrics)
    for version in (1, 2, 3):
        cache.load(("m", version))
    assert cache.get(("m", 1)) is not None  # 1 is now the most recently used
    cache.load(("m", 4))
    assert [e.version for e in cache.entries()] == [3, 1, 4]
    assert ("m", 2) not in cache and len(cache) == 3 and cache.evictions == 1
    assert cache.get(("m", 2)) is None
    text = metrics.render().decode()
    assert "loopml_serving_cache_evictions_total 1.0" in text
    assert "loopml_serving_cache_hits_total 1.0" in text and "loopml_serving_cache_misses_total 1.0" in text


def test_the_memory_bound_evicts_by_estimated_size_but_keeps_the_newest():
    cache = ModelCache(Loader({1: 400, 2: 400, 3: 300, 4: 5_000}), max_models=100, max_bytes=1_000)
    for version in (1, 2):
        cache.load(("m", version))
    assert cache.nbytes == 800
    cache.load(("m", 3))  # 1,100 > 1,000: the oldest goes
    assert [e.version for e in cache.entries()] == [2, 3] and cache.nbytes == 700
    cache.load(("m", 4))  # larger than the whole budget: it stays alone
    assert [e.version for e in cache.entries()] == [4] and cache.nbytes == 5_000
    assert cache.discard(("m", 4)) and cache.nbytes == 0 and not cache.discard(("m", 4))


def test_concurrent_requests_for_a_cold_version_share_one_load():
    loader = Loader(delay=0.2)
    cache = ModelCache(loader, max_models=10)

    async def many() -> list[FakePredictor]:
        return await asyncio.gather(*(cache.aload(("m", 1)) for _ in range(20)))

    threads = [threading.Thread(target=cache.load, args=(("m", 1),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    loaded = asyncio.run(many())
    for thread in threads:
        thread.join()
    assert loader.calls == [("m", 1)]
    assert len({id(p) for p in loaded}) == 1 and loaded[0] is cache.get(("m", 1))
    cache.close()


def test_a_failed_load_is_remembered_for_a_while_and_not_found_stays_404():
    missing = ModelCache(Loader(fail=ModelVersionNotFoundError("no version 9")), retry_after_s=60)
    with pytest.raises(ModelVersionNotFoundError):
        missing.load(("m", 9))
    broken_loader = Loader(fail=RuntimeError("disk on fire"))
    broken = ModelCache(broken_loader, retry_after_s=60)
    for _ in range(3):
        with pytest.raises(ServiceUnavailableError, match="disk on fire"):
            broken.load(("m", 1))
    assert broken_loader.calls == [("m", 1)]  # remembered: the store is not hit again
    assert broken.failures() == {("m", 1): "Model 'm' version 1 could not be loaded: RuntimeError: disk on fire"}
    broken.forget_failure(("m", 1))
    broken_loader.fail = None
    assert broken.load(("m", 1)).version == 1


def test_failures_whose_time_is_up_are_forgotten():
    """Requests for versions that do not exist (any number a caller types) must not grow the cache's memory."""
    cache = ModelCache(Loader(fail=ModelVersionNotFoundError("no such version")), retry_after_s=0)
    for version in range(1, 200):
        with pytest.raises(ModelVersionNotFoundError):
            cache.load(("m", version))
    assert len(cache._failed) <= 2 and cache.failures() == {}


def test_bounds_are_checked_and_sizes_parse():
    with pytest.raises(InvalidValueError):
        ModelCache(Loader(), max_models=0)
    with pytest.raises(InvalidValueError):
        ModelCache(Loader(), max_bytes=0)
    assert parse_size("512MB") == 512 * 1024**2
    assert parse_size("1.5g") == int(1.5 * 1024**3)
    assert parse_size("2048") == 2048 and parse_size(10) == 10
    for bad in ("lots", "-1G", "0", "1X"):
        with pytest.raises(InvalidValueError):
            parse_size(bad)
