"""Canary routing: the split matches its percent, a key always lands on the same side, buckets are stable."""

from __future__ import annotations

import random

import pytest

from loopml.serving.routing import BUCKETS, Route, bucket


def test_buckets_are_stable_and_spread_evenly():
    assert bucket("user-42") == bucket("user-42")
    assert bucket("user-42") == 598  # the same in every process and release: blake2b, not hash()
    counts = [0] * 10
    for i in range(20_000):
        counts[bucket(f"key-{i}") * 10 // BUCKETS] += 1
    assert all(1_800 < count < 2_200 for count in counts)


@pytest.mark.parametrize("percent", [1, 10, 50, 90])
def test_a_random_split_is_within_a_point_of_its_target(percent):
    random.seed(percent)
    route = Route("m", 1, "1", canary_version=2, canary_percent=percent)
    draws = [route.choose(None) for _ in range(50_000)]
    share = sum(1 for version, role in draws if (version, role) == (2, "canary")) / len(draws)
    assert abs(share - percent / 100) < 0.01
    assert {role for version, role in draws if version == 1} == {"main"}


@pytest.mark.parametrize("percent", [5, 25, 60])
def test_a_keyed_split_is_sticky_and_near_its_target(percent):
    route = Route("m", 1, "1", canary_version=2, canary_percent=percent)
    chosen = {f"user-{i}": route.choose(f"user-{i}") for i in range(20_000)}
    assert all(route.choose(key) == choice for key, choice in list(chosen.items())[:500])
    share = sum(1 for version, _ in chosen.values() if version == 2) / len(chosen)
    assert abs(share - percent / 100) < 0.015


def test_raising_the_percent_only_moves_callers_to_the_canary():
    low = Route("m", 1, "1", canary_version=2, canary_percent=10)
    high = Route("m", 1, "1", canary_version=2, canary_percent=30)
    keys = [f"k{i}" for i in range(5_000)]
    assert {k for k in keys if low.choose(k)[0] == 2} <= {k for k in keys if high.choose(k)[0] == 2}


def test_without_a_canary_every_request_goes_to_the_main_version():
    assert {Route("m", 3, "champion").choose(key) for key in (None, "a", "b")} == {(3, "main")}
    assert Route("m", 3, "3", canary_version=4, canary_percent=0).choose("a") == (3, "main")
    assert Route("m", 3, "3", canary_version=4, canary_percent=100).choose(None) == (4, "canary")
    assert Route("m", 3, "3", canary_version=4, canary_percent=5, shadow_version=3).versions == (3, 4)
    assert Route("m", 3, "3", canary_version=4, canary_percent=5, shadow_version=5).versions == (3, 4, 5)
