"""Two real agents on one PostgreSQL store: one leads; SIGKILL it mid-retrain and the other takes over.

What is checked is what was stored: one task for the alert, failed cleanly by the new leader (no
second retrain of the same alert), the champion still serving, and two elections in the audit log.
"""

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
from tests.conftest import drop_pg_schema, make_pg_schema_url
from tests.loop import library

POLICIES = '''
import os
import time

import loopml
from sklearn.linear_model import LogisticRegression

from tests.loop.library import data


@loopml.step
def slow_fit(marker: str) -> LogisticRegression:
    with open(marker, "a") as out:     # one line per retrain that reached training: its agent's pid
        out.write(f"{os.getpid()}\\n")
    time.sleep(120)                    # the leader is killed long before this ends
    frame = data()
    return LogisticRegression().fit(frame.drop(columns="target"), frame["target"])


@loopml.pipeline
def retrain(marker: str = ""):
    return {"model": slow_fit(marker), "holdout": slow_fit(marker), "target": "target"}


loopml.loop.policy("bc", pipeline=retrain, monitor="bc-drift", params={"marker": os.environ["MARKER"]})
'''


def _wait(condition, what: str, processes: list[subprocess.Popen[bytes]], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"an agent exited while waiting for {what}: {process.stdout.read().decode()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_the_follower_takes_over_when_the_leader_is_killed_and_no_task_runs_twice(pg_base_url, tmp_path):
    url, schema = make_pg_schema_url(pg_base_url)
    db_url = url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    marker = tmp_path / "marker"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(tmp_path / "home"), LOOPML_DB_URL=db_url, LOOPML_ARTIFACTS_URL=str(tmp_path / "art"),
               MARKER=str(marker), PYTHONPATH=os.getcwd())  # fmt: skip
    (tmp_path / "ha_policies.py").write_text(textwrap.dedent(POLICIES))

    store = open_store(db_url, artifacts_url=str(tmp_path / "art"))
    agents: list[subprocess.Popen[bytes]] = []
    try:
        client = TrackingClient(store)
        registry = RegistryClient(client)
        run = client.create_run("ha", capture=False)
        active = ActiveRun(client, run)
        active.log_model(library.weak_champion(), "model", input_example=library.data()[library.FEATURES].head(3))
        active.end()
        registry.register_model(f"runs:/{run.info.run_id}/model", "bc")
        registry.set_alias("bc", "champion", 1)
        ServingClient(client).deploy("bc", "champion")
        store.monitoring.put_monitor("bc-drift", "bc", {}, actor="test")
        store.monitoring.record_result("bc-drift", model="bc", version=1, status="alert", summary={}, figures={},
                                       alerts=[AlertSpec("data_drift", "drift", {})], actor="monitor")  # fmt: skip

        command = [sys.executable, "-m", "loopml.cli.main", "loop", "run", "--policies", str(tmp_path / "ha_policies.py"),
                   "--interval", "0.2", "--lease-ttl", "2", "--stale-after", "2"]  # fmt: skip
        for _ in range(2):
            agents.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))

        _wait(lambda: marker.exists() and marker.read_text().strip() != "", "the leader to start training", agents)
        leader_pid = int(marker.read_text().split()[0])
        [leader] = [a for a in agents if a.pid == leader_pid]
        [follower] = [a for a in agents if a.pid != leader_pid]
        [task] = store.loop.list_tasks(policy="retrain-bc")
        assert task.state == "running" and task.stage == "training"
        lease = store.loop.get_lease("loopml-agent")
        assert lease is not None and lease.holder.split(":")[1] == str(leader_pid) and lease.epoch == 1

        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=30)
        _wait(lambda: store.loop.get_task(task.task_id).state != "running", "the follower to fail the task", [follower])

        ended = store.loop.get_task(task.task_id)
        assert ended.state == "failed" and "agent stopped during 'training'" in (ended.outcome or "")
        lease = store.loop.get_lease("loopml-agent")
        assert lease is not None and lease.holder.split(":")[1] == str(follower.pid) and lease.epoch == 2
        assert ended.details["recovered_by"] == "loopml-loop"
        elected = store.audit.list_events(action="loop.leader.elected")
        assert [(e.after or {}).get("epoch") for e in elected] == [1, 2]

        # the follower leads on for a few more ticks: the alert the dead leader took is not retrained again
        ticks = store.loop.get_lease("loopml-agent")
        _wait(lambda: store.loop.get_lease("loopml-agent").expires_at > ticks.expires_at + 400, "more ticks", [follower])  # type: ignore[union-attr]
        assert [t.task_id for t in store.loop.list_tasks(policy="retrain-bc")] == [task.task_id]
        assert marker.read_text().split() == [str(leader_pid)]  # training started once, by the dead leader
        assert registry.get_model_version("bc", "champion").version == 1
        assert [v.version for v in registry.search_model_versions("bc")] == [1]  # nothing half-registered
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                agent.wait(timeout=30)
        store.close()
        drop_pg_schema(pg_base_url, schema)
