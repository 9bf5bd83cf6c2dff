"""The local process pool: independent branches in parallel worker processes, same result as in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.errors import StepFailedError
from tests.pipelines import library

pytestmark = pytest.mark.slow


def _calls(log: Path) -> list[tuple[str, int]]:
    return [(name, int(pid)) for name, pid in (line.split() for line in log.read_text().splitlines())]


def test_the_pool_gives_the_in_process_result_and_runs_steps_in_workers(local_client, tmp_path: Path) -> None:
    import os

    log = tmp_path / "calls.log"
    expected = library.fan.run(n=5, cache=False).output
    result = library.fan.run(n=5, parallel=True, max_workers=2, cache=False, params={"log": str(log)})
    assert result.output == expected == {"total": 30, "count": 5}
    calls = _calls(log)
    assert sorted(name for name, _ in calls) == ["square"] * 5 + ["total"]
    assert os.getpid() not in {pid for _, pid in calls}  # every step ran in a worker
    assert local_client.get_run(result.run_id).tags["loopml.pipeline.runner"] == "local-parallel"

    # cache hits are answered by the driver: nothing reaches the workers
    log.unlink()
    again = library.fan.run(n=5, parallel=True, max_workers=2, params={"log": str(log)})
    assert again.n_cached == 6 and not log.exists() and again.output == expected


def test_a_failure_in_a_worker_fails_the_run_and_keeps_finished_steps(local_client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    with pytest.raises(StepFailedError, match="value 9 is bad") as caught:
        library.fan_with_failure.run(n=4, bad=3, parallel=True, max_workers=2, params={"log": str(log)})
    assert "Traceback" in caught.value.traceback and caught.value.step.startswith("fail_on")
    assert local_client.get_run(caught.value.run_id).info.status.value == "FAILED"
