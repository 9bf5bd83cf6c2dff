"""Several processes writing into one store at once lose nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing

import pytest

N_PROCESSES = 4
N_POINTS = 1000


def _log_points(db_url: str, artifacts_url: str, shared_run_id: str, worker: int) -> str:
    """Log N_POINTS into the shared run and into a run of its own, flushing often to contend."""
    from loopml.store import open_store
    from loopml.tracking.client import TrackingClient
    from loopml.tracking.runs import ActiveRun

    client = TrackingClient(open_store(db_url, artifacts_url=artifacts_url))
    shared = ActiveRun(client, client.get_run(shared_run_id))
    own = ActiveRun(client, client.create_run("concurrency", name=f"worker-{worker}", capture=False))
    for i in range(N_POINTS):
        shared.log_metric("x", worker * N_POINTS + i, step=worker * N_POINTS + i)
        own.log_metric("x", float(i))
        if i % 50 == 49:
            shared.flush()
            own.flush()
    shared.flush()
    own.end()
    client.close()
    return own.id


def _open_and_write(db_url: str, artifacts_url: str, worker: int) -> int:
    from loopml.store import open_store

    store = open_store(db_url, artifacts_url=artifacts_url)
    experiment = store.tracking.create_experiment(f"race-{worker}")
    store.close()
    return experiment.experiment_id


@pytest.mark.slow
def test_processes_logging_at_once_lose_no_point(client, db_url, tmp_path):
    shared = client.create_run("concurrency", name="shared", capture=False)
    context = multiprocessing.get_context("spawn")
    with context.Pool(N_PROCESSES) as pool:
        own_ids = pool.starmap(
            _log_points,
            [(db_url, str(tmp_path / "artifacts"), shared.run_id, w) for w in range(N_PROCESSES)],
        )
    history = client.get_metric_history(shared.run_id, "x")
    assert len(history) == N_PROCESSES * N_POINTS
    assert sorted(p.value for p in history) == [float(v) for v in range(N_PROCESSES * N_POINTS)]
    assert client.get_run(shared.run_id).metrics["x"] == N_PROCESSES * N_POINTS - 1  # highest step wins
    for run_id in own_ids:
        points = client.get_metric_history(run_id, "x")
        assert [p.value for p in points] == [float(i) for i in range(N_POINTS)]


@pytest.mark.slow
def test_processes_opening_a_new_store_at_once_migrate_it_once(db_url, tmp_path):
    context = multiprocessing.get_context("spawn")
    with context.Pool(N_PROCESSES) as pool:
        ids = pool.starmap(_open_and_write, [(db_url, str(tmp_path / "artifacts"), w) for w in range(N_PROCESSES)])
    assert sorted(ids) == [1, 2, 3, 4]
