"""Serving benchmark (issue 5): ``loopml serve`` against ``mlflow models serve`` on the same scikit-learn model.

Both servers run on this machine, one worker each, one at a time (never sharing the CPU), and the same
load generator drives each: ``wrk`` in its own process (Debian's ``wrk``; ``apt-get install -y wrk``),
POSTing a fixed JSON body for ``--duration`` seconds after a warm-up.

Workloads: single-row requests at concurrency 1, 8 and 32, and 100-row batches at concurrency 8. The
model is a scikit-learn pipeline (StandardScaler + LogisticRegression) on the breast-cancer data
bundled with scikit-learn (30 numeric columns), trained the same way in both venvs. loopml keeps its
prediction log ON (every request and answer goes to its SQLite store through the background writer).

Columns printed for each workload: requests/s, p50 and p99 latency for

* ``loopml``: ``loopml serve -m bench@champion`` (its defaults: uvicorn with httptools and uvloop
  when installed, dynamic batching, prediction log on);
* ``loopml h11``: the same app on uvicorn's pure-Python HTTP parser and asyncio loop, which is what
  MLflow's venv runs (its uvicorn comes without httptools/uvloop), to separate the HTTP stack's share;
* ``MLflow``: ``mlflow models serve --env-manager local -w 1`` (FastAPI + uvicorn), ``POST /invocations``
  with ``{"dataframe_records": [...]}``;
* ``floor``: a bare Starlette endpoint on the same uvicorn that parses the same JSON, builds the numpy
  array and calls the same model's ``predict`` (no checks, no logging, no batching), and the model's
  in-process ``predict`` on a numpy array (no HTTP at all).

Ratios are loopml over MLflow for requests/s and MLflow over loopml for p99. Targets: >= 3x MLflow's
throughput and <= 1/3 of its p99 at concurrency 8. Every cell is the median of ``--rounds`` rounds;
a round runs every server once, in turn.

Then ``--models`` (1,000) registered models, each a different fitted model with its own deployment,
served by one ``loopml serve --all`` process: the resident memory after starting and after every
model has answered once, the first-request latency of each cold model (a sequential client), and
requests spread at random over all of them.

Run:  .venv/bin/python benchmarks/serving.py             (add --quick for a smoke test, --no-peer to skip MLflow)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path("/tmp/peer-mlflow")
PYTHON = sys.executable
CONCURRENCY = (1, 8, 32)
BATCH_ROWS = 100
BATCH_CONCURRENCY = 8
MODEL = "bench"
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY_FILE"), "r")
wrk.body = f:read("*a")
f:close()
"""
WRK_RANDOM_MODEL = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY_FILE"), "r")
wrk.body = f:read("*a")
f:close()
local n = tonumber(os.getenv("N_MODELS"))
math.randomseed(os.time())
request = function()
  return wrk.format(nil, "/v1/models/m" .. string.format("%04d", math.random(0, n - 1)) .. "/predict")
end
"""


def log(message: str) -> None:
    print(f"[serving-bench] {message}", file=sys.stderr, flush=True)


# -- the model and the request bodies ----------------------------------------------------------------------


def train() -> tuple[Any, Any]:
    """The benchmark model: what both venvs train, identically (lbfgs is deterministic)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X, y), X


TRAIN_SOURCE = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X, y)
"""


def write_bodies(folder: Path, X: Any) -> dict[str, Path]:
    one = X.head(1).to_dict(orient="records")
    batch = X.head(BATCH_ROWS).to_dict(orient="records")
    bodies = {
        "loopml-1": {"records": one},
        "loopml-batch": {"records": batch},
        "mlflow-1": {"dataframe_records": one},
        "mlflow-batch": {"dataframe_records": batch},
    }
    paths = {}
    for name, body in bodies.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(body))
    (folder / "post.lua").write_text(WRK_SCRIPT)
    (folder / "random.lua").write_text(WRK_RANDOM_MODEL)
    return paths


# -- processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {timeout_s} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loopml_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(home)
    env["TMPDIR"] = str(home / "tmp")
    (home / "tmp").mkdir(exist_ok=True)
    return env


def start_loopml(
    home: Path, port: int, *, h11: bool = False, args: tuple[str, ...] = (), cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """``loopml serve`` (or uvicorn over its app) on ``port``; ``cwd``, where ``python -m`` looks for ``loopml`` first."""
    env = loopml_env(home)
    if h11:  # the same app on the pure-Python HTTP stack, through uvicorn's own command line
        env["LOOPML_SERVE_CONFIG"] = json.dumps({"models": [f"{MODEL}@champion"]})
        command = [PYTHON, "-m", "uvicorn", "--factory", "loopml.serving.main:app_from_env", "--port", str(port),
                   "--http", "h11", "--loop", "asyncio", "--log-level", "warning", "--no-access-log"]  # fmt: skip
    else:
        command = [PYTHON, "-m", "loopml.cli.main", "serve", "--port", str(port), "--log-level", "warning", *args]
        if not args:
            command += ["-m", f"{MODEL}@champion"]
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/readyz", process)
    return process


FLOOR_SERVER = (
    """
import json, sys
import numpy as np
try:
    import orjson
    loads, dumps = orjson.loads, orjson.dumps
except ImportError:
    loads, dumps = json.loads, lambda v: json.dumps(v).encode()
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
"""
    + TRAIN_SOURCE
    + """
columns = list(X.columns)
for step in model.steps:
    vars(step[1]).pop("feature_names_in_", None)  # plain arrays in, no feature-name warning
async def predict(request):
    data = loads(await request.body())
    rows = np.array([[record[c] for c in columns] for record in data["records"]], dtype=np.float64)
    return Response(dumps({"predictions": model.predict(rows).tolist()}), media_type="application/json")
async def ready(request):
    return Response(b"ok")
app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", ready)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""
)


def start_floor(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    script = workdir / "floor_server.py"
    script.write_text(FLOOR_SERVER)
    process = subprocess.Popen([PYTHON, str(script), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/readyz", process)
    return process


MLFLOW_LOG = (
    TRAIN_SOURCE
    + """
import sys, warnings, logging
warnings.filterwarnings("ignore"); logging.getLogger("mlflow").setLevel(logging.ERROR)
import mlflow
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}/mlflow.db")
mlflow.set_experiment("serving-bench")
with mlflow.start_run():
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head())
print(info.model_uri)
print(mlflow.__version__)
"""
)


def mlflow_model(workdir: Path) -> tuple[str, str]:
    out = subprocess.run([str(PEER_VENV / "bin/python"), "-c", MLFLOW_LOG, str(workdir)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    uri, version = out.stdout.strip().splitlines()[-2:]
    return uri, version


def start_mlflow(workdir: Path, uri: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{PEER_VENV / 'bin'}:{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"}  # fmt: skip
    command = [str(PEER_VENV / "bin/mlflow"), "models", "serve", "-m", uri, "--env-manager", "local", "-p", str(port),
               "-h", "127.0.0.1", "-w", "1"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/ping", process, timeout_s=180)
    return process


# -- load ------------------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str, body: Path, script: Path, concurrency: int, duration_s: float, extra_env: dict[str, str] | None = None
) -> dict[str, float]:
    """requests/s, p50 and p99 in ms, and errors (non-2xx and socket errors) of one wrk run."""
    env = {**os.environ, "BODY_FILE": str(body), **(extra_env or {})}
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{duration_s:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if found := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(found.group(1))
    if found := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(n) for n in found.groups())
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors, "requests": requests}


def workloads(url: str, one: Path, batch: Path, script: Path, duration_s: float) -> dict[str, dict[str, float]]:
    wrk(url, one, script, 8, min(2.0, duration_s))  # warm-up: models loaded, connections and caches warm
    cells = {f"1 row, c={c}": wrk(url, one, script, c, duration_s) for c in CONCURRENCY}
    cells[f"{BATCH_ROWS} rows, c={BATCH_CONCURRENCY}"] = wrk(url, batch, script, BATCH_CONCURRENCY, duration_s)
    return cells


def check_answers(url: str, body: Path, key: str, expected: list[Any]) -> None:
    import httpx

    answer = httpx.post(url, content=body.read_bytes(), headers={"Content-Type": "application/json"}, timeout=30)
    answer.raise_for_status()
    got = answer.json()[key]
    if got != expected:
        raise RuntimeError(f"{url} answered {got[:5]}..., expected {expected[:5]}...")


def inprocess_floor(model: Any, X: Any, reps: int) -> dict[str, float]:
    import numpy as np

    timings = {}
    for label, rows in (("1 row", X.head(1).to_numpy()), (f"{BATCH_ROWS} rows", X.head(BATCH_ROWS).to_numpy())):
        values = []
        bare = _without_names(model)
        for _ in range(reps):
            start = time.perf_counter()
            bare.predict(np.asarray(rows))
            values.append((time.perf_counter() - start) * 1000)
        timings[label] = statistics.median(values)
    return timings


def _without_names(model: Any) -> Any:
    import copy

    bare = copy.deepcopy(model)
    for _, step in bare.steps:
        vars(step).pop("feature_names_in_", None)
    return bare


def prediction_log_figures(url: str) -> dict[str, float]:
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    figures = {}
    for name in ("prediction_log_written_total", "prediction_log_dropped_total", "prediction_log_queue_depth"):
        found = re.search(rf"^loopml_serving_{name} (\S+)$", text, re.M)
        figures[name] = float(found.group(1)) if found else float("nan")
    figures["requests"] = sum(
        float(m.group(1)) for m in re.finditer(r"^loopml_serving_requests_total\{[^}]*\} (\S+)$", text, re.M)
    )
    return figures


# -- the side-by-side rounds -------------------------------------------------------------------------------


def setup_loopml(home: Path, model: Any, X: Any) -> None:
    os.environ["LOOPML_HOME"] = str(home)
    import loopml

    loopml.set_tracking_uri(None)
    with loopml.start_run("bench", experiment="serving-bench", capture=False) as run:
        info = run.log_model(model, "model", input_example=X.head())
    version = loopml.register_model(info.uri, MODEL)
    loopml.set_alias(MODEL, "champion", version.version)
    loopml.deploy(MODEL, "champion", reason="benchmark")


def side_by_side(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    model, X = train()
    bodies = write_bodies(work, X)
    script = work / "post.lua"
    home = work / "loopml-home"
    setup_loopml(home, model, X)
    one = model.predict(X.head(1)).tolist()
    many = model.predict(X.head(BATCH_ROWS)).tolist()
    peer = None
    if not args.no_peer:
        if not (PEER_VENV / "bin/mlflow").exists():
            log(f"MLflow venv not found at {PEER_VENV}: python -m venv {PEER_VENV} && "
                f"{PEER_VENV}/bin/pip install mlflow scikit-learn")  # fmt: skip
        else:
            peer = mlflow_model(work)
            log(f"MLflow {peer[1]}, model {peer[0]}")
    results: dict[str, list[dict[str, dict[str, float]]]] = {"loopml": [], "loopml h11": [], "MLflow": [], "floor": []}
    log_figures: dict[str, float] = {}
    for round_ in range(args.rounds):
        log(f"round {round_ + 1}/{args.rounds}: loopml")
        port = free_port()
        process = start_loopml(home, port)
        url = f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict"
        try:
            check_answers(url, bodies["loopml-1"], "predictions", one)
            check_answers(url, bodies["loopml-batch"], "predictions", many)
            results["loopml"].append(workloads(url, bodies["loopml-1"], bodies["loopml-batch"], script, args.duration))
            time.sleep(1.0)  # the log writer's last batch
            figures = prediction_log_figures(f"http://127.0.0.1:{port}")
            for key, value in figures.items():
                log_figures[key] = log_figures.get(key, 0.0) + (value if key != "prediction_log_queue_depth" else 0)
        finally:
            stop(process)
        log(f"round {round_ + 1}/{args.rounds}: loopml on h11 + asyncio")
        port = free_port()
        process = start_loopml(home, port, h11=True)
        url = f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict"
        try:
            results["loopml h11"].append(
                workloads(url, bodies["loopml-1"], bodies["loopml-batch"], script, args.duration)
            )
        finally:
            stop(process)
        if peer is not None:
            log(f"round {round_ + 1}/{args.rounds}: MLflow")
            port = free_port()
            process = start_mlflow(work, peer[0], port)
            url = f"http://127.0.0.1:{port}/invocations"
            try:
                check_answers(url, bodies["mlflow-1"], "predictions", one)
                results["MLflow"].append(
                    workloads(url, bodies["mlflow-1"], bodies["mlflow-batch"], script, args.duration)
                )
            finally:
                stop(process)
        log(f"round {round_ + 1}/{args.rounds}: floor (bare Starlette endpoint)")
        port = free_port()
        process = start_floor(port, work)
        url = f"http://127.0.0.1:{port}/predict"
        try:
            check_answers(url, bodies["loopml-1"], "predictions", one)
            results["floor"].append(workloads(url, bodies["loopml-1"], bodies["loopml-batch"], script, args.duration))
        finally:
            stop(process)
    written = _logged_rows(home)
    return {
        "cells": {tool: _median_cells(rounds) for tool, rounds in results.items() if rounds},
        "inprocess_ms": inprocess_floor(model, X, 2000 if not args.quick else 200),
        "mlflow_version": None if peer is None else peer[1],
        "prediction_log": {**log_figures, "rows_in_store": written},
    }


def _logged_rows(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "loopml.db") as conn:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])


def _median_cells(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    cells: dict[str, dict[str, float]] = {}
    for workload in rounds[0]:
        cells[workload] = {
            key: statistics.median(r[workload][key] for r in rounds) for key in ("rps", "p50", "p99", "errors")
        }
        cells[workload]["errors"] = sum(r[workload]["errors"] for r in rounds)
    return cells


# -- many models ------------------------------------------------------------------------------------------


def many_models(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``--models`` distinct fitted models, each registered and deployed, behind one ``loopml serve --all``."""
    import warnings

    import httpx
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    import loopml

    home = work / "many-home"
    os.environ["LOOPML_HOME"] = str(home)
    loopml.set_tracking_uri(None)
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    n = args.models
    log(f"{n} models: training, logging, registering and deploying each")
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 200 iterations on unscaled data: fine here
    with loopml.start_run("many", experiment="serving-many", capture=False) as parent:
        for i in range(n):
            rows = rng.choice(len(X), size=300, replace=False)
            model = LogisticRegression(C=float(rng.uniform(0.01, 10)), max_iter=200).fit(
                X.iloc[rows].to_numpy(), y.iloc[rows]
            )
            with loopml.start_run(f"m{i:04d}", experiment="serving-many", parent=parent, capture=False) as run:
                info = run.log_model(model, "model", input_example=X.head(2))
            version = loopml.register_model(info.uri, f"m{i:04d}")
            loopml.deploy(f"m{i:04d}", version.version)
            if (i + 1) % 100 == 0:
                log(f"  {i + 1} models, {time.perf_counter() - start:.0f} s")
    setup_s = time.perf_counter() - start
    body = work / "many-1.json"
    body.write_text(json.dumps({"records": X.head(1).to_dict(orient="records")}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_loopml(home, port, args=("--all", "--max-loaded", str(n)))
    try:
        time.sleep(1.0)
        rss_start = rss_mb(process.pid)
        cold = []
        with httpx.Client(base_url=base, timeout=60) as http:
            payload = body.read_bytes()
            headers = {"Content-Type": "application/json"}
            for i in range(n):
                tick = time.perf_counter()
                answer = http.post(f"/v1/models/m{i:04d}/predict", content=payload, headers=headers)
                cold.append((time.perf_counter() - tick) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"m{i:04d} answered {answer.status_code}: {answer.text}")
                if i == 0:  # the first load also imports skops and the model's modules: measured apart
                    rss_first = rss_mb(process.pid)
            first_ms = cold.pop(0)
            warm = []
            for i in range(min(n, 200)):
                tick = time.perf_counter()
                http.post(f"/v1/models/m{i:04d}/predict", content=payload, headers=headers).raise_for_status()
                warm.append((time.perf_counter() - tick) * 1000)
            listed = http.get("/v1/models").json()
        rss_loaded = rss_mb(process.pid)
        spread = wrk(base, body, work / "random.lua", 8, args.duration, {"N_MODELS": str(n)})
        cold_sorted = sorted(cold)
        return {
            "models": n,
            "setup_s": setup_s,
            "rss_start_mb": rss_start,
            "rss_first_mb": rss_first,
            "rss_loaded_mb": rss_loaded,
            "per_model_kb": (rss_loaded - rss_first) * 1024 / max(1, n - 1),
            "first_ms": first_ms,
            "loaded": listed["cache"]["loaded"],
            "package_bytes": listed["cache"]["bytes"],
            "cold_p50_ms": statistics.median(cold),
            "cold_p99_ms": cold_sorted[min(len(cold_sorted) - 1, round(0.99 * (len(cold_sorted) - 1)))],
            "cold_max_ms": cold_sorted[-1],
            "warm_p50_ms": statistics.median(warm),
            "spread": spread,
        }
    finally:
        stop(process)


# -- report -----------------------------------------------------------------------------------------------


def report(side: dict[str, Any] | None, many: dict[str, Any] | None, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    if side is not None:
        cells = side["cells"]
        tools = [t for t in ("loopml", "loopml h11", "MLflow", "floor") if t in cells]
        table = Table(title=f"Serving one scikit-learn model, 1 worker each (median of {args.rounds} round(s), "
                            f"{args.duration:g} s per cell; wrk)", title_justify="left")  # fmt: skip
        table.add_column("workload")
        for tool in tools:
            for what in ("req/s", "p50 ms", "p99 ms"):
                table.add_column(f"{tool} {what}", justify="right")
        if "MLflow" in cells:
            table.add_column("req/s ratio", justify="right")
            table.add_column("p99 ratio", justify="right")
        for workload in cells["loopml"]:
            row = [workload]
            for tool in tools:
                cell = cells[tool][workload]
                row += [f"{cell['rps']:,.0f}", f"{cell['p50']:.2f}", f"{cell['p99']:.2f}"]
            if "MLflow" in cells:
                ours, theirs = cells["loopml"][workload], cells["MLflow"][workload]
                row += [f"{ours['rps'] / theirs['rps']:.1f}x", f"{theirs['p99'] / ours['p99']:.1f}x"]
            table.add_row(*row)
        console.print(table)
        errors = {tool: sum(c["errors"] for c in cells[tool].values()) for tool in tools}
        console.print(f"errors (non-2xx or socket) per tool over all cells: {errors}")
        inprocess = side["inprocess_ms"]
        console.print(
            "in-process floor (the model's predict on a numpy array, no HTTP): "
            + ", ".join(
                f"{label} {ms * 1000:.0f} us ({1000 / ms:,.0f}/s on one core)" for label, ms in inprocess.items()
            )
        )
        figures = side["prediction_log"]
        console.print(
            f"loopml prediction log: {figures.get('requests', 0):,.0f} requests answered, "
            f"{figures.get('prediction_log_written_total', 0):,.0f} records written, "
            f"{figures.get('prediction_log_dropped_total', 0):,.0f} shed; {figures['rows_in_store']:,} rows in the store"
        )
        if "MLflow" in cells:
            c8 = "1 row, c=8"
            ours, theirs = cells["loopml"][c8], cells["MLflow"][c8]
            throughput = ours["rps"] / theirs["rps"]
            tail = theirs["p99"] / ours["p99"]
            console.print(
                f"targets at c=8: throughput {throughput:.1f}x MLflow (>= 3x: {'PASS' if throughput >= 3 else 'FAIL'}), "
                f"p99 1/{tail:.1f} of MLflow's (<= 1/3: {'PASS' if tail >= 3 else 'FAIL'}); MLflow {side['mlflow_version']}"
            )
    if many is not None:
        spread = many["spread"]
        console.print(
            f"{many['models']:,} models in one process (loopml serve --all, --max-loaded {many['models']}): "
            f"all {many['loaded']:,} answered and stayed loaded; RSS {many['rss_start_mb']:.0f} MB after start, "
            f"{many['rss_first_mb']:.0f} MB after the first model (imports), {many['rss_loaded_mb']:.0f} MB with every "
            f"model loaded (~{many['per_model_kb']:.0f} KB a model; packages {many['package_bytes'] / 1e6:.1f} MB on "
            f"disk); first request to a cold model p50 {many['cold_p50_ms']:.1f} ms, p99 {many['cold_p99_ms']:.1f} ms, "
            f"max {many['cold_max_ms']:.1f} ms (the very first, with imports: {many['first_ms']:.0f} ms) "
            f"(warm p50 {many['warm_p50_ms']:.2f} ms); random model per request at c=8: {spread['rps']:,.0f} req/s, "
            f"p50 {spread['p50']:.2f} ms, p99 {spread['p99']:.2f} ms; setup {many['setup_s']:.0f} s"
        )
    command = f".venv/bin/python benchmarks/serving.py --rounds {args.rounds} --duration {args.duration:g} --models {args.models}"
    if args.no_peer:
        command += " --no-peer"
    console.print(f"reproduce: {command}  (cores: {os.cpu_count()}, load average before: {args.load_before})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    parser.add_argument("--models", type=int, default=1000, help="models for the many-models part (0 skips it)")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow")
    parser.add_argument("--only", choices=("side", "many"), help="run only one part")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s cells, 50 models")
    parser.add_argument("--json", type=Path, help="write every figure here as JSON")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.models = 1, 3.0, 50
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk (the load generator both servers are driven by)")
    args.load_before = " ".join(f"{v:.1f}" for v in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="loopml-serving-bench-"))
    try:
        side = side_by_side(args, work) if args.only != "many" else None
        many = many_models(args, work) if args.only != "side" and args.models > 0 else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(side, many, args)
    if args.json:
        args.json.write_text(json.dumps({"side_by_side": side, "many_models": many}, indent=2, default=str))


if __name__ == "__main__":
    main()
