"""SIGKILL the agent in the middle of a retrain, start it again: the champion keeps serving and the log says why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from loopml.entities.monitoring import AlertSpec
from loopml.registry.client import RegistryClient
from loopml.serving.client import ServingClient
from loopml.store import open_store
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun
from tests.loop import library

POLICIES = '''
import os
import time

import pandas as pd
import loopml
from sklearn.linear_model import LogisticRegression

from tests.loop.library import data


@loopml.step
def slow_fit(marker: str) -> LogisticRegression:
    open(marker, "w").close()          # tell the test we are mid-run
    time.sleep(120)                    # killed long before this ends
    frame = data()
    return LogisticRegression().fit(frame.drop(columns="target"), frame["target"])


@loopml.pipeline
def retrain(marker: str = ""):
    return {"model": slow_fit(marker), "holdout": slow_fit(marker), "target": "target"}


loopml.loop.policy("bc", pipeline=retrain, monitor="bc-drift", params={"marker": os.environ["MARKER"]})
'''


@pytest.mark.slow
def test_a_killed_agent_leaves_the_champion_serving_and_the_restart_records_the_failure(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(home), MARKER=str(tmp_path / "marker"), PYTHONPATH=os.getcwd())
    (tmp_path / "kill_policies.py").write_text(textwrap.dedent(POLICIES))

    store = open_store(f"sqlite:///{home / 'loopml.db'}", artifacts_url=str(home / "artifacts"))
    client = TrackingClient(store)
    registry = RegistryClient(client)
    run = client.create_run("kill", capture=False)
    active = ActiveRun(client, run)
    active.log_model(library.weak_champion(), "model", input_example=library.data()[library.FEATURES].head(3))
    active.end()
    registry.register_model(f"runs:/{run.info.run_id}/model", "bc")
    registry.set_alias("bc", "champion", 1)
    ServingClient(client).deploy("bc", "champion")
    store.monitoring.put_monitor("bc-drift", "bc", {}, actor="test")
    store.monitoring.record_result("bc-drift", model="bc", version=1, status="alert", summary={}, figures={},
                                   alerts=[AlertSpec("data_drift", "drift", {})], actor="monitor")  # fmt: skip

    command = [sys.executable, "-m", "loopml.cli.main", "loop", "run", "--policies", str(tmp_path / "kill_policies.py")]
    agent = subprocess.Popen([*command, "--once"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (tmp_path / "marker").exists():
        if agent.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the agent never reached the training step: " + agent.stdout.read().decode())
        time.sleep(0.1)
    agent.send_signal(signal.SIGKILL)
    agent.wait(timeout=30)

    [task] = store.loop.list_tasks(policy="retrain-bc")
    assert task.state == "running" and task.stage == "training"  # what the dead agent left behind
    assert registry.get_model_version("bc", "champion").version == 1
    assert ServingClient(client).get_deployment("bc").target == "champion"

    (tmp_path / "marker").unlink()
    again = subprocess.run([*command, "--once", "--stale-after", "0"], env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    task = store.loop.get_task(task.task_id)
    assert task.state == "failed" and "agent stopped during 'training'" in task.outcome
    assert registry.get_model_version("bc", "champion").version == 1
    assert [v.version for v in registry.search_model_versions("bc")] == [1]  # nothing half-registered
    failed = store.audit.list_events(action="loop.task.failed")
    assert failed and failed[-1].reason == task.outcome
    assert not (tmp_path / "marker").exists()  # the restart did not retrain again: the alert was taken
    store.close()
