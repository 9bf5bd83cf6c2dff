"""The Ray runner on a local Ray instance started here (2 CPUs), shared by this module's tests.

The tests carry ``xdist_group("ray")``: with ``--dist loadgroup`` they run in one
worker and share the instance; under the default distribution each worker that
gets one starts its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.errors import PipelineDefinitionError, StepFailedError
from tests.pipelines import library

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_gives_the_local_result_with_each_step_a_task(ray_instance: Any, local_client: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    expected = library.fan.run(n=6, cache=False).output
    result = library.fan.run(n=6, runner="ray", cache=False, params={"log": str(log)})
    assert result.output == expected == {"total": 55, "count": 6}
    pids = {int(line.split()[1]) for line in log.read_text().splitlines()}
    assert len(log.read_text().splitlines()) == 7 and os.getpid() not in pids
    assert local_client.get_run(result.run_id).tags["loopml.pipeline.runner"] == "ray"
    for record in result.steps.values():  # every step's run and outputs are in the driver's store
        assert local_client.get_run(record.run_id).info.status.value == "FINISHED"

    log.unlink()
    again = library.fan.run(n=6, runner="ray", params={"log": str(log)})
    assert again.n_cached == 7 and not log.exists() and again.output == expected  # hits submit no task

    # a step asking for both CPUs gets them; one asking for more than the cluster has is refused, not queued forever
    assert library.uses_resources.run(x=1, runner="ray").output == 3
    with pytest.raises(PipelineDefinitionError, match="asks for 64 of CPU, but the Ray cluster has 2"):
        library.asks_too_much.run(runner="ray")


def test_a_failed_ray_task_fails_the_run_and_keeps_finished_steps(ray_instance: Any, local_client: Any) -> None:
    with pytest.raises(StepFailedError, match="value 4 is bad") as caught:
        library.fan_with_failure.run(n=3, bad=2, runner="ray")
    assert "ValueError" in caught.value.traceback
    assert local_client.get_run(caught.value.run_id).info.status.value == "FAILED"
    library.CALLS.clear()
    fixed = library.fan_with_failure.run(n=3, bad=100)  # locally now: the squares done on Ray are cache hits
    assert fixed.output == {"total": 5, "count": 3}
    assert [fixed.steps[node].cached for node in ("square", "square_2", "square_3")] == [True, True, True]
