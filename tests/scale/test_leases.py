"""Named leases (the loop agents' leader election) on every backend: one holder at a time, epochs, audit."""

from __future__ import annotations

import time

import pytest

from loopml.errors import InvalidValueError
from loopml.loop.leader import Leadership, LeadershipLostError


def test_one_holder_at_a_time_and_a_new_epoch_for_each_new_holder(store):
    first = store.loop.acquire_lease("agents", "a", ttl_s=60)
    assert first is not None and (first.holder, first.epoch) == ("a", 1)
    assert store.loop.acquire_lease("agents", "b", ttl_s=60) is None  # a holds it
    renewed = store.loop.acquire_lease("agents", "a", ttl_s=60)
    assert renewed is not None and renewed.epoch == 1 and renewed.expires_at >= first.expires_at

    store.loop.release_lease("agents", "b")  # not b's to release: nothing happens
    assert store.loop.acquire_lease("agents", "b", ttl_s=60) is None
    store.loop.release_lease("agents", "a")
    taken = store.loop.acquire_lease("agents", "b", ttl_s=60)
    assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
    assert store.loop.get_lease("agents") == taken
    assert store.loop.get_lease("nobody-took-this") is None

    elected = [e for e in store.audit.list_events(action="loop.leader.elected") if e.target == "agents"]
    assert [(e.actor, (e.after or {}).get("epoch")) for e in elected] == [("a", 1), ("b", 2)]


def test_an_expired_lease_goes_to_the_next_agent_that_asks(store):
    assert store.loop.acquire_lease("short", "a", ttl_s=0.1) is not None
    deadline = time.monotonic() + 10
    taken = None
    while taken is None and time.monotonic() < deadline:  # an event (the takeover), not a duration
        taken = store.loop.acquire_lease("short", "b", ttl_s=60)
        time.sleep(0.05)
    assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
    assert store.loop.acquire_lease("short", "a", ttl_s=60) is None


@pytest.mark.parametrize(
    ("name", "holder", "ttl", "field"),
    [
        ("", "a", 1.0, "lease name"),
        ("x", " a", 1.0, "lease holder"),
        ("x", "a", 0.0, "ttl_s"),
        ("x" * 129, "a", 1.0, "lease name"),
        ("x", "a", True, "ttl_s"),
    ],
)
def test_bad_lease_arguments_are_refused_by_name(store, name, holder, ttl, field):
    with pytest.raises(InvalidValueError, match=field):
        store.loop.acquire_lease(name, holder, ttl_s=ttl)
    assert store.loop.get_lease("x") is None  # nothing stored


def test_a_leader_whose_lease_was_taken_knows_it_lost(store):
    ours = Leadership(store, ttl_s=0.1, holder="slow")
    assert ours.ensure() and ours.leading
    ours.check()
    deadline = time.monotonic() + 10
    while store.loop.acquire_lease("loopml-agent", "other", ttl_s=60) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not ours.ensure()
    with pytest.raises(LeadershipLostError):
        ours.check()
    assert ours.current() is not None and ours.current().holder == "other"
