"""The same pipeline on every store backend (SQLite, PostgreSQL, REST): runs, outputs, cache hits, failures."""

from __future__ import annotations

import json

import pytest

from loopml.errors import StepFailedError
from loopml.pipelines import cache as step_cache
from tests.pipelines import library


def test_run_cache_and_failure_on_every_backend(client) -> None:
    library.CALLS.clear()
    first = library.fan.run(n=3, client=client)
    assert first.output == {"total": 5, "count": 3}
    assert library.CALLS == {"square": 3, "total": 1}
    children = client.search_runs(None, filter=f"attributes.parent_run_id = '{first.run_id}'", as_frame=False)
    assert sorted(c.tags[step_cache.NODE_TAG] for c in children) == ["square", "square_2", "square_3", "total"]

    again = library.fan.run(n=4, client=client)  # three squares cached, one new; the total runs again
    assert again.output == {"total": 14, "count": 4}
    assert library.CALLS == {"square": 4, "total": 2}
    assert [r.cached for r in again.steps.values()] == [True, True, True, False, False]
    # the tag search finds the same run the index of recent runs did
    key = again.steps["square_2"].cache_key
    assert step_cache.find_cached(client, key).run_id == again.steps["square_2"].run_id
    assert again.load("square_3") == 4

    with pytest.raises(StepFailedError, match="value 4 is bad") as caught:
        library.fan_with_failure.run(n=3, bad=2, client=client)
    assert client.get_run(caught.value.run_id).info.status.value == "FAILED"
    record = json.loads(
        client.read_artifact(
            client.search_runs(None, filter="tags.loopml.pipeline = 'fan_with_failure'", as_frame=False)[0].run_id,
            step_cache.STEPS_ARTIFACT,
        )
    )
    statuses = {s["node"]: s["status"] for s in record["steps"]}
    assert statuses["fail_on_3"] == "FAILED" and statuses["total"] == "NOT_RUN"
