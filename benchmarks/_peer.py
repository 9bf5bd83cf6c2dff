"""Shared by the tracking benchmark and its MLflow side (stdlib only: it runs in both venvs).

``benchmarks/tracking.py`` imports the data generators from here, so loopml and
MLflow log exactly the same params and metrics. The same file is executed by the
MLflow venv's interpreter (``/tmp/peer-mlflow/bin/python benchmarks/_peer.py CONFIG``)
to time MLflow in-process on SQLite; it prints its timings as JSON on the last
line of stdout and its progress on stderr.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODELS = ("rf", "gbm", "lr")
FILTER = "params.model = 'rf' and metrics.acc > 0.5"
ORDER_BY = ("metrics.acc DESC",)
MAX_RESULTS = 100


def make_runs(n: int, seed: int) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """``n`` runs of 5 params and 5 metrics; ``model`` is rf/gbm/lr, ``acc`` uniform in [0, 1]."""
    rng = random.Random(seed)
    runs = []
    for _ in range(n):
        params = {
            "model": rng.choice(MODELS),
            "n_estimators": rng.choice((50, 100, 200, 400, 800)),
            "max_depth": rng.randint(2, 16),
            "learning_rate": rng.choice((0.01, 0.03, 0.1, 0.3)),
            "seed": rng.randrange(1_000_000),
        }
        metrics = {
            "acc": rng.random(),
            "f1": rng.random(),
            "precision": rng.random(),
            "recall": rng.random(),
            "log_loss": rng.uniform(0.05, 2.0),
        }
        runs.append((params, metrics))
    return runs


def metric_values(n: int, seed: int) -> list[float]:
    """A decreasing, noisy training loss: the series the metric-logging workload writes."""
    rng = random.Random(seed)
    return [2.0 / (1 + 0.01 * i) + rng.gauss(0, 0.02) for i in range(n)]


def median_ms(fn: Callable[[], Any], reps: int) -> tuple[float, list[float]]:
    """Call ``fn`` once to warm up, then ``reps`` times; the median and every time, in ms."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), times


def _progress(message: str) -> None:
    print(f"[mlflow] {message}", file=sys.stderr, flush=True)


def run_mlflow(config: dict[str, Any]) -> dict[str, Any]:
    """Time the tracking workloads on MLflow with a SQLite backend in ``config['workdir']``."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    workdir = Path(config["workdir"])
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"

    start = time.perf_counter()
    import mlflow
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic", "sqlalchemy", "git", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import_s = time.perf_counter() - start

    client = MlflowClient()
    seed, reps = config["seed"], config["reps"]

    def experiment(name: str) -> str:
        return client.create_experiment(name, artifact_location=(workdir / "artifacts" / name).as_uri())

    out: dict[str, Any] = {"version": mlflow.__version__, "import_s": import_s}

    # 1. log_metric one call at a time; MLflow writes synchronously, so each call is durable.
    n_metrics = config["metrics"]
    values = metric_values(n_metrics, seed)
    _progress(f"log_metric x {n_metrics}")
    with mlflow.start_run(experiment_id=experiment("metric-logging")):
        start = time.perf_counter()
        for step, value in enumerate(values):
            mlflow.log_metric("loss", value, step=step)
        out["metrics_s"] = time.perf_counter() - start
        run_id = mlflow.active_run().info.run_id
    out["metrics_stored"] = len(client.get_metric_history(run_id, "loss"))

    # 2. n runs x (5 params + 5 metrics) through the fluent API.
    n_runs = config["runs"]
    search_exp = experiment("search")
    run_ids = []
    _progress(f"creating {n_runs} runs")
    start = time.perf_counter()
    for i, (params, metrics) in enumerate(make_runs(n_runs, seed)):
        with mlflow.start_run(experiment_id=search_exp) as run:
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            run_ids.append(run.info.run_id)
        if (i + 1) % 1000 == 0:
            _progress(f"  {i + 1} runs, {time.perf_counter() - start:.0f} s")
    out["runs_s"] = time.perf_counter() - start

    # 3. search: filter on a param and a metric, ordered by a metric, 100 results.
    _progress("search_runs")
    query = {"filter_string": FILTER, "order_by": list(ORDER_BY), "max_results": MAX_RESULTS}
    out["search_frame_ms"], out["search_frame_all_ms"] = median_ms(
        lambda: mlflow.search_runs(experiment_ids=[search_exp], **query), reps
    )
    out["search_client_ms"], out["search_client_all_ms"] = median_ms(
        lambda: client.search_runs(experiment_ids=[search_exp], **query), reps
    )
    found = client.search_runs(experiment_ids=[search_exp], **query)
    out["search_top_acc"] = [r.data.metrics["acc"] for r in found]
    out["search_models"] = sorted({r.data.params["model"] for r in found})

    # 4. get_run on random runs.
    sample = random.Random(seed + 1).sample(run_ids, min(config["get_runs"], len(run_ids)))
    client.get_run(sample[0])
    times = []
    for run_id in sample:
        start = time.perf_counter()
        client.get_run(run_id)
        times.append((time.perf_counter() - start) * 1000)
    out["get_run_ms"] = statistics.median(times)
    return out


if __name__ == "__main__":
    result = run_mlflow(json.loads(sys.argv[1]))
    print(json.dumps(result))
