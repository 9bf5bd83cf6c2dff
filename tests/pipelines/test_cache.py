"""The step cache: a hit skips the function; code, params and inputs that change miss; forcing works."""

from __future__ import annotations

from collections import Counter

import pytest

from loopml.pipelines import cache as step_cache
from loopml.pipelines import pipeline, step
from loopml.tracking.search import parse_filter

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@step
def load(n: int) -> list:
    calls["load"] += 1
    return list(range(n))


@step
def parity(values: list) -> list:
    calls["parity"] += 1
    return [v % 2 for v in values]


@step
def count(bits: list, weight: int = 1) -> int:
    calls["count"] += 1
    return sum(bits) * weight


@pipeline
def flow(n: int = 4, weight: int = 1):
    return count(parity(load(n)), weight=weight)


def test_an_unchanged_rerun_executes_nothing_and_returns_the_same_output(local_client):
    first = flow.run(n=6)
    assert first.output == 3 and first.n_executed == 3 and first.n_cached == 0
    assert calls == {"load": 1, "parity": 1, "count": 1}
    again = flow.run(n=6)
    assert again.output == 3
    assert calls == {"load": 1, "parity": 1, "count": 1}  # no function ran
    assert again.n_cached == 3 and all(r.cached for r in again.steps.values())
    assert again.steps["count"].run_id == first.steps["count"].run_id  # the record points at the producer
    assert again.steps["count"].cached_from == first.steps["count"].run_id


def test_changed_params_miss_from_the_changed_step_on(local_client):
    flow.run(n=6)
    result = flow.run(n=6, weight=10)
    assert result.output == 30
    assert calls == {"load": 1, "parity": 1, "count": 2}
    assert [r.cached for r in result.steps.values()] == [True, True, False]


def test_changed_inputs_miss_downstream_but_equal_outputs_hit_again(local_client):
    flow.run(n=6)
    flow.run(n=8)  # new load output, so parity and count run again
    assert calls == {"load": 2, "parity": 2, "count": 2}

    @step(name="load")
    def load_reordered(n: int) -> list:  # same name, other code: the load step misses ...
        calls["load"] += 1
        return list(range(n))[::-1][::-1]

    @pipeline(name="flow")
    def flow_edited(n: int = 4, weight: int = 1):
        return count(parity(load_reordered(n)), weight=weight)

    result = flow_edited.run(n=8)
    # ... but returns the very same list, so parity and count are cache hits by content hash
    assert calls == {"load": 3, "parity": 2, "count": 2}
    assert [r.cached for r in result.steps.values()] == [False, True, True]


def test_cache_false_on_the_run_or_the_step_forces_execution(local_client):
    flow.run(n=5)
    flow.run(n=5, cache=False)
    assert calls == {"load": 2, "parity": 2, "count": 2}

    @step(cache=False)
    def fresh(n: int) -> list:
        calls["fresh"] += 1
        return list(range(n))

    @pipeline(name="flow")
    def flow_fresh(n: int = 4):
        return count(parity(fresh(n)))

    flow_fresh.run(n=5)
    flow_fresh.run(n=5)
    assert calls["fresh"] == 2  # never taken from the cache ...
    assert calls["parity"] == 2  # ... while what follows it hits by content: fresh returned the same list as load


def test_bumping_version_invalidates_by_hand(local_client):
    @pipeline(name="versions")
    def versioned(v: str = "1"):
        return count(parity(load.with_options(version=v)(3)))

    versioned.run(v="1")
    versioned.run(v="1")
    versioned.run(v="2")
    assert calls["load"] == 2


def test_a_step_shared_by_two_pipelines_is_found_by_the_tag_search(local_client):
    flow.run(n=7)

    @pipeline
    def other(n: int = 7):
        return parity(load(n))

    result = other.run()
    assert calls == {"load": 1, "parity": 1, "count": 1}
    assert result.n_cached == 2
    key = result.steps["load"].cache_key
    hit = step_cache.find_cached(local_client, key)
    assert hit is not None and hit.tags[step_cache.CACHE_KEY_TAG] == key
    assert step_cache.find_cached(local_client, "0" * 64) is None


def test_the_cache_key_filter_parses_with_the_dotted_tag_key():
    parsed = parse_filter("tags.loopml.cache_key = 'abc' and attributes.status = 'FINISHED'")
    assert parsed.items[0].kind == "tag" and parsed.items[0].key == "loopml.cache_key"
    assert step_cache.quote("it's") == "'it\\'s'"
    assert parse_filter(f"tags.loopml.pipeline = {step_cache.quote(chr(92) + 'x' + chr(39))}").value == "\\x'"


def test_keys_depend_on_code_params_inputs_and_outputs():
    graph = flow.trace({"n": 3})
    node = graph.nodes["parity"]
    digests = {("load", "output"): "a" * 64}
    key = step_cache.cache_key(node, digests)
    assert key == step_cache.cache_key(node, dict(digests))
    assert key != step_cache.cache_key(node, {("load", "output"): "b" * 64})
    other = flow.trace({"n": 3, "weight": 2}).nodes["count"]
    same = flow.trace({"n": 3}).nodes["count"]
    digests = {("parity", "output"): "c" * 64}
    assert step_cache.cache_key(other, digests) != step_cache.cache_key(same, digests)


def test_steps_from_one_factory_with_other_closure_values_do_not_share_outputs(local_client):
    def multiplier(factor: int):
        @step
        def scale(values: list) -> int:
            calls["scale"] += 1
            return sum(values) * factor

        return scale

    double, triple = multiplier(2), multiplier(3)

    @pipeline
    def doubled(n: int = 3):
        return double(load(n))

    @pipeline
    def tripled(n: int = 3):
        return triple(load(n))

    assert doubled.run().output == 6
    assert tripled.run().output == 9  # the same name and body, but not the same step
    assert doubled.run().output == 6 and calls["scale"] == 2
