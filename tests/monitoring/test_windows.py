"""Reading the newest k records of a time range from a store that only returns the oldest ones first."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.entities.serving import PredictionRecord
from loopml.errors import InvalidValueError
from loopml.monitoring.spec import parse_window
from loopml.monitoring.windows import newest


class Log:
    """An in-memory prediction log whose reads behave like the store's: oldest first, at most ``limit``."""

    def __init__(self, times: list[int]) -> None:
        order = sorted(range(len(times)), key=lambda i: (times[i], i))
        self.records = [PredictionRecord(f"r{i}", times[i], "m", 1, "main", "{}", "[]", 1.0, 200) for i in order]
        self.reads: list[int] = []

    def read(self, lo: int, hi: int, limit: int) -> list[PredictionRecord]:
        found = [r for r in self.records if lo <= r.time < hi][:limit]
        self.reads.append(len(found))
        return found

    def expected(self, k: int, lo: int, hi: int) -> list[str]:
        return [r.request_id for r in self.records if lo <= r.time < hi][-k:]


NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    "times",
    [
        [NOW - int(s) for s in np.random.default_rng(0).uniform(0, 86_400_000, 5000)],  # a day of traffic
        [NOW - 3_600_000 * 24 * 30 - i for i in range(300)] + [NOW - i * 1000 for i in range(50)],  # a burst long ago
        [NOW - 5000] * 700 + [NOW - 10] * 3,  # many records in one millisecond
        [NOW - i for i in range(40)],  # fewer than asked for
        [],
    ],
    ids=["day", "burst-long-ago", "same-millisecond", "few", "empty"],
)
@pytest.mark.parametrize("k", [1, 100, 1000])
def test_newest_returns_exactly_the_newest_k_oldest_first(times, k):
    log = Log(times)
    got = newest(log.read, k, 0, NOW + 1)
    assert [r.request_id for r in got] == log.expected(k, 0, NOW + 1)
    assert max(log.reads, default=0) <= max(k + 1, 700)  # reads stay small (one millisecond may hold more)


def test_newest_respects_the_lower_bound_and_reads_few_times():
    log = Log([NOW - i * 10 for i in range(100_000)])  # 100 requests a second for 1000 seconds
    got = newest(log.read, 1000, NOW - 500_000, NOW + 1)
    assert [r.request_id for r in got] == log.expected(1000, NOW - 500_000, NOW + 1)
    assert len(log.reads) < 20
    assert newest(log.read, 10, NOW + 1, NOW + 5) == []


def test_windows_parse_and_resolve():
    window = parse_window({"since": "90min", "until": "2026-01-01T00:00:00+00:00", "last": 10})
    since, until = window.bounds(NOW)
    assert since == NOW - 90 * 60_000 and until == 1_767_225_600_000
    assert window.describe() == "last 10 requests since 90min until 2026-01-01T00:00:00+00:00"
    assert parse_window(None).last == 1000
    assert parse_window({"since": 1_000}).bounds(NOW) == (1_000, None)
    with pytest.raises(InvalidValueError, match='needs "last"'):
        parse_window({"until": "1h"})
