"""Interop benchmark (issue 15): one MLflow client script against ``mlflow server`` and ``loopml server``.

1. The script in ``tests/interop/mlflow_workflow.py`` (a sweep of nested runs with stepped metrics and
   ``log_batch``, a search, a metric history, an artifact folder up and down, a scikit-learn model logged,
   registered, aliased and loaded back by alias) runs unchanged with ``MLFLOW_TRACKING_URI`` at each
   server, alternating, ``--reps`` times. Both servers run with one worker on SQLite and a local
   artifact folder. Printed: the script's own phases (tracking, artifacts, model; timed inside the
   script, so the client's interpreter start and ``import mlflow`` are excluded) and the whole
   subprocess, median of the reps, with the ratio MLflow / loopml.
   Beside them, the same script with the MLflow client writing to SQLite in-process, no server at all:
   the client's own work plus MLflow's store (not a floor: MLflow's SQL store is slower than the
   loopml server for metric logging).
2. ``loopml import mlflow``: an mlruns folder of ``--import-runs`` runs (5 params, 3 metrics x
   ``--import-steps`` steps each), written by the MLflow client's file store, imported into a fresh
   SQLite store (runs/s, metric points/s); and the runs of part 1 imported from the live ``mlflow
   server`` through its REST API.

The MLflow client lives in its own venv (``~/.cache/loopml-test-venvs/mlflow``, the tests' cache,
created when missing).

    .venv/bin/python benchmarks/interop.py            # full run
    .venv/bin/python benchmarks/interop.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import ensure_venv, machine, this_python

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "tests" / "interop" / "mlflow_workflow.py"
VENV = Path.home() / ".cache" / "loopml-test-venvs" / "mlflow"
PHASES = ("tracking", "artifacts", "model")

FILL = """
import os, sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
runs, steps = int(sys.argv[1]), int(sys.argv[2])
client = MlflowClient()
experiment = client.create_experiment("import-bench")
for i in range(runs):
    run = client.create_run(experiment, run_name=f"run-{i}")
    now = int(time.time() * 1000)
    metrics = [Metric(k, 1.0 / (s + 1) + i, now + s, s) for k in ("loss", "acc", "auc") for s in range(steps)]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run.info.run_id, metrics=metrics[start:start + 1000],
                         params=[Param(f"p{j}", str(i * j)) for j in range(5)] if start == 0 else [])
    client.set_terminated(run.info.run_id)
"""


def say(message: str) -> None:
    print(f"[interop] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_env(uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPML_"))}
    env.update(MLFLOW_TRACKING_URI=uri, GIT_PYTHON_REFRESH="quiet", PYTHONWARNINGS="ignore", **extra)
    return env


def start(command: list[str], health: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{command[0]} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def run_workflow(python: Path, uri: str, prefix: str, trials: int, steps: int, cwd: Path) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), str(WORKFLOW), prefix, str(trials), str(steps)],
        env=client_env(uri),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            if not result["predictions_match"]:
                raise SystemExit(f"{uri}: the model loaded back predicts differently")
            timings: dict[str, float] = result["timings"]
            return {**timings, "script": sum(timings.values()), "process": wall}
    raise SystemExit(f"the workflow failed against {uri}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1 rep, small workloads")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--trials", type=int, default=5, help="nested runs in the sweep")
    parser.add_argument("--steps", type=int, default=50, help="log_metric calls per trial")
    parser.add_argument("--import-runs", type=int, default=200)
    parser.add_argument("--import-steps", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.reps, args.trials, args.steps, args.import_runs, args.import_steps = 1, 2, 5, 20, 50
    python = VENV / "bin" / "python"
    if not (VENV / ".complete").exists():
        python = ensure_venv(VENV, ["mlflow>=3,<4", "scikit-learn"], say)
        (VENV / ".complete").touch()
    work = Path(tempfile.mkdtemp(prefix="loopml-interop-bench-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        mlflow_port, loopml_port = free_port(), free_port()
        peer_env = client_env("", PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        say("starting mlflow server and loopml server (one worker each, SQLite, local artifacts)")
        servers.append(start(
            [str(VENV / "bin" / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
             "--artifacts-destination", str(work / "mlflow-artifacts"), "--host", "127.0.0.1",
             "--port", str(mlflow_port), "--workers", "1"],
            f"http://127.0.0.1:{mlflow_port}/health", peer_env, work / "mlflow-server.log",
        ))  # fmt: skip
        loopml_env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        servers.append(start(
            [str(Path(sys.executable).parent / "loopml"), "server", "--port", str(loopml_port),
             "--db-url", f"sqlite:///{work / 'loopml.db'}", "--artifacts-url", str(work / "loopml-artifacts"),
             "--log-level", "warning"],
            f"http://127.0.0.1:{loopml_port}/api/v1/health", loopml_env, work / "loopml-server.log",
        ))  # fmt: skip
        targets = {
            "mlflow server": f"http://127.0.0.1:{mlflow_port}",
            "loopml server": f"http://127.0.0.1:{loopml_port}",
            "mlflow, no server": f"sqlite:///{work / 'in-process.db'}",
        }
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for rep in range(args.reps):
            for name, uri in targets.items():
                say(f"rep {rep + 1}/{args.reps}: workflow against {name}")
                rows[name].append(run_workflow(python, uri, f"bench{rep}", args.trials, args.steps, work))

        print(f"\nMLflow client workflow, {args.trials} nested runs x {args.steps} steps, median of {args.reps}")
        print(f"machine: {machine()}")
        header = f"{'phase':<28}" + "".join(f"{n:>20}" for n in targets) + f"{'mlflow / loopml':>18}"
        print(header)
        for key in (*PHASES, "script", "process"):
            label = {"script": "end to end (in the script)", "process": "end to end (whole process)"}.get(key, key)
            values = [median(rows[n], key) for n in targets]
            ratio = values[0] / values[1] if values[1] else float("nan")
            print(f"{label:<28}" + "".join(f"{v:>19.2f}s" for v in values) + f"{ratio:>17.1f}x")

        # -- import rates ---------------------------------------------------------------------------
        from loopml.interop.mlflow_import import import_mlflow
        from loopml.store import open_store

        folder = work / "mlruns"
        say(f"filling an mlruns folder: {args.import_runs} runs x 3 metrics x {args.import_steps} steps")
        subprocess.run(
            [str(python), "-c", FILL, str(args.import_runs), str(args.import_steps)],
            env=client_env(folder.as_uri(), MLFLOW_ALLOW_FILE_STORE="true"),
            cwd=work,
            check=True,
            capture_output=True,
        )
        print("\nloopml import mlflow")
        for label, source in (("mlruns folder", str(folder)), ("mlflow server (REST)", targets["mlflow server"])):
            store = open_store(f"sqlite:///{work / (label.split()[0] + '-import.db')}", artifacts_url=str(work / "imp"))
            try:
                report = import_mlflow(source, store=store)
            finally:
                store.close()
            runs, points = report.counts["runs"].imported, report.counts["metric points"].imported
            print(
                f"{label:<22} {runs:>6} runs {points:>9,} points in {report.seconds:6.2f}s: "
                f"{runs / report.seconds:8.1f} runs/s {points / report.seconds:10,.0f} points/s "
                f"(verified: {report.verified})"
            )
        flags = "--quick" if args.quick else (
            f"--reps {args.reps} --trials {args.trials} --steps {args.steps} "
            f"--import-runs {args.import_runs} --import-steps {args.import_steps}"
        )  # fmt: skip
        print(f"\nreproduce: {this_python(ROOT)} benchmarks/interop.py {flags}")
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
