"""Web UI benchmark (issue 12): server time of the UI's pages at scale, loopml against `mlflow server`.

The store: ``--runs`` runs (default 100,000) x 20 params x 10 metrics in one experiment, one more run with a
``--points``-point metric (default 1,000,000; the run has finished, so its first chart request builds the
metric's roll-ups, timed apart), ``--models`` registered models (default 10,000), one of them with a version
whose run has a dataset, code and environment (its page draws that lineage).

Both stores are filled the same way: one template run (and one template model) is created through each tool's
own API (loopml's store, MLflow's REST API), so each tool writes its own rows, then those rows are cloned with
``sqlite3`` ``executemany`` into the tool's own migrated schema (new ids, new param/metric values), which is
how a 100,000-run store can be built in minutes for both tools at the same scale.

Timed (median of ``--reps`` after one warm-up), client-side over HTTP on 127.0.0.1 with one keep-alive
connection (``http.client``), each server one process, one worker:

* loopml (``create_app(store)`` under uvicorn): the runs page ``/experiments/<id>?filter=…&order=…&size=100``,
  the chart data ``/runs/<id>/metrics/loss/series?points=1000``, ``/compare?run=…`` x 50 (when the route
  exists), ``/models``, ``/models/<name>`` (versions, requests, evidence, lineage);
* MLflow (``mlflow server``, SQLite): the calls its UI makes for the same pages: ``POST
  /ajax-api/2.0/mlflow/runs/search`` (max_results 100, same filter and order), ``GET
  …/metrics/get-history-bulk-interval`` (the sampled chart, max_results 1000) and ``…/metrics/get-history``
  (the whole history), ``GET …/runs/get`` x 50 (compare), ``GET …/registered-models/search`` and
  ``…/registered-models/get`` + ``…/model-versions/search`` (a model's page; MLflow has no lineage).

Beside loopml's HTTP time: the same page rendered in process (Starlette's TestClient, no socket) and the
floor: every SQL statement the page issued (captured from loopml's engine) replayed with bare ``sqlite3``.

    .venv/bin/python benchmarks/ui.py              # the issue's scale (~5 min on 2 cores)
    .venv/bin/python benchmarks/ui.py --quick      # 10,000 runs, a 100,000-point metric
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shlex
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import ensure_venv, machine, this_python

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path("/tmp/peer-mlflow")
N_PARAMS, N_METRICS = 20, 10
MODELS = ("rf", "gbm", "lr")
METRIC_KEYS = ("acc", "f1", "precision", "recall", "auc", "log_loss", "rmse", "mae", "r2", "latency")
FILTER = "params.model = 'rf' and metrics.f1 > 0.5"
ORDER = "metrics.acc DESC"
PAGE = 100  # MLflow's runs page asks for 100 runs; loopml's page is asked for the same
POINTS = 1000  # chart points asked of both
COMPARE = 50
PAGE_TARGET_MS, CHART_TARGET_MS, RATIO_TARGET = 150.0, 50.0, 10.0
LINEAGE_MODEL = "model-00000"
TIMES = "\u00d7"


def log(message: str) -> None:
    print(f"[ui-bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median_ms(fn: Callable[[], Any], reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class Http:
    """One keep-alive connection to 127.0.0.1:port; every answer read whole and checked."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        headers = {"Connection": "keep-alive"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        if response.status not in ok:
            raise RuntimeError(f"{method} {path} -> {response.status}: {payload[:300]!r}")
        return response.status, payload

    def get(self, path: str, **query: Any) -> bytes:
        return self.call("GET", path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else ""))[1]

    def post(self, path: str, body: Any) -> Any:
        return json.loads(self.call("POST", path, body)[1] or b"{}")


def wait_up(port: int, path: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path)
            if c.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server on {port} did not answer {path}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


# -- data: the same values for both tools --------------------------------------------------------------------


def run_values(i: int, rng: random.Random) -> tuple[dict[str, str], dict[str, float]]:
    params = {"model": rng.choice(MODELS)}
    for p in range(1, N_PARAMS):
        params[f"p{p:02d}"] = str(rng.choice((0.01, 0.1, 1, 10, 100))) if p % 2 else f"v{rng.randrange(50)}"
    metrics = {k: rng.random() for k in METRIC_KEYS}
    return params, metrics


def series_value(step: int) -> float:
    return 2.0 / (1 + 0.0001 * step) + 0.01 * ((step * 7919) % 101 - 50) / 50


def clone(
    conn: sqlite3.Connection,
    table: str,
    where: str,
    args: tuple[Any, ...],
    count: int,
    change: Callable[[dict[str, Any], int], dict[str, Any] | None],
) -> None:
    """Copy the template rows of ``table`` (``where``) ``count`` times, each copy changed by ``change(row, i)``."""
    cursor = conn.execute(f"SELECT * FROM {table} WHERE {where}", args)
    columns = [d[0] for d in cursor.description]
    template = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    if not template:
        raise RuntimeError(f"no template rows in {table} where {where} {args}")
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(count):
            for row in template:
                changed = change(dict(row), i)
                if changed is not None:
                    yield tuple(changed[c] for c in columns)

    conn.executemany(sql, rows())


def as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# -- loopml ----------------------------------------------------------------------------------------------------


def build_loopml(home: Path, n_runs: int, n_points: int, n_models: int, seed: int) -> dict[str, Any]:
    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI"):
        os.environ.pop(name, None)
    os.environ["LOOPML_HOME"] = str(home)
    import pandas as pd

    import loopml
    from loopml.entities.tracking import Metric, RunStatus

    loopml.set_tracking_uri(None)
    client = loopml.get_tracking_client()
    store = client.store
    started = time.perf_counter()
    # the lineage model's run, through the public API: a parent, a dataset, code and environment captured
    with (
        loopml.start_run(name="sweep", experiment="ui-lineage") as parent,
        loopml.start_run(name="trained", params={"model": "rf"}) as trained,
    ):
        trained.log_metrics({"acc": 0.93, "f1": 0.91})
        frame = pd.DataFrame({"x": [float(i) for i in range(100)], "y": [i % 2 for i in range(100)]})
        trained.log_dataset(frame, "train-data")
        from sklearn.linear_model import LogisticRegression

        packaged = trained.log_model(LogisticRegression().fit(frame[["x"]], frame["y"]), "model")
    del parent
    registry = loopml.get_registry_client()
    registry.create_registered_model(LINEAGE_MODEL, tags={"team": "risk", "tier": "1"})
    store.registry.create_version(
        LINEAGE_MODEL, run_id=trained.id, source=packaged.uri, description=None, tags={}, actor="bench"
    )
    registry.set_alias(LINEAGE_MODEL, "champion", 1)

    experiment_id = store.tracking.create_experiment("ui-bench").experiment_id
    rng = random.Random(seed)
    params, metrics = run_values(0, rng)
    template = store.tracking.create_run(experiment_id, name="run-000000", user="bench", start_time=1_700_000_000_000)
    store.tracking.log_batch(
        template.run_id, params=params, metrics=[Metric(k, v, 0, 1_700_000_000_000) for k, v in metrics.items()]
    )
    store.tracking.end_run(template.run_id, RunStatus.FINISHED, 1_700_000_000_001)
    long_run = store.tracking.create_run(experiment_id, name="long", user="bench", start_time=1_600_000_000_000)
    store.tracking.log_batch(long_run.run_id, metrics=[Metric("loss", series_value(0), 0, 1_600_000_000_000)])
    # a finished training run (its points are cloned below): its first chart builds the roll-ups
    store.tracking.end_run(long_run.run_id, RunStatus.FINISHED, 1_600_000_000_000 + n_points)
    db = home / "loopml.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")
    ids = [uuid.uuid4().hex for _ in range(n_runs - 1)]
    values = [run_values(i, rng) for i in range(1, n_runs)]
    tid = (template.run_id,)
    log(f"loopml: cloning {n_runs - 1:,} runs")

    def run_row(row: dict[str, Any], i: int) -> dict[str, Any]:
        row.update(run_id=ids[i], name=f"run-{i + 1:06d}", start_time=1_700_000_000_000 + (i + 1) * 1000,
                   end_time=1_700_000_000_000 + (i + 1) * 1000 + 1, status="FINISHED")  # fmt: skip
        return row

    def param_row(row: dict[str, Any], i: int) -> dict[str, Any]:
        value = values[i][0][row["key"]]
        row.update(run_id=ids[i], value=value, value_num=as_number(value))
        return row

    def metric_row(row: dict[str, Any], i: int) -> dict[str, Any]:
        if "id" in row:
            row["id"] = None
        row.update(run_id=ids[i], value=values[i][1][row["key"]], timestamp=1_700_000_000_000 + (i + 1) * 1000)
        return row

    def same_run(row: dict[str, Any], i: int) -> dict[str, Any]:
        row["run_id"] = ids[i]
        return row

    clone(conn, "runs", "run_id = ?", tid, len(ids), run_row)
    clone(conn, "params", "run_id = ?", tid, len(ids), param_row)
    clone(conn, "metrics", "run_id = ?", tid, len(ids), metric_row)
    clone(conn, "latest_metrics", "run_id = ?", tid, len(ids), metric_row)
    if conn.execute("SELECT 1 FROM tags WHERE run_id = ?", tid).fetchone():
        clone(conn, "tags", "run_id = ?", tid, len(ids), same_run)
    log(f"loopml: {n_points:,} points of 'loss'")

    def point(row: dict[str, Any], i: int) -> dict[str, Any]:
        step = i + 1
        row.update(id=None, value=series_value(step), step=step, timestamp=1_600_000_000_000 + step)
        return row

    clone(conn, "metrics", "run_id = ? AND key = 'loss'", (long_run.run_id,), n_points - 1, point)
    conn.execute(
        "UPDATE latest_metrics SET value = ?, step = ?, timestamp = ? WHERE run_id = ? AND key = 'loss'",
        (series_value(n_points - 1), n_points - 1, 1_600_000_000_000 + n_points - 1, long_run.run_id),
    )
    log(f"loopml: cloning {n_models - 1:,} registered models")
    names = [f"model-{m:05d}" for m in range(1, n_models)]

    def named(row: dict[str, Any], i: int) -> dict[str, Any]:
        row["name"] = names[i]
        if "value" in row and row.get("key") == "team":
            row["value"] = f"team-{(i + 1) % 10}"
        return row

    key = (LINEAGE_MODEL,)
    for table in ("registered_models", "registered_model_tags", "model_versions", "model_version_tags",
                  "model_aliases"):  # fmt: skip
        if conn.execute(f"SELECT 1 FROM {table} WHERE name = ?", key).fetchone():
            clone(conn, table, "name = ?", key, len(names), named)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    store.close()
    return {
        "db": db,
        "experiment_id": experiment_id,
        "long_run": long_run.run_id,
        "compare": [template.run_id, *ids[: COMPARE - 1]],
        "build_s": time.perf_counter() - started,
    }


def loopml_pages(info: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "runs": (f"/experiments/{info['experiment_id']}", {"filter": FILTER, "order": ORDER, "size": PAGE}),
        "chart": (f"/runs/{info['long_run']}/metrics/loss/series", {"points": POINTS}),
        "compare": ("/compare", {"run": info["compare"]}),
        "models": ("/models", {}),
        "model": (f"/models/{LINEAGE_MODEL}", {}),
    }


SERVER = """
import sys, uvicorn
from loopml.server.app import create_app
from loopml.store import open_store
store = open_store(sys.argv[1], artifacts_url=sys.argv[2])
uvicorn.run(create_app(store), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
"""


def bench_loopml(info: dict[str, Any], home: Path, reps: int) -> dict[str, Any]:
    url, artifacts = f"sqlite:///{info['db']}", str(home / "artifacts")
    pages = loopml_pages(info)
    out: dict[str, Any] = {}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, url, artifacts, str(port)], cwd=ROOT)
    try:
        wait_up(port, "/health", proc)
        client = Http(port)
        for name, (path, query) in pages.items():
            try:
                started = time.perf_counter()
                client.get(path, **query)
                first_ms = (time.perf_counter() - started) * 1000
            except RuntimeError as exc:
                status = str(exc).split(" -> ")[-1].split(":")[0]
                log(f"loopml {name}: {path} answered {status}")
                out[name] = {"error": f"{path} answered {status}" + (" (no route yet)" if status == "404" else "")}
                client = Http(port)
                continue
            log(f"loopml {name} (HTTP)")
            out[name] = {"http_ms": median_ms(lambda p=path, q=query, c=client: c.get(p, **q), reps),
                         "first_ms": first_ms}  # fmt: skip
        series = json.loads(client.get(*[pages["chart"][0]], **pages["chart"][1]))
        out["chart"]["shown"], out["chart"]["total"] = series["shown"], series["total"]
    finally:
        stop(proc)
    # in process (no socket) and the floor: the statements the page issued, replayed with sqlite3
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from loopml.server.app import create_app
    from loopml.store import open_store
    from loopml.tracking.search import parse_filter, parse_order_by

    store = open_store(url, artifacts_url=artifacts)
    found = store.tracking.search_runs(
        [info["experiment_id"]], parse_filter(FILTER), parse_order_by(ORDER), PAGE, None
    ).runs
    out["top_acc"] = [dict(getattr(r, "metrics", None) or r.data.metrics)["acc"] for r in found]
    engines = {id(e): e for e in (getattr(store.tracking, "_engine", None), getattr(store.registry, "_engine", None))
               if e is not None}  # fmt: skip
    test = TestClient(create_app(store))
    raw = sqlite3.connect(info["db"], isolation_level=None)
    raw.execute("PRAGMA case_sensitive_like=ON")
    statements: list[tuple[str, Any, bool]] = []

    def before(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        statements.append((statement, parameters, many))

    for name, (path, query) in pages.items():
        if "error" in out[name]:
            continue
        log(f"loopml {name} (in process, floor)")
        out[name]["inproc_ms"] = median_ms(lambda p=path, q=query: test.get(p, params=q).raise_for_status(), reps)
        statements.clear()

        for engine in engines.values():
            event.listen(engine, "before_cursor_execute", before)
        test.get(path, params=query).raise_for_status()
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", before)
        queries = [s for s in statements if s[0].lstrip().upper().startswith(("SELECT", "WITH"))]

        def replay(qs: list[tuple[str, Any, bool]] = queries) -> None:
            for statement, parameters, _many in qs:
                raw.execute(statement, parameters).fetchall()

        out[name]["floor_ms"] = median_ms(replay, reps)
        out[name]["statements"] = len(queries)
        each = [(median_ms(lambda q=q: replay([q]), 3), q[0]) for q in queries]
        slowest = max(each, default=(0.0, ""))
        out[name]["slowest_ms"], out[name]["slowest_sql"] = slowest[0], " ".join(slowest[1].split())
    raw.close()
    store.close()
    return out


# -- MLflow ----------------------------------------------------------------------------------------------------


def build_mlflow(python: Path, work: Path, n_runs: int, n_points: int, n_models: int, seed: int) -> dict[str, Any]:
    db = work / "mlflow.db"
    port = free_port()
    env = dict(os.environ, PATH=f"{python.parent}:{os.environ['PATH']}", MLFLOW_LOGGING_LEVEL="ERROR")
    cmd = [str(python.parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{db}",
           "--default-artifact-root", (work / "artifacts").as_uri(), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info: dict[str, Any] = {"cmd": cmd, "db": db, "port": port, "proc": proc}
    wait_up(port, "/health", proc, 300)
    api = Http(port)
    base = "/api/2.0/mlflow"
    rng = random.Random(seed)
    params, metrics = run_values(0, rng)
    lineage_exp = api.post(f"{base}/experiments/create", {"name": "ui-lineage"})["experiment_id"]
    trained = api.post(f"{base}/runs/create", {"experiment_id": lineage_exp, "run_name": "trained",
                                                "start_time": 1_700_000_000_000})["run"]["info"]["run_id"]  # fmt: skip
    api.post(f"{base}/registered-models/create", {"name": LINEAGE_MODEL, "tags": [{"key": "team", "value": "risk"}]})
    api.post(f"{base}/model-versions/create",
             {"name": LINEAGE_MODEL, "source": f"runs:/{trained}/model", "run_id": trained})  # fmt: skip
    api.post(f"{base}/registered-models/alias", {"name": LINEAGE_MODEL, "alias": "champion", "version": "1"})
    experiment_id = api.post(f"{base}/experiments/create", {"name": "ui-bench"})["experiment_id"]
    template = api.post(f"{base}/runs/create", {"experiment_id": experiment_id, "run_name": "run-000000",
                                                 "start_time": 1_700_000_000_000})["run"]["info"]["run_id"]  # fmt: skip
    api.post(f"{base}/runs/log-batch", {
        "run_id": template,
        "params": [{"key": k, "value": v} for k, v in params.items()],
        "metrics": [{"key": k, "value": v, "timestamp": 1_700_000_000_000, "step": 0} for k, v in metrics.items()],
    })  # fmt: skip
    api.post(f"{base}/runs/update", {"run_id": template, "status": "FINISHED", "end_time": 1_700_000_000_001})
    long_run = api.post(f"{base}/runs/create", {"experiment_id": experiment_id, "run_name": "long",
                                                 "start_time": 1_600_000_000_000})["run"]["info"]["run_id"]  # fmt: skip
    api.post(f"{base}/runs/log-batch", {"run_id": long_run, "metrics": [
        {"key": "loss", "value": series_value(0), "timestamp": 1_600_000_000_000, "step": 0}]})  # fmt: skip

    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    conn.execute("BEGIN IMMEDIATE")
    ids = [uuid.uuid4().hex for _ in range(n_runs - 1)]
    values = [run_values(i, rng) for i in range(1, n_runs)]
    tid = (template,)
    log(f"MLflow: cloning {n_runs - 1:,} runs")
    artifact_root = conn.execute("SELECT artifact_uri FROM runs WHERE run_uuid = ?", tid).fetchone()[0]

    def run_row(row: dict[str, Any], i: int) -> dict[str, Any]:
        row.update(run_uuid=ids[i], name=f"run-{i + 1:06d}", start_time=1_700_000_000_000 + (i + 1) * 1000,
                   end_time=1_700_000_000_000 + (i + 1) * 1000 + 1,
                   artifact_uri=artifact_root.replace(template, ids[i]))  # fmt: skip
        return row

    def param_row(row: dict[str, Any], i: int) -> dict[str, Any]:
        row.update(run_uuid=ids[i], value=values[i][0][row["key"]])
        return row

    def metric_row(row: dict[str, Any], i: int) -> dict[str, Any]:
        row.update(run_uuid=ids[i], value=values[i][1][row["key"]], timestamp=1_700_000_000_000 + (i + 1) * 1000)
        return row

    def tag_row(row: dict[str, Any], i: int) -> dict[str, Any]:
        row["run_uuid"] = ids[i]
        if row["key"] == "mlflow.runName":
            row["value"] = f"run-{i + 1:06d}"
        return row

    clone(conn, "runs", "run_uuid = ?", tid, len(ids), run_row)
    clone(conn, "params", "run_uuid = ?", tid, len(ids), param_row)
    clone(conn, "metrics", "run_uuid = ?", tid, len(ids), metric_row)
    clone(conn, "latest_metrics", "run_uuid = ?", tid, len(ids), metric_row)
    if conn.execute("SELECT 1 FROM tags WHERE run_uuid = ?", tid).fetchone():
        clone(conn, "tags", "run_uuid = ?", tid, len(ids), tag_row)
    log(f"MLflow: {n_points:,} points of 'loss'")

    def point(row: dict[str, Any], i: int) -> dict[str, Any]:
        step = i + 1
        row.update(value=series_value(step), step=step, timestamp=1_600_000_000_000 + step)
        return row

    clone(conn, "metrics", "run_uuid = ? AND key = 'loss'", (long_run,), n_points - 1, point)
    conn.execute(
        "UPDATE latest_metrics SET value = ?, step = ?, timestamp = ? WHERE run_uuid = ? AND key = 'loss'",
        (series_value(n_points - 1), n_points - 1, 1_600_000_000_000 + n_points - 1, long_run),
    )
    log(f"MLflow: cloning {n_models - 1:,} registered models")
    names = [f"model-{m:05d}" for m in range(1, n_models)]

    def named(row: dict[str, Any], i: int) -> dict[str, Any]:
        row["name"] = names[i]
        if row.get("key") == "team":
            row["value"] = f"team-{(i + 1) % 10}"
        return row

    key = (LINEAGE_MODEL,)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in ("registered_models", "registered_model_tags", "model_versions", "model_version_tags",
                  "registered_model_aliases"):  # fmt: skip
        if table in tables and conn.execute(f"SELECT 1 FROM {table} WHERE name = ?", key).fetchone():
            clone(conn, table, "name = ?", key, len(names), named)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    info.update(experiment_id=experiment_id, long_run=long_run, compare=[template, *ids[: COMPARE - 1]],
                build_s=time.perf_counter() - started)  # fmt: skip
    return info


def bench_mlflow(info: dict[str, Any], reps: int, history_reps: int) -> dict[str, Any]:
    ajax = "/ajax-api/2.0/mlflow"
    client = Http(info["port"])
    out: dict[str, Any] = {}
    search = {"experiment_ids": [info["experiment_id"]], "filter": FILTER, "order_by": [ORDER],
              "max_results": PAGE, "run_view_type": "ACTIVE_ONLY"}  # fmt: skip

    def runs_page() -> None:
        found = json.loads(client.call("POST", f"{ajax}/runs/search", search)[1])
        assert len(found["runs"]) == PAGE, len(found.get("runs", []))

    log("MLflow runs/search")
    out["runs"] = median_ms(runs_page, reps)
    top = json.loads(client.call("POST", f"{ajax}/runs/search", search)[1])["runs"]
    out["top_acc"] = [next(m["value"] for m in r["data"]["metrics"] if m["key"] == "acc") for r in top]
    interval = {"run_ids": info["long_run"], "metric_key": "loss", "max_results": POINTS}
    log("MLflow get-history-bulk-interval")
    try:
        out["chart"] = median_ms(lambda: client.get(f"{ajax}/metrics/get-history-bulk-interval", **interval), reps)
        got = json.loads(client.get(f"{ajax}/metrics/get-history-bulk-interval", **interval))
        out["chart_shown"] = len(got.get("metrics", []))
    except RuntimeError as exc:
        log(f"get-history-bulk-interval: {exc}")
        client = Http(info["port"])
    history = {"run_id": info["long_run"], "metric_key": "loss"}
    out["history"] = None
    if history_reps:
        log(f"MLflow get-history (whole, {history_reps} reps)")
        try:
            out["history_points"] = len(json.loads(client.get(f"{ajax}/metrics/get-history", **history))["metrics"])
            times = []
            for _ in range(history_reps):  # the call above was the warm-up
                start = time.perf_counter()
                client.get(f"{ajax}/metrics/get-history", **history)
                times.append((time.perf_counter() - start) * 1000)
            out["history"] = statistics.median(times)
        except (RuntimeError, OSError, http.client.HTTPException) as exc:  # e.g. its worker timed out on a busy host
            log(f"get-history: {type(exc).__name__}: {exc}")
            client = Http(info["port"])
    log("MLflow compare (runs/get x 50)")

    def compare() -> None:
        for run_id in info["compare"]:
            client.get(f"{ajax}/runs/get", run_id=run_id)

    out["compare"] = median_ms(compare, reps)
    log("MLflow models")
    out["models"] = median_ms(lambda: client.get(f"{ajax}/registered-models/search", max_results=PAGE), reps)

    def model_page() -> None:
        client.get(f"{ajax}/registered-models/get", name=LINEAGE_MODEL)
        client.get(f"{ajax}/model-versions/search", filter=f"name='{LINEAGE_MODEL}'")

    out["model"] = median_ms(model_page, reps)
    return out


# -- report ----------------------------------------------------------------------------------------------------


def fmt(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def report(args: argparse.Namespace, lm: dict[str, Any], ml: dict[str, Any] | None, extra: dict[str, Any]) -> str:
    rows = []
    chart = lm["chart"]
    labels = {
        "runs": f"runs page: {PAGE} of {args.runs:,} runs, filter {FILTER!r}, order {ORDER!r}",
        "chart": f"chart data of the {args.points:,}-point metric ({chart.get('shown', '?')} points shown)",
        "compare": f"compare of {COMPARE} runs",
        "models": f"models list ({args.models:,} models)",
        "model": "a model page with lineage",
    }
    mlflow_call = {
        "runs": "runs/search",
        "chart": f"get-history-bulk-interval ({(ml or {}).get('chart_shown', '?')} pts)",
        "compare": f"runs/get {TIMES}50",
        "models": f"registered-models/search ({PAGE})",
        "model": "registered-models/get + model-versions/search",
    }
    for name in ("runs", "chart", "compare", "models", "model"):
        ours = lm.get(name, {})
        theirs = None if ml is None else ml.get(name)
        target = CHART_TARGET_MS if name == "chart" else PAGE_TARGET_MS
        want_ratio = name in ("runs", "chart")
        if "error" in ours:
            rows.append((labels[name], ours["error"], "—", "—", fmt(theirs), mlflow_call[name], "—",
                         f"≤ {target:.0f} ms", "NOT RUN"))  # fmt: skip
            continue
        ratio = None if theirs is None else theirs / ours["http_ms"]
        checks = [ours["http_ms"] <= target]
        if want_ratio:
            checks.append(ratio is not None and ratio >= RATIO_TARGET)
        verdict = "PASS" if all(checks) else "FAIL"
        if want_ratio and ratio is None and ours["http_ms"] <= target:
            verdict = "PASS*"
        rows.append((
            labels[name], fmt(ours["http_ms"]), fmt(ours.get("inproc_ms")),
            f"{fmt(ours.get('floor_ms'))} ({ours.get('statements', '?')} q)", fmt(theirs), mlflow_call[name],
            "—" if ratio is None else f"{ratio:,.1f}{TIMES}",
            f"≤ {target:.0f} ms" + (f", ≥ {RATIO_TARGET:.0f}{TIMES} MLflow" if want_ratio else ""), verdict,
        ))  # fmt: skip
    if ml is not None and ml.get("history") is not None:
        rows.append((f"whole history of the {args.points:,}-point metric (MLflow's get-history)", "—", "—", "—",
                     fmt(ml["history"]), f"get-history ({ml['history_points']:,} pts)",
                     f"{ml['history'] / chart['http_ms']:,.0f}{TIMES}" if "http_ms" in chart else "—",
                     "report", "—"))  # fmt: skip
    head = ("workload", "loopml ms (HTTP)", "in process ms", "floor ms (sqlite3)", "MLflow ms", "MLflow call",
            "ratio", "target", "result")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def reproduce(args: argparse.Namespace) -> str:
    argv = [this_python(ROOT), "benchmarks/ui.py", "--runs", str(args.runs), "--points", str(args.points),
            "--models", str(args.models), "--reps", str(args.reps), "--seed", str(args.seed)]  # fmt: skip
    if args.history_reps != 2:
        argv += ["--history-reps", str(args.history_reps)]
    if args.no_peer:
        argv.append("--no-peer")
    return f"cd {shlex.quote(str(ROOT))} && {shlex.join(argv)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="runs (default 100000; --quick 10000)")
    parser.add_argument("--points", type=int, help="points of the long metric (default 1000000; --quick 100000)")
    parser.add_argument("--models", type=int, help="registered models (default 10000; --quick 10000)")
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions after one warm-up (default 7)")
    parser.add_argument(
        "--history-reps", type=int, default=2, help="MLflow's whole get-history: reps after a warm-up (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10,000 runs and a 100,000-point metric")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow")
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.runs = args.runs or (10_000 if args.quick else 100_000)
    args.points = args.points or (100_000 if args.quick else 1_000_000)
    args.models = args.models or 10_000
    import warnings

    warnings.filterwarnings("ignore")
    import loopml

    python = None if args.no_peer else ensure_venv(args.peer_venv, ["mlflow", "scikit-learn"], log)
    print(f"scale: {args.runs:,} runs x {N_PARAMS} params x {N_METRICS} metrics, one {args.points:,}-point metric, "
          f"{args.models:,} registered models; median of {args.reps} after a warm-up", flush=True)  # fmt: skip
    base = Path(tempfile.mkdtemp(prefix="loopml-bench-ui-"))
    mlflow_info: dict[str, Any] | None = None
    try:
        info = build_loopml(base / "loopml", args.runs, args.points, args.models, args.seed)
        log(f"loopml store built in {info['build_s']:.0f} s")
        lm = bench_loopml(info, base / "loopml", args.reps)
        ml = None
        mlflow_version = "not run"
        if python is not None:
            mlflow_version = subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
            (base / "mlflow").mkdir()
            mlflow_info = build_mlflow(python, base / "mlflow", args.runs, args.points, args.models, args.seed)
            log(f"MLflow store built in {mlflow_info['build_s']:.0f} s")
            ml = bench_mlflow(mlflow_info, args.reps, args.history_reps)
        table = report(args, lm, ml, {})
        print(table)
        print(f"\nmachine: {machine()}; Python {platform.python_version()}; loopml {loopml.__version__}; "
              f"MLflow {mlflow_version}")  # fmt: skip
        if ml is not None:
            same = lm["top_acc"] == ml["top_acc"]
            print(f"runs page: both tools returned the same {len(lm['top_acc'])} runs in the same order: "
                  f"{'yes' if same else 'NO'}")  # fmt: skip
        for name in ("runs", "chart"):
            if "slowest_sql" in lm.get(name, {}):
                sql = lm[name]["slowest_sql"]
                print(f"slowest statement of the {name} page in the floor: {fmt(lm[name]['slowest_ms'])} ms: "
                      f"{sql[:400]}{' …' if len(sql) > 400 else ''}")  # fmt: skip
        if "first_ms" in lm.get("chart", {}):
            print(f"first chart request (builds the metric's roll-ups, once per metric of an ended run): "
                  f"{fmt(lm['chart']['first_ms'])} ms")  # fmt: skip
        print(f"stores built in: loopml {info['build_s']:.0f} s"
              + (f", MLflow {mlflow_info['build_s']:.0f} s" if mlflow_info else ""))  # fmt: skip
        print(
            "times: client-side over HTTP on 127.0.0.1 (one keep-alive connection, one server process each); "
            "ratio = MLflow ms / loopml HTTP ms; floor = the SELECTs the page issued, replayed with sqlite3."
        )
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "loopml": lm,
                                             "mlflow": ml}, indent=2, default=str))  # fmt: skip
        print("\nReproduce:\n" + reproduce(args))
    finally:
        if mlflow_info is not None:
            stop(mlflow_info["proc"])
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
