"""Server benchmark (issue 4): ``loopml server`` against ``mlflow server`` (SQLite), same workloads, one run.

Both tools are measured through their own server on 127.0.0.1, one worker each, with their own client:

1. Metric logging: one run, ``--metrics`` (10,000) ``log_metric(key, value, step=i)`` calls one at a time,
   timed until durable, then the stored points are counted through the API.
   loopml: ``run.log_metric`` (client-side batching) then ``loopml.flush()``, whose return means durable.
   MLflow: ``mlflow.log_metric`` with its default (synchronous) path, and its async path
   (``synchronous=False`` then ``mlflow.flush_async_logging()``), both with MLflow's defaults and with
   ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1`` (MLflow's own client-side batching).
2. Search: ``--runs`` (10,000) runs with 5 params and 5 metrics each (``_peer.make_runs``: identical data
   for both), then ``search_runs(filter "params.model = 'rf' and metrics.acc > 0.5", order by
   metrics.acc DESC, max_results 100)``, median of ``--reps`` after a warm-up, as objects and as a DataFrame.

The runs are created before each server starts, straight into the file it will serve (their creation
is not the measured figure): loopml through its store API in-process (``--load store``, the rows loopml
itself writes; ``--load sql`` bulk-loads the same rows with sqlite3), MLflow with ``MlflowClient``
``create_run`` + ``log_batch`` + ``set_terminated`` in-process on a SQLite file in ``/dev/shm`` (its
rollback journal fsyncs every commit; on tmpfs that costs nothing), copied next to the server afterwards.

The floor is loopml without HTTP: the same logging and the same search on loopml's SQL store in-process.

MLflow runs in its own venv (``/tmp/peer-mlflow``, created when missing unless ``--no-peer``): this very
file is executed by that venv's interpreter (``--peer-load`` / ``--peer-client``) and prints its figures as
JSON on its last line; everything above ``main`` that it needs is stdlib only.

    .venv/bin/python benchmarks/server.py            # full run (~20 minutes on 2 cores, 17 of them MLflow)
    .venv/bin/python benchmarks/server.py --quick    # smoke test, about a minute
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import ensure_venv, machine, this_python
from _peer import FILTER, MAX_RESULTS, ORDER_BY, make_runs, median_ms, metric_values

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path("/tmp/peer-mlflow")
START_TIME = 1_700_000_000_000  # ms; run i starts at START_TIME + i in both stores
TIMES = "\u00d7"
LOG_TARGET = 20.0  # issue 4: >= 20x MLflow on logging
SEARCH_TARGET = 5.0  # issue 4: >= 5x MLflow on search


def log(side: str, message: str) -> None:
    print(f"[{side}] {message}", file=sys.stderr, flush=True)


# -- servers -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    name: str, argv: list[str], env: dict[str, str], cwd: Path, health_url: str, log_path: Path
) -> Iterator[float]:
    """Start ``argv`` in its own process group, wait for ``health_url`` to answer 200, stop the group after.

    Yields the seconds it took to answer. The whole group is stopped because ``mlflow server`` runs
    uvicorn (and its job runner, if enabled) as children.
    """
    start = time.perf_counter()
    with log_path.open("wb") as output:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = start + 180
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}; its log:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(health_url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.perf_counter() > deadline:
                raise SystemExit(
                    f"{name} did not answer {health_url} within 180 s; its log:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield time.perf_counter() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(ProcessLookupError):  # children left behind in the group go too
            os.killpg(proc.pid, signal.SIGKILL)


def server_stack() -> str:
    """uvicorn's version and what its "auto" settings pick in this venv: uvloop or asyncio, httptools or h11."""
    import importlib.util

    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {uvicorn.__version__} ({loop}, {parser})"


# -- MLflow side (runs in the MLflow venv) ----------------------------------------------------------------


def _quiet_mlflow() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "sqlalchemy", "git", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def peer_load(config: dict[str, Any]) -> dict[str, Any]:
    """Create the search runs with MlflowClient in-process on ``config['db']`` (a SQLite file)."""
    _quiet_mlflow()
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunStatus

    client = MlflowClient(tracking_uri=f"sqlite:///{config['db']}")
    experiment_id = client.create_experiment("search", artifact_location=Path(config["artifacts"]).as_uri())
    start = time.perf_counter()
    data = make_runs(config["runs"], config["seed"])
    for i, (params, metrics) in enumerate(data):
        now = START_TIME + i
        run = client.create_run(experiment_id, start_time=now, run_name=f"run-{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
            params=[Param(key, str(value)) for key, value in params.items()],
        )
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED), end_time=now + 1)
        if (i + 1) % 1000 == 0:
            log("mlflow", f"  {i + 1} runs, {time.perf_counter() - start:.0f} s")
    return {"load_s": time.perf_counter() - start}


def peer_client(config: dict[str, Any]) -> dict[str, Any]:
    """The timed workloads through ``mlflow server`` at ``config['url']``."""
    os.environ["MLFLOW_TRACKING_URI"] = config["url"]
    os.environ.pop("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", None)
    _quiet_mlflow()
    start = time.perf_counter()
    import mlflow
    from mlflow import MlflowClient

    out: dict[str, Any] = {"version": mlflow.__version__, "import_s": time.perf_counter() - start}
    out["stack"] = server_stack()
    client = MlflowClient()

    def logging_run(label: str, n: int, synchronous: bool) -> tuple[float, int]:
        values = metric_values(n, config["seed"])
        experiment_id = client.create_experiment(f"metric-logging-{label}")
        log("mlflow", f"log_metric x {n:,} ({label})")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            start = time.perf_counter()
            if synchronous:
                for step, value in enumerate(values):
                    mlflow.log_metric("loss", value, step=step)
            else:
                for step, value in enumerate(values):
                    mlflow.log_metric("loss", value, step=step, synchronous=False)
                mlflow.flush_async_logging()
            seconds = time.perf_counter() - start
        return seconds, len(client.get_metric_history(run.info.run_id, "loss"))

    out["sync_n"] = config["sync_metrics"]
    out["sync_s"], out["sync_stored"] = logging_run("sync", out["sync_n"], synchronous=True)
    if config["async_metrics"]:
        out["async_n"] = config["async_metrics"]
        out["async_s"], out["async_stored"] = logging_run("async", out["async_n"], synchronous=False)
    os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = "1"  # read by the queue on every batch
    out["buffered_n"] = config["metrics"]
    times = []
    for rep in range(config["log_reps"]):
        seconds, out["buffered_stored"] = logging_run(f"async-buffered-{rep}", out["buffered_n"], synchronous=False)
        times.append(seconds)
    out["buffered_s"], out["buffered_all_s"] = statistics.median(times), times
    os.environ.pop("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", None)

    log("mlflow", "search_runs")
    experiment_id = client.get_experiment_by_name("search").experiment_id
    query = {"filter_string": FILTER, "order_by": list(ORDER_BY), "max_results": MAX_RESULTS}
    reps = config["reps"]
    out["search_objects_ms"], out["search_objects_all_ms"] = median_ms(
        lambda: client.search_runs(experiment_ids=[experiment_id], **query), reps
    )
    out["search_frame_ms"], out["search_frame_all_ms"] = median_ms(
        lambda: mlflow.search_runs(experiment_ids=[experiment_id], **query), reps
    )
    found = client.search_runs(experiment_ids=[experiment_id], **query)
    out["search_top_acc"] = [run.data.metrics["acc"] for run in found]
    out["search_models"] = sorted({run.data.params["model"] for run in found})
    frame = mlflow.search_runs(experiment_ids=[experiment_id], **query)
    out["search_frame_top_acc"] = [float(v) for v in frame["metrics.acc"]]
    return out


# -- loopml side ------------------------------------------------------------------------------------------


def loopml_env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI")
    }
    env["LOOPML_HOME"] = str(home)
    return env


def open_sql_store(home: Path) -> Any:
    from loopml.store import open_store

    return open_store(f"sqlite:///{home / 'loopml.db'}", artifacts_url=str(home / "artifacts"))


def loopml_load(home: Path, runs: int, seed: int, how: str) -> dict[str, Any]:
    """The search runs, written into the SQLite file the server will serve, before it starts."""
    from loopml.entities.tracking import Metric, RunStatus
    from loopml.tracking.validation import check_mapping

    data = make_runs(runs, seed)
    store = open_sql_store(home)  # migrates the schema
    try:
        experiment_id = store.tracking.create_experiment("search").experiment_id
        start = time.perf_counter()
        if how == "store":
            tracking = store.tracking
            for i, (params, metrics) in enumerate(data):
                now = START_TIME + i
                run = tracking.create_run(
                    experiment_id, name=f"run-{i}", user="bench", start_time=now, params=check_mapping(params, "Param")
                )
                tracking.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, now) for k, v in metrics.items()])
                tracking.end_run(run.info.run_id, RunStatus.FINISHED, now + 1)
                if (i + 1) % 2000 == 0:
                    log("loopml", f"  {i + 1} runs, {time.perf_counter() - start:.0f} s")
    finally:
        store.close()
    if how == "sql":
        from tracking import connect, insert_run, run_rows  # the same rows, as benchmarks/tracking.py loads them

        conn = connect(home / "loopml.db")
        conn.execute("BEGIN IMMEDIATE")
        for i, (params, metrics) in enumerate(data):
            insert_run(conn, run_rows(experiment_id, params, metrics, START_TIME + i))
        conn.commit()
        conn.close()
    return {"load_s": time.perf_counter() - start, "search_experiment_id": experiment_id}


def log_points(loopml: Any, experiment: str, values: list[float]) -> tuple[float, int]:
    """``run.log_metric`` one call at a time, then ``loopml.flush()``: seconds until durable, points stored."""
    with loopml.start_run(experiment=experiment, capture=False) as run:  # the run's creation is not timed
        start = time.perf_counter()
        for step, value in enumerate(values):
            run.log_metric("loss", value, step=step)
        loopml.flush()
        seconds = time.perf_counter() - start
        stored = len(loopml.get_metric_history(run.id, "loss"))
    return seconds, stored


def timed_logging(loopml: Any, values: list[float], reps: int) -> tuple[float, list[float]]:
    """``reps`` fresh runs of the logging workload; the median seconds and every time. Each must store all points."""
    times = []
    for _ in range(reps):
        seconds, stored = log_points(loopml, "metric-logging", values)
        if stored != len(values):
            raise SystemExit(f"loopml stored {stored} of {len(values)} metric points")
        times.append(seconds)
    return statistics.median(times), times


def search_figures(loopml: Any, experiment_id: int, reps: int, prefix: str) -> dict[str, Any]:
    query = {"experiment": experiment_id, "filter": FILTER, "order_by": list(ORDER_BY), "max_results": MAX_RESULTS}
    out: dict[str, Any] = {}
    out[f"{prefix}objects_ms"], out[f"{prefix}objects_all_ms"] = median_ms(
        lambda: loopml.search_runs(**query, as_frame=False), reps
    )
    out[f"{prefix}frame_ms"], out[f"{prefix}frame_all_ms"] = median_ms(
        lambda: loopml.search_runs(**query, as_frame=True), reps
    )
    page = loopml.search_runs(**query, as_frame=False)
    out[f"{prefix}top_acc"] = [run.metrics["acc"] for run in page.runs]
    out[f"{prefix}models"] = sorted({run.params["model"] for run in page.runs})
    frame = loopml.search_runs(**query, as_frame=True)
    column = "metrics.acc" if "metrics.acc" in frame.columns else "acc"
    out[f"{prefix}frame_top_acc"] = [float(v) for v in frame[column]]
    return out


def search_breakdown(url: str, loopml: Any, experiment_id: int, reps: int) -> dict[str, Any]:
    """Where a REST search spends its time: the bare request, and the store call without the experiment lookup."""
    import httpx

    from loopml.store.rest import codec
    from loopml.tracking.search import parse_filter, parse_order_by

    body = json.dumps(
        {
            "experiment_ids": [experiment_id],
            "filter": codec.filter_out(parse_filter(FILTER)),
            "order_by": codec.order_by_out(parse_order_by(list(ORDER_BY))),
            "max_results": MAX_RESULTS,
            "page_token": None,
        }
    ).encode()
    out: dict[str, Any] = {}
    with httpx.Client() as http:
        headers = {"Content-Type": "application/json"}
        target = f"{url}/api/v1/runs/search"
        out["raw_http_ms"], _ = median_ms(lambda: http.post(target, content=body, headers=headers).content, reps)
        out["raw_http_bytes"] = len(http.post(target, content=body, headers=headers).content)
        out["health_ms"], _ = median_ms(lambda: http.get(f"{url}/api/v1/health").content, max(reps, 20))
    tracking = loopml.get_tracking_client().store.tracking
    parsed = (parse_filter(FILTER), parse_order_by(list(ORDER_BY)))
    out["store_call_ms"], _ = median_ms(
        lambda: tracking.search_runs([experiment_id], parsed[0], parsed[1], MAX_RESULTS, None), reps
    )
    return out


def bench_loopml(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    import loopml

    home = base / "loopml"
    home.mkdir(parents=True)
    out: dict[str, Any] = {}
    log("loopml", f"creating {args.runs:,} runs in {home} ({args.load}), before the server starts")
    loaded = loopml_load(home, args.runs, args.seed, args.load)
    out["load_s"] = loaded["load_s"]
    experiment_id = loaded["search_experiment_id"]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(Path(sys.executable).with_name("loopml")),
        "server",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
    ]
    values = metric_values(args.metrics, args.seed)
    with running_server(
        "loopml server", argv, loopml_env(home), base, f"{url}/api/v1/health", base / "loopml-server.log"
    ) as up:
        out["startup_s"] = up
        for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL"):
            os.environ.pop(name, None)
        os.environ["LOOPML_HOME"] = str(base / "loopml-client")  # nothing of the client's lands in the server's home
        loopml.set_tracking_uri(url)
        log("loopml", f"log_metric x {args.metrics:,} through {url}, {args.log_reps} times")
        out["log_s"], out["log_all_s"] = timed_logging(loopml, values, args.log_reps)
        log("loopml", "search_runs through the server")
        out.update(search_figures(loopml, experiment_id, args.reps, "search_"))
        out.update(search_breakdown(url, loopml, experiment_id, args.reps))
        loopml.set_tracking_uri(None)

    # Floor: the same work on loopml's SQL store in-process, no HTTP (server stopped, same files).
    log("loopml", "floor: the same logging and search in-process (no HTTP)")
    floor_home = base / "loopml-floor"
    os.environ["LOOPML_HOME"] = str(floor_home)
    loopml.set_tracking_uri(None)
    out["floor_log_s"], out["floor_log_all_s"] = timed_logging(loopml, values, args.log_reps)
    os.environ["LOOPML_HOME"] = str(home)
    loopml.set_tracking_uri(None)
    out.update(search_figures(loopml, experiment_id, args.reps, "floor_search_"))
    loopml.get_tracking_client().close()
    return out


# -- MLflow orchestration (loopml's venv) --------------------------------------------------------------------


def ensure_peer(venv: Path) -> Path:
    return ensure_venv(venv, ["mlflow", "scikit-learn"], lambda message: log("loopml", message))


def peer_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # mlflow server starts uvicorn by name
    env["PYTHONWARNINGS"] = "ignore"
    env["MLFLOW_LOGGING_LEVEL"] = "ERROR"
    return env


def run_peer(python: Path, mode: str, config: dict[str, Any], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), mode, json.dumps(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the MLflow side ({mode}) failed (exit {done.returncode}): {done.stdout[-2000:]}")
    return json.loads(lines[-1])


def bench_mlflow(args: argparse.Namespace, python: Path, base: Path) -> dict[str, Any]:
    workdir = base / "mlflow"
    workdir.mkdir(parents=True)
    env = peer_env(args.peer_venv)
    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-mlflow-", dir=args.peer_load_dir))
    try:
        log("mlflow", f"creating {args.runs:,} runs with MlflowClient in-process on {scratch} (not timed as a figure)")
        loaded = run_peer(
            python,
            "--peer-load",
            {
                "db": str(scratch / "mlflow.db"),
                "artifacts": str(workdir / "artifacts"),
                "runs": args.runs,
                "seed": args.seed,
            },
            env,
            workdir,
        )
        shutil.copy2(scratch / "mlflow.db", workdir / "mlflow.db")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(args.peer_venv / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root",
        (workdir / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # The job runner (huey consumers for MLflow's GenAI jobs) would add 7 processes on 2 cores; tracking needs none.
    server_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    sync_n = min(args.peer_metrics or args.metrics, args.metrics)
    async_n = min(args.peer_async_metrics, args.metrics)
    with running_server("mlflow server", argv, server_env, workdir, f"{url}/health", base / "mlflow-server.log") as up:
        out = run_peer(
            python,
            "--peer-client",
            {
                "url": url,
                "metrics": args.metrics,
                "sync_metrics": sync_n,
                "async_metrics": async_n,
                "seed": args.seed,
                "reps": args.reps,
                "log_reps": args.log_reps,
            },
            env,
            workdir,
        )
    out["startup_s"] = up
    out["load_s"] = loaded["load_s"]
    for label in ("sync", "async", "buffered"):
        if f"{label}_n" in out:
            if out[f"{label}_stored"] != out[f"{label}_n"]:
                raise SystemExit(f"MLflow ({label}) stored {out[f'{label}_stored']} of {out[f'{label}_n']} points")
            out[f"{label}_full_s"] = out[f"{label}_s"] * args.metrics / out[f"{label}_n"]
    return out


# -- report ---------------------------------------------------------------------------------------------------


def fmt_s(seconds: float | None, count: int) -> str:
    if seconds is None:
        return "—"
    shown = f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"
    return f"{shown} ({count / seconds:,.0f} pts/s)"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def fmt_list(seconds: list[float]) -> str:
    return ", ".join(f"{x * 1000:,.0f}" for x in seconds) + " ms"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:,.0f}{TIMES}" if ratio >= 10 else f"{ratio:.1f}{TIMES}"


def verdict(ratio: float | None, target: float | None) -> str:
    if target is None or ratio is None:
        return "—"
    return "PASS" if ratio >= target else "FAIL"


def build_rows(args: argparse.Namespace, lm: dict[str, Any], ml: dict[str, Any] | None) -> list[tuple[str, ...]]:
    n = args.metrics
    rows: list[tuple[str, ...]] = []

    def mlflow_log(label: str) -> tuple[str, float | None]:
        if ml is None or f"{label}_n" not in ml:
            return ("skipped" if ml is None else "not run"), None
        full = ml[f"{label}_full_s"]
        if ml[f"{label}_n"] == n:
            return fmt_s(full, n), full
        return f"≈ {fmt_s(full, n)}, extrapolated from {ml[f'{label}_n']:,}", full

    for label, what, target in (
        (
            "sync",
            f"log_metric {TIMES} {n:,}, one call at a time, until durable — MLflow default (synchronous)",
            LOG_TARGET,
        ),
        ("async", "  the same — MLflow synchronous=False + flush_async_logging()", None),
        ("buffered", "  the same — MLflow async with MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1", None),
    ):
        shown, theirs = mlflow_log(label)
        ratio = theirs / lm["log_s"] if theirs else None
        rows.append(
            (
                what,
                fmt_s(lm["log_s"], n),
                shown,
                fmt_s(lm["floor_log_s"], n),
                fmt_ratio(ratio),
                f"≥ {LOG_TARGET:.0f}{TIMES} MLflow" if target else "report",
                verdict(ratio, target),
            )
        )
    for ours, theirs, what in (
        ("search_objects_ms", "search_objects_ms", "objects (as_frame=False / MlflowClient.search_runs)"),
        ("search_frame_ms", "search_frame_ms", "DataFrame (loopml.search_runs / mlflow.search_runs)"),
    ):
        mine = lm[ours]
        other = ml[theirs] if ml else None
        ratio = other / mine if other else None
        rows.append(
            (
                f"search_runs over {args.runs:,} runs, {what}",
                fmt_ms(mine),
                fmt_ms(other) if ml else "skipped",
                fmt_ms(lm["floor_" + ours]),
                fmt_ratio(ratio),
                f"≥ {SEARCH_TARGET:.0f}{TIMES} MLflow",
                verdict(ratio, SEARCH_TARGET),
            )
        )
    return rows


def print_report(args: argparse.Namespace, lm: dict[str, Any], ml: dict[str, Any] | None, env: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal or console.width < 190:
        console = Console(width=190)  # one line a row in logs
    table = Table(title="Server: loopml server vs mlflow server (SQLite, 127.0.0.1, 1 worker each)")
    for column in ("workload", "loopml", "MLflow", "floor (loopml, no HTTP)", "ratio", "target", "result"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for row in build_rows(args, lm, ml):
        style = {"PASS": "green", "FAIL": "bold red"}.get(row[-1], "")
        table.add_row(*row[:-1], f"[{style}]{row[-1]}[/]" if style else row[-1])
    console.print(table)
    notes = [
        f"machine: {env['machine']}; load average {env['load_before']} before, {env['load_after']} after "
        "(other work shares these cores); "
        f"Python {env['python']}, SQLite {env['sqlite']}; loopml {env['loopml']} on {env['stack']}; "
        + (f"MLflow {ml['version']} on {ml['stack']}." if ml else "MLflow not run."),
        "ratio = how many times faster loopml is than MLflow (time until durable, or search latency).",
        f"logging: loopml buffers points client-side and writes them in batches (every second, at "
        f"{env['max_buffered']:,} points, and on flush()); the time runs until loopml.flush() returns, after which "
        f"the {args.metrics:,} points were counted through the server (get_metric_history). loopml and its floor: "
        f"median of {args.log_reps} fresh runs (all: {fmt_list(lm['log_all_s'])} / {fmt_list(lm['floor_log_all_s'])}); "
        + (
            f"MLflow buffered: median of {args.log_reps} ({fmt_list(ml['buffered_all_s'])}); MLflow synchronous and "
            "plain async: one pass each. MLflow's points were counted the same way after each variant."
            if ml
            else ""
        ),
        f"search: filter {FILTER!r}, order by {list(ORDER_BY)}, max_results={MAX_RESULTS}; median of {args.reps} "
        "after one warm-up, through each server with each tool's client. loopml.search_runs(experiment=<id>) "
        "also resolves the experiment (one GET) before the POST /runs/search.",
        f"search breakdown (loopml): bare POST /api/v1/runs/search with httpx, no decoding {fmt_ms(lm['raw_http_ms'])} "
        f"({lm['raw_http_bytes']:,} bytes); RestTrackingStore.search_runs (one request + decoding into Runs, no "
        f"experiment lookup) {fmt_ms(lm['store_call_ms'])}; GET /api/v1/health {fmt_ms(lm['health_ms'])}.",
        f"runs: loopml's {args.runs:,} were written "
        + (
            "through its store API in-process (create_run + log_batch + end_run)"
            if args.load == "store"
            else "with sqlite3 executemany into loopml's own migrated schema"
        )
        + f" before the server started ({lm['load_s']:.1f} s)"
        + (
            f"; MLflow's with MlflowClient create_run + log_batch + set_terminated in-process on a file in "
            f"{args.peer_load_dir} ({ml['load_s']:.1f} s), copied next to its server."
            if ml
            else "."
        ),
        "servers: `loopml server --workers 1` (FastAPI on uvicorn); `mlflow server --workers 1` (Flask behind "
        "FastAPI on uvicorn) with MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false (no job-runner processes). Startup until "
        f"health answered: loopml {lm['startup_s']:.1f} s" + (f", MLflow {ml['startup_s']:.1f} s." if ml else "."),
        "durability: loopml's SQLite is WAL + synchronous=NORMAL; MLflow keeps SQLite's defaults (rollback journal, "
        "synchronous=FULL, an fsync per commit).",
    ]
    if ml is not None:
        same = lm["search_top_acc"] == ml["search_top_acc"]
        same_frame = lm["search_frame_top_acc"] == ml["search_frame_top_acc"] == lm["search_top_acc"]
        notes.append(
            f"both servers returned the same {len(lm['search_top_acc'])} runs in the same acc order: "
            f"{'yes' if same else 'NO'} (DataFrames too: {'yes' if same_frame else 'NO'}); models "
            f"{lm['search_models']} / {ml['search_models']}."
        )
        shrunk = [
            f"{label} ({ml[f'{label}_n']:,} calls)"
            for label in ("sync", "async")
            if f"{label}_n" in ml and ml[f"{label}_n"] != args.metrics
        ]
        if shrunk:
            notes.append(
                "EXTRAPOLATED: MLflow's "
                + " and ".join(shrunk)
                + f" logging ran on fewer calls than {args.metrics:,}; "
                "its time is scaled linearly to the full count (each of those calls is one request)."
            )
    for note in notes:
        console.print(f"• {note}", highlight=False)
    console.print("\nReproduce:", style="bold")
    console.print(reproduce_command(args), highlight=False, soft_wrap=True)


def reproduce_command(args: argparse.Namespace) -> str:
    shown = this_python(ROOT)
    argv = [
        shown,
        "benchmarks/server.py",
        "--metrics",
        str(args.metrics),
        "--runs",
        str(args.runs),
        "--reps",
        str(args.reps),
        "--log-reps",
        str(args.log_reps),
        "--seed",
        str(args.seed),
        "--load",
        args.load,
    ]
    if args.peer_metrics:
        argv += ["--peer-metrics", str(args.peer_metrics)]
    argv += ["--peer-async-metrics", str(args.peer_async_metrics)]
    if args.no_peer:
        argv.append("--no-peer")
    return f"cd {shlex.quote(str(ROOT))} && {shlex.join(argv)}"


# -- main ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=int, help="log_metric calls (default 10000; --quick 500)")
    parser.add_argument("--runs", type=int, help="runs to create and search (default 10000; --quick 500)")
    parser.add_argument("--reps", type=int, default=11, help="timed searches after one warm-up (default 11)")
    parser.add_argument(
        "--log-reps",
        type=int,
        default=5,
        help="times the cheap logging workloads run, median shown (loopml, its floor, MLflow buffered; default 5)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--load", choices=("store", "sql"), default="store", help="how loopml's runs are written (default store API)"
    )
    parser.add_argument(
        "--peer-metrics",
        type=int,
        help="MLflow synchronous log_metric calls, when fewer than --metrics: the time is extrapolated (printed)",
    )
    parser.add_argument(
        "--peer-async-metrics",
        type=int,
        default=2000,
        help="MLflow synchronous=False calls without buffering, one request each (default 2000, extrapolated; 0: skip)",
    )
    parser.add_argument("--peer-load-dir", type=Path, help="where MLflow's runs are created (default /dev/shm)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow (and never create its venv)")
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV, help="MLflow's venv (default /tmp/peer-mlflow)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories (and server logs)")
    args = parser.parse_args(argv)
    for name in ("metrics", "runs"):
        if getattr(args, name) is None:
            setattr(args, name, 500 if args.quick else 10_000)
    if args.quick:
        args.reps = min(args.reps, 3)
        args.log_reps = min(args.log_reps, 3)
    if args.peer_load_dir is None:
        args.peer_load_dir = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    import loopml
    from loopml.tracking import buffer

    env = {
        "machine": machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loopml": loopml.__version__,
        "stack": server_stack(),
        "max_buffered": buffer.MAX_BUFFERED,
        "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    python = None if args.no_peer else ensure_peer(args.peer_venv)
    base = Path(tempfile.mkdtemp(prefix="loopml-bench-server-"))
    saved_home = os.environ.get("LOOPML_HOME")
    try:
        lm = bench_loopml(args, base)
        ml = bench_mlflow(args, python, base) if python is not None else None
        env["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        if args.json:
            args.json.write_text(
                json.dumps(
                    {"args": {k: str(v) for k, v in vars(args).items()}, "env": env, "loopml": lm, "mlflow": ml},
                    indent=2,
                )
            )
        print_report(args, lm, ml, env)
    finally:
        if saved_home is None:
            os.environ.pop("LOOPML_HOME", None)
        else:
            os.environ["LOOPML_HOME"] = saved_home
        if args.keep:
            log("loopml", f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--peer-load", "--peer-client"):
        mode = peer_load if sys.argv[1] == "--peer-load" else peer_client
        print(json.dumps(mode(json.loads(sys.argv[2]))))
    else:
        main()
