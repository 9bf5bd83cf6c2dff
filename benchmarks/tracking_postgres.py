"""The slow paths of issue 17 on PostgreSQL: ``search_runs`` and ``get_run`` through loopml, beside the floor.

Bulk-loads ``--runs`` runs (5 params, 5 metrics, 8 tags each; the data of ``_peer.make_runs``, seed 0)
with ``COPY`` into a fresh database migrated by loopml, then times, as ``tracking.py`` does on SQLite:

* the search (``params.model = 'rf' and metrics.acc > 0.5``, ordered by ``metrics.acc DESC``, 100 runs);
* ``metrics.acc > 0.5`` with the default order (newest first), 100 runs;
* ``get_run`` of 200 random runs (median).

The floor is the very statements loopml issued, captured from its engine and replayed with bare
``psycopg`` on one connection (one transaction each, as loopml runs them). The database is dropped
at the end unless ``--keep``.

    .venv/bin/python benchmarks/tracking_postgres.py --url postgresql://postgres@127.0.0.1:5432/test --runs 10000
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, this_python
from _peer import FILTER, MAX_RESULTS, ORDER_BY, make_runs, median_ms

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ORDER_FILTER = "metrics.acc > 0.5"


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def load(url: str, experiment_id: int, n: int) -> None:
    import psycopg

    runs, params, metrics, tags = [], [], [], []
    for i, (p, m) in enumerate(make_runs(n, 0)):
        run_id, start = uuid.uuid4().hex, 1_700_000_000_000 + i
        runs.append((run_id, experiment_id, f"run-{i}", "FINISHED", start, start + 1, None, "bench"))
        params += [(run_id, k, str(v), number(str(v))) for k, v in p.items()]
        metrics += [(run_id, k, v, False, False, 0, start) for k, v in m.items()]
        tags += [(run_id, f"loopml.tag{j}", f"value-{j}-{i}", None) for j in range(8)]
    metric_columns = "run_id, key, value, is_nan, negative_zero, step, timestamp"
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for table, columns, rows in (
            ("runs", "run_id, experiment_id, name, status, start_time, end_time, parent_run_id, user_name", runs),
            ("params", "run_id, key, value, value_num", params),
            ("metrics", metric_columns, metrics),
            ("latest_metrics", metric_columns, metrics),
            ("tags", "run_id, key, value, value_num", tags),
        ):
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.commit()
        cur.execute("ANALYZE")  # what autovacuum does after a bulk load
        conn.commit()


def captured(engine: Any, fn: Any) -> list[tuple[str, Any]]:
    from sqlalchemy import event

    statements: list[tuple[str, Any]] = []

    def before(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return statements


def replay(conn: Any, statements: list[tuple[str, Any]]) -> None:
    with conn.transaction():
        for statement, parameters in statements:
            cur = conn.execute(statement, parameters)
            if cur.description is not None:
                cur.fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL server (psycopg URL); a database is created on it")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    import psycopg

    database = f"loopml_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    base = args.url.rsplit("/", 1)[0]
    url = f"{base}/{database}"
    os.environ["LOOPML_DB_URL"] = url.replace("postgresql://", "postgresql+psycopg://", 1)
    os.environ["LOOPML_HOME"] = f"/tmp/{database}"
    os.environ.pop("LOOPML_TRACKING_URI", None)
    try:
        import loopml

        client = loopml.get_tracking_client()
        experiment_id = client.get_or_create_experiment("big").experiment_id
        start = time.perf_counter()
        load(url, experiment_id, args.runs)
        print(f"loaded {args.runs:,} runs in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        engine = client.store.tracking._engine
        floor = psycopg.connect(url)
        queries = {
            "search, ordered by a metric": {"filter": FILTER, "order_by": list(ORDER_BY)},
            f"{DEFAULT_ORDER_FILTER!r}, default order": {"filter": DEFAULT_ORDER_FILTER},
        }
        rows = []
        for label, query in queries.items():
            call = dict(experiment="big", max_results=MAX_RESULTS, as_frame=False, **query)
            ours, _ = median_ms(lambda call=call: loopml.search_runs(**call), args.reps)
            statements = captured(engine, lambda call=call: loopml.search_runs(**call))
            bare, _ = median_ms(lambda statements=statements: replay(floor, statements), args.reps)
            rows.append((f"{label} ({args.runs:,} runs)", ours, bare))
        ids = [r.info.run_id for r in loopml.search_runs(experiment="big", max_results=1000, as_frame=False).runs]
        sample = random.Random(1).sample(ids, min(200, len(ids)))
        ours_times, bare_times = [], []
        for run_id in sample:
            start = time.perf_counter()
            loopml.get_run(run_id)
            ours_times.append((time.perf_counter() - start) * 1000)
            statements = captured(engine, lambda run_id=run_id: loopml.get_run(run_id))
            start = time.perf_counter()
            replay(floor, statements)
            bare_times.append((time.perf_counter() - start) * 1000)
        rows.append(("get_run (median of 200 random runs)", statistics.median(ours_times), statistics.median(bare_times)))
        floor.close()
        engine.dispose()
        print(f"{'workload':<55} {'loopml':>10} {'floor (psycopg)':>16}")
        for label, ours, bare in rows:
            print(f"{label:<55} {ours:>7.2f} ms {bare:>13.2f} ms")
        print(f"machine: {machine()}; PostgreSQL at {base}")
        argv = [this_python(ROOT), "benchmarks/tracking_postgres.py", "--url", args.url, "--runs", str(args.runs)]
        print(f"Reproduce:\ncd {shlex.quote(str(ROOT))} && {shlex.join([*argv, '--reps', str(args.reps)])}")
    finally:
        if not args.keep:
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
