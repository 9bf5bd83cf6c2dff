"""Tracking benchmark: loopml against MLflow (SQLite, in-process) on the same workloads, in one run.

Workloads (issue 2):

1. ``log_metric`` x 10,000 in one run, until durable (loopml: ``run.log_metric`` then ``run.flush()``;
   MLflow: ``mlflow.log_metric``, synchronous, so the loop is timed as a whole).
2. 10,000 runs x (5 params + 5 metrics) through each tool's public API (runs/s), then ``search_runs``
   filtered on a param and a metric, ordered by a metric, 100 results (median of ``--reps`` after a
   warm-up; loopml as a DataFrame and as Run objects, MLflow ``mlflow.search_runs`` and
   ``MlflowClient().search_runs``), and ``get_run`` (median over 200 random runs).
3. The same loopml search over 100,000 runs (loopml only; the runs are bulk-loaded, see ``--big-load``).

The "floor" column is the bare library doing the same work: ``sqlite3`` executemany + commit for the
metrics, one ``sqlite3`` transaction per run for run creation, and for search and ``get_run`` the very
SQL statements loopml issued (captured from its engine) replayed with ``sqlite3``.

MLflow runs in its own venv (``/tmp/peer-mlflow``, created when missing unless ``--no-peer``) as a
subprocess executing ``benchmarks/_peer.py``; each tool gets a fresh temporary directory.

    .venv/bin/python benchmarks/tracking.py            # full run (MLflow takes ~15 minutes)
    .venv/bin/python benchmarks/tracking.py --quick    # smoke test, well under a minute of loopml
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import ensure_venv, machine, this_python
from _peer import FILTER, MAX_RESULTS, ORDER_BY, make_runs, median_ms, metric_values

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path("/tmp/peer-mlflow")
CAPTURE_BUDGET_S = 180.0  # above this projected time, the rest of the 10k runs use capture=False
CAPTURE_SAMPLE = 300  # runs created with the defaults before projecting
DEFAULT_ORDER_FILTER = "metrics.acc > 0.5"  # searched with the default order too (issue 17)
SEARCH_TARGET_MS = 10.0  # issue 17: search_runs over 10,000 runs
GET_RUN_TARGET_MS = 0.5  # issue 17
DEFAULT_ORDER_TARGET_MS = 50.0  # issue 17: the metric filter, newest first, over 100,000 runs
TIMES = "\u00d7"  # the multiplication sign


# -- helpers ----------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[loopml] {message}", file=sys.stderr, flush=True)


def use_home(home: Path) -> Any:
    """Point loopml at a fresh LOOPML_HOME (SQLite) and return the module."""
    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI"):
        os.environ.pop(name, None)
    os.environ["LOOPML_HOME"] = str(home)
    import loopml

    loopml.set_tracking_uri(None)
    return loopml


def engine_of(loopml: Any) -> Any:
    """The SQLAlchemy engine behind the default client (used only to capture the SQL it issues)."""
    return getattr(loopml.get_tracking_client().store.tracking, "_engine", None)


@contextmanager
def captured_sql(engine: Any) -> Iterator[list[tuple[str, Any, bool]]]:
    """Every statement (with its parameters) the engine sends to sqlite3 inside the block."""
    from sqlalchemy import event

    statements: list[tuple[str, Any, bool]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, executemany: bool) -> None:
        statements.append((statement, parameters, executemany))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def connect(db: Path) -> sqlite3.Connection:
    """A bare sqlite3 connection with loopml's pragmas (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA case_sensitive_like=ON")
    return conn


def replay(conn: sqlite3.Connection, statements: list[tuple[str, Any, bool]]) -> None:
    for statement, parameters, many in statements:
        if statement.lstrip().upper().startswith("BEGIN") and conn.in_transaction:
            conn.commit()  # loopml committed its previous transaction here (commits are not statements)
        if many:
            conn.executemany(statement, parameters)
        else:
            conn.execute(statement, parameters).fetchall()
    conn.commit()


def new_schema(loopml: Any, home: Path, experiment: str) -> tuple[Path, int]:
    """A fresh loopml store (migrated by loopml itself) with one experiment; its db file and id."""
    use_home(home)
    experiment_id = loopml.get_tracking_client().get_or_create_experiment(experiment).experiment_id
    return home / "loopml.db", experiment_id


def as_number(text: str) -> float | None:
    """The numeric reading loopml stores beside a param (``value_num``)."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def run_rows(experiment_id: int, params: dict[str, Any], metrics: dict[str, float], start_time: int) -> dict[str, Any]:
    """The rows loopml writes for one finished run with these params and metrics (no tags)."""
    from loopml.tracking.validation import check_mapping

    run_id = uuid.uuid4().hex
    texts = check_mapping(params, "Param")
    return {
        "run": (run_id, experiment_id, f"run-{start_time}", "FINISHED", start_time, start_time + 1, None, "bench"),
        "params": [(run_id, k, v, as_number(v)) for k, v in texts.items()],
        "metrics": [(run_id, k, v, False, 0, start_time) for k, v in metrics.items()],
        "batch": (run_id, uuid.uuid4().hex, start_time),
    }


def insert_run(conn: sqlite3.Connection, rows: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, parent_run_id, user_name) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows["run"],
    )
    conn.executemany("INSERT INTO params (run_id, key, value, value_num) VALUES (?, ?, ?, ?)", rows["params"])
    conn.executemany(
        "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES (?, ?, ?, ?, ?, ?)", rows["metrics"]
    )
    conn.executemany(
        "INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp) VALUES (?, ?, ?, ?, ?, ?)",
        rows["metrics"],
    )
    conn.execute("INSERT INTO applied_batches (run_id, idempotency_key, applied_at) VALUES (?, ?, ?)", rows["batch"])


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def fmt_s(seconds: float | None, count: int, unit: str) -> str:
    if seconds is None:
        return "—"
    rate = count / seconds if seconds > 0 else math.inf
    shown = f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"
    return f"{shown} ({rate:,.0f} {unit}/s)"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:,.0f}{TIMES}" if ratio >= 10 else f"{ratio:.1f}{TIMES}"


# -- loopml workloads --------------------------------------------------------------------------------------


def bench_metrics(base: Path, n: int, seed: int) -> dict[str, Any]:
    loopml = use_home(base / "metrics")
    values = metric_values(n, seed)
    log(f"log_metric x {n}")
    with loopml.start_run(experiment="metric-logging") as run:
        start = time.perf_counter()
        for step, value in enumerate(values):
            run.log_metric("loss", value, step=step)
        run.flush()
        seconds = time.perf_counter() - start
        stored = len(loopml.get_metric_history(run.id, "loss"))
    if stored != n:
        raise SystemExit(f"loopml stored {stored} of {n} metric points")

    # Floor: the same points as rows of loopml's metrics table, one executemany + commit.
    db, experiment_id = new_schema(loopml, base / "metrics-floor", "metric-logging")
    conn = connect(db)
    rows = run_rows(experiment_id, {}, {}, 0)
    conn.execute("BEGIN IMMEDIATE")
    insert_run(conn, rows)
    conn.commit()
    run_id = rows["run"][0]
    points = [(run_id, "loss", value, False, step, 1_700_000_000_000 + step) for step, value in enumerate(values)]
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES (?, ?, ?, ?, ?, ?)", points
    )
    conn.commit()
    floor = time.perf_counter() - start
    conn.close()
    return {"metrics_s": seconds, "metrics_floor_s": floor}


def create_runs(loopml: Any, data: list[tuple[dict[str, Any], dict[str, float]]]) -> dict[str, Any]:
    """Create the runs with loopml's defaults; switch to capture=False if that would take > 3 minutes."""
    n = len(data)
    sample = min(n, CAPTURE_SAMPLE)
    ids: list[str] = []

    def make(chunk: list[tuple[dict[str, Any], dict[str, float]]], capture: bool) -> float:
        start = time.perf_counter()
        for params, metrics in chunk:
            with loopml.start_run(experiment="search", params=params, capture=capture) as run:
                run.log_metrics(metrics)
                ids.append(run.id)
            if len(ids) % 1000 == 0:
                log(f"  {len(ids)} runs")
        return time.perf_counter() - start

    log(f"creating {n} runs (defaults, capture on)")
    default_s = make(data[:sample], True)
    projected = default_s / sample * n
    out: dict[str, Any] = {"run_ids": ids, "default_runs": sample, "default_s": default_s, "projected_s": projected}
    rest = data[sample:]
    if not rest:
        return out
    if projected <= CAPTURE_BUDGET_S:
        out["default_s"] += make(rest, True)
        out["default_runs"] = n
    else:
        log(
            f"defaults cost {default_s / sample * 1000:.1f} ms/run, {projected:.0f} s projected: rest with capture=False"
        )
        out["nocapture_runs"] = len(rest)
        out["nocapture_s"] = make(rest, False)
    return out


def bench_runs(base: Path, n: int, seed: int, reps: int, n_get: int) -> dict[str, Any]:
    loopml = use_home(base / "runs")
    data = make_runs(n, seed)
    out = create_runs(loopml, data)
    run_ids = out.pop("run_ids")

    log("search_runs")
    out.update(search(loopml, "search", reps))

    log("get_run")
    sample = random.Random(seed + 1).sample(run_ids, min(n_get, len(run_ids)))
    loopml.get_run(sample[0])
    times = []
    for run_id in sample:
        start = time.perf_counter()
        loopml.get_run(run_id)
        times.append((time.perf_counter() - start) * 1000)
    out["get_run_ms"] = statistics.median(times)
    engine = engine_of(loopml)
    if engine is not None:
        captured = []
        for run_id in sample:
            with captured_sql(engine) as statements:
                loopml.get_run(run_id)
            captured.append(statements)
        conn = connect(base / "runs" / "loopml.db")
        replay(conn, captured[0])
        times = []
        for statements in captured:
            start = time.perf_counter()
            replay(conn, statements)
            times.append((time.perf_counter() - start) * 1000)
        out["get_run_floor_ms"] = statistics.median(times)
        conn.close()

    # Floor for creation: the rows of each run (params, metrics, latest metrics) in one sqlite3 transaction.
    db, experiment_id = new_schema(loopml, base / "runs-floor", "search")
    conn = connect(db)
    start = time.perf_counter()
    for i, (params, metrics) in enumerate(data):
        rows = run_rows(experiment_id, params, metrics, 1_700_000_000_000 + i)
        conn.execute("BEGIN IMMEDIATE")
        insert_run(conn, rows)
        conn.commit()
    out["runs_floor_s"] = time.perf_counter() - start
    conn.close()
    return out


def search(loopml: Any, experiment: str, reps: int) -> dict[str, Any]:
    """Median search times (DataFrame and Run objects), the top acc values, and the replayed-SQL floor."""
    query = {"experiment": experiment, "filter": FILTER, "order_by": list(ORDER_BY), "max_results": MAX_RESULTS}
    out: dict[str, Any] = {}
    out["search_frame_ms"], out["search_frame_all_ms"] = median_ms(
        lambda: loopml.search_runs(**query, as_frame=True), reps
    )
    out["search_objects_ms"], out["search_objects_all_ms"] = median_ms(
        lambda: loopml.search_runs(**query, as_frame=False), reps
    )
    page = loopml.search_runs(**query, as_frame=False)
    out["search_top_acc"] = [run.metrics["acc"] for run in page.runs]
    out["search_models"] = sorted({run.params["model"] for run in page.runs})
    engine = engine_of(loopml)
    if engine is not None:
        with captured_sql(engine) as statements:
            loopml.search_runs(**query, as_frame=False)
        conn = connect(Path(engine.url.database))
        out["search_floor_ms"], _ = median_ms(lambda: replay(conn, statements), reps)
        ids_query = [s for s in statements if "LIMIT" in s[0]][:1]
        out["search_ids_floor_ms"], _ = median_ms(lambda: replay(conn, ids_query), reps)
        conn.close()
    # Issue 17: a metric filter with the default order (newest first), objects.
    default = {"experiment": experiment, "filter": DEFAULT_ORDER_FILTER, "max_results": MAX_RESULTS, "as_frame": False}
    out["search_default_ms"], _ = median_ms(lambda: loopml.search_runs(**default), reps)
    if engine is not None:
        with captured_sql(engine) as statements:
            loopml.search_runs(**default)
        conn = connect(Path(engine.url.database))
        out["search_default_floor_ms"], _ = median_ms(lambda: replay(conn, statements), reps)
        conn.close()
    return out


def bench_big(base: Path, n: int, seed: int, reps: int, how: str) -> dict[str, Any]:
    loopml = use_home(base / "big")
    data = make_runs(n, seed)
    log(f"loading {n} runs ({how})")
    start = time.perf_counter()
    if how == "sql":
        db, experiment_id = new_schema(loopml, base / "big", "big")
        conn = connect(db)
        conn.execute("BEGIN IMMEDIATE")
        for i, (params, metrics) in enumerate(data):
            insert_run(conn, run_rows(experiment_id, params, metrics, 1_700_000_000_000 + i))
        conn.commit()
        conn.close()
    else:
        from loopml.entities.tracking import Metric, RunStatus
        from loopml.tracking.validation import check_mapping

        client = loopml.get_tracking_client()
        store = client.store.tracking
        experiment_id = client.get_or_create_experiment("big").experiment_id
        for i, (params, metrics) in enumerate(data):
            now = 1_700_000_000_000 + i
            run = store.create_run(
                experiment_id, name=f"run-{i}", user="bench", start_time=now, params=check_mapping(params, "Param")
            )
            store.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, now) for k, v in metrics.items()])
            store.end_run(run.info.run_id, RunStatus.FINISHED, now + 1)
    load_s = time.perf_counter() - start
    log("search_runs (big)")
    out = {f"big_{k}": v for k, v in search(loopml, "big", reps).items()}
    out["big_load_s"] = load_s
    return out


# -- MLflow side ---------------------------------------------------------------------------------------


def ensure_peer(venv: Path) -> Path:
    return ensure_venv(venv, ["mlflow", "scikit-learn"], log)


def bench_mlflow(python: Path, base: Path, config: dict[str, Any]) -> dict[str, Any]:
    workdir = base / "mlflow"
    workdir.mkdir(parents=True)
    config = {**config, "workdir": str(workdir)}
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}", "PYTHONWARNINGS": "ignore"}
    log(f"MLflow in {python} (a subprocess; progress follows)")
    done = subprocess.run(
        [str(python), str(Path(__file__).with_name("_peer.py")), json.dumps(config)],
        cwd=workdir,  # MLflow's default experiment points its artifacts at ./mlruns
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the MLflow side failed (exit {done.returncode}): {done.stdout[-2000:]}")
    return json.loads(lines[-1])


# -- report ---------------------------------------------------------------------------------------------------


@dataclass
class Row:
    workload: str
    loopml: str
    mlflow: str
    floor: str
    ratio: str
    target: str
    result: str


def verdict(checks: list[bool | None]) -> str:
    known = [c for c in checks if c is not None]
    if not known:
        return "—"
    if not all(known):
        return "FAIL"
    return "PASS" if len(known) == len(checks) else "PASS*"


def build_rows(args: argparse.Namespace, lm: dict[str, Any], ml: dict[str, Any] | None) -> list[Row]:
    rows = []
    peer = ml is not None

    def faster(ours: float | None, theirs: float | None) -> float | None:
        return theirs / ours if ours and theirs else None

    ratio = faster(lm["metrics_s"], ml["metrics_s"] if peer else None)
    rows.append(
        Row(
            f"log_metric {TIMES} {args.metrics:,}, until durable",
            fmt_s(lm["metrics_s"], args.metrics, "pts"),
            fmt_s(ml["metrics_s"], args.metrics, "pts") if peer else "skipped",
            fmt_s(lm["metrics_floor_s"], args.metrics, "pts"),
            fmt_ratio(ratio),
            f"≥ 50{TIMES} MLflow",
            verdict([None if ratio is None else ratio >= 50]),
        )
    )
    runs_ratio = None
    if peer:
        runs_ratio = (lm["default_runs"] / lm["default_s"]) / (args.runs / ml["runs_s"])
    label = f"create {args.runs:,} runs (5 params + 5 metrics), defaults"
    if lm["default_runs"] < args.runs:
        label = (
            f"create runs, defaults (first {lm['default_runs']:,}; {args.runs:,} projected {lm['projected_s']:.0f} s)"
        )
    rows.append(
        Row(
            label,
            fmt_s(lm["default_s"], lm["default_runs"], "runs"),
            fmt_s(ml["runs_s"], args.runs, "runs") if peer else "skipped",
            fmt_s(lm["runs_floor_s"], args.runs, "runs"),
            fmt_ratio(runs_ratio),
            "report",
            "—",
        )
    )
    if "nocapture_s" in lm:
        rows.append(
            Row(
                f"create runs, capture=False (other {lm['nocapture_runs']:,})",
                fmt_s(lm["nocapture_s"], lm["nocapture_runs"], "runs"),
                "—",
                fmt_s(lm["runs_floor_s"], args.runs, "runs"),
                fmt_ratio((lm["nocapture_runs"] / lm["nocapture_s"]) / (args.runs / ml["runs_s"]) if peer else None),
                "report",
                "—",
            )
        )
    for ours, theirs, what in (
        ("search_frame_ms", "search_frame_ms", "DataFrame (mlflow.search_runs)"),
        ("search_objects_ms", "search_client_ms", "objects (as_frame=False / MlflowClient)"),
    ):
        ratio = faster(lm[ours], ml[theirs] if peer else None)
        rows.append(
            Row(
                f"search {args.runs:,} runs, {what}",
                fmt_ms(lm[ours]),
                fmt_ms(ml[theirs]) if peer else "skipped",
                fmt_ms(lm.get("search_floor_ms")),
                fmt_ratio(ratio),
                f"≥ 10{TIMES} MLflow, ≤ {SEARCH_TARGET_MS:.0f} ms",
                verdict([None if ratio is None else ratio >= 10, lm[ours] <= SEARCH_TARGET_MS]),
            )
        )
    ratio = faster(lm["get_run_ms"], ml["get_run_ms"] if peer else None)
    rows.append(
        Row(
            f"get_run (median of {min(args.get_runs, args.runs)} random runs)",
            fmt_ms(lm["get_run_ms"]),
            fmt_ms(ml["get_run_ms"]) if peer else "skipped",
            fmt_ms(lm.get("get_run_floor_ms")),
            fmt_ratio(ratio),
            f"≤ {GET_RUN_TARGET_MS} ms",
            verdict([lm["get_run_ms"] <= GET_RUN_TARGET_MS]),
        )
    )
    for key, what in (("big_search_frame_ms", "DataFrame"), ("big_search_objects_ms", "objects")):
        rows.append(
            Row(
                f"search {args.big_runs:,} runs, {what}",
                fmt_ms(lm[key]),
                "not run",
                fmt_ms(lm.get("big_search_floor_ms")),
                "—",
                "< 200 ms",
                verdict([lm[key] < 200]),
            )
        )
    rows.append(
        Row(
            f"search {args.big_runs:,} runs, {DEFAULT_ORDER_FILTER!r}, default order (newest first), objects",
            fmt_ms(lm["big_search_default_ms"]),
            "not run",
            fmt_ms(lm.get("big_search_default_floor_ms")),
            "—",
            f"≤ {DEFAULT_ORDER_TARGET_MS:.0f} ms",
            verdict([lm["big_search_default_ms"] <= DEFAULT_ORDER_TARGET_MS]),
        )
    )
    return rows


def print_report(
    args: argparse.Namespace, lm: dict[str, Any], ml: dict[str, Any] | None, versions: dict[str, str]
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal or console.width < 150:
        console = Console(width=150)  # the table stays one row a workload in logs and narrow terminals
    table = Table(title="Tracking: loopml vs MLflow (SQLite, in-process; times are medians unless totals)")
    for column in ("workload", "loopml", "MLflow", "floor (sqlite3)", "ratio", "target", "result"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for row in build_rows(args, lm, ml):
        style = {"PASS": "green", "PASS*": "green", "FAIL": "bold red"}.get(row.result, "")
        table.add_row(
            row.workload,
            row.loopml,
            row.mlflow,
            row.floor,
            row.ratio,
            row.target,
            f"[{style}]{row.result}[/]" if style else row.result,
        )
    console.print(table)
    notes = [
        f"machine: {versions['machine']}; Python {versions['python']}; loopml {versions['loopml']}; "
        f"MLflow {versions.get('mlflow', 'not run')}",
        "ratio = how many times faster loopml is than MLflow (throughput, or latency).",
        f"search: filter {FILTER!r}, order by {list(ORDER_BY)}, max_results={MAX_RESULTS}; median of {args.reps} "
        "after one warm-up. Floor = the statements loopml issued (ids query + hydration), replayed with sqlite3; "
        f"the ids query alone: {fmt_ms(lm.get('search_ids_floor_ms'))} ({args.runs:,} runs), "
        f"{fmt_ms(lm.get('big_search_ids_floor_ms'))} ({args.big_runs:,} runs).",
        f"{args.big_runs:,} runs were "
        + (
            "bulk-loaded with sqlite3 executemany into loopml's own migrated schema (the rows loopml writes: runs, "
            "params with value_num, metrics, latest_metrics)"
            if args.big_load == "sql"
            else "created with client.store.tracking.create_run + log_batch + end_run"
        )
        + f" in {lm['big_load_s']:.1f} s, then searched through loopml.search_runs.",
        "durability: loopml's SQLite runs in WAL with synchronous=NORMAL (the floor uses the same); MLflow uses "
        "SQLite's defaults (rollback journal, synchronous=FULL).",
    ]
    if "nocapture_s" in lm:
        per_run = lm["default_s"] / lm["default_runs"] * 1000
        notes.append(
            f"loopml's default run creation (git/env capture) cost {per_run:.1f} ms/run here, so {args.runs:,} runs "
            f"would take {lm['projected_s']:.0f} s (> {CAPTURE_BUDGET_S:.0f} s): the first {lm['default_runs']:,} "
            f"used the defaults, the other {lm['nocapture_runs']:,} capture=False."
        )
    if ml is not None:
        agree = lm["search_top_acc"] == ml["search_top_acc"]
        notes.append(
            f"both tools returned the same {len(lm['search_top_acc'])} runs in the same order: "
            f"{'yes' if agree else 'NO'} (models {lm['search_models']} / {ml['search_models']})."
        )
    for note in notes:
        console.print(f"• {note}", highlight=False)
    console.print("\nReproduce:", style="bold")
    console.print(reproduce_command(args), highlight=False, soft_wrap=True)


def reproduce_command(args: argparse.Namespace) -> str:
    shown = this_python(ROOT)
    argv = [
        shown,
        "benchmarks/tracking.py",
        "--runs",
        str(args.runs),
        "--big-runs",
        str(args.big_runs),
        "--metrics",
        str(args.metrics),
        "--reps",
        str(args.reps),
        "--seed",
        str(args.seed),
    ]
    if args.big_load != "sql":
        argv += ["--big-load", args.big_load]
    if args.no_peer:
        argv.append("--no-peer")
    return f"cd {shlex.quote(str(ROOT))} && {shlex.join(argv)}"


# -- main ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="runs to create and search (default 10000; --quick 200)")
    parser.add_argument("--big-runs", type=int, help="runs for the loopml-only search (default 100000; --quick 2000)")
    parser.add_argument("--metrics", type=int, help="log_metric calls (default 10000; --quick 200)")
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions after one warm-up (default 7)")
    parser.add_argument("--get-runs", type=int, default=200, help="random runs for get_run (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--big-load",
        choices=("sql", "api"),
        default="sql",
        help="create the big runs by sqlite3 bulk load (default) or store.tracking.create_run",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow (and never create its venv)")
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV, help="MLflow's venv (default /tmp/peer-mlflow)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    sizes = (200, 2_000, 200) if args.quick else (10_000, 100_000, 10_000)
    for name, default in zip(("runs", "big_runs", "metrics"), sizes, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    import loopml

    versions = {
        "machine": machine(),
        "python": platform.python_version(),
        "loopml": loopml.__version__,
    }
    python = None if args.no_peer else ensure_peer(args.peer_venv)
    base = Path(tempfile.mkdtemp(prefix="loopml-bench-tracking-"))
    try:
        lm: dict[str, Any] = {}
        lm.update(bench_metrics(base, args.metrics, args.seed))
        lm.update(bench_runs(base, args.runs, args.seed, args.reps, args.get_runs))
        lm.update(bench_big(base, args.big_runs, args.seed, args.reps, args.big_load))
        ml = None
        if python is not None:
            ml = bench_mlflow(
                python,
                base,
                {
                    "metrics": args.metrics,
                    "runs": args.runs,
                    "seed": args.seed,
                    "reps": args.reps,
                    "get_runs": args.get_runs,
                },
            )
            versions["mlflow"] = ml["version"]
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "args": {k: str(v) for k, v in vars(args).items()},
                        "versions": versions,
                        "loopml": lm,
                        "mlflow": ml,
                    },
                    indent=2,
                )
            )
        print_report(args, lm, ml, versions)
    finally:
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
