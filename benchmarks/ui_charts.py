"""The chart data endpoint's server work for a 1,000,000-point metric (issue 12): median of reps, in process.

Times ``GET /runs/<id>/metrics/<key>/series`` through the app (Starlette's test client: routing, the
store's SQL bucketing, the JSON) for the whole run and for a zoomed tenth, beside the floor: the bare
GROUP BY query the store runs, on the same SQLite file. Target: the whole-run answer in 50 ms or less.

    .venv/bin/python benchmarks/ui_charts.py [--points 1000000] [--reps 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine


def median_ms(work: Callable[[], object], reps: int) -> float:
    work()  # warm: caches, the first connection
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    import math
    import sqlite3

    from fastapi.testclient import TestClient

    from loopml.entities.tracking import Metric
    from loopml.server.app import create_app
    from loopml.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = open_store(f"sqlite:///{db}", artifacts_url=str(Path(tmp) / "artifacts"))
        experiment = store.tracking.create_experiment("bench")
        run = store.tracking.create_run(experiment.experiment_id, name="long", user="bench", start_time=0)
        for start in range(0, args.points, 50_000):
            steps = range(start, min(start + 50_000, args.points))
            chunk = [Metric("loss", math.exp(-s / 1e5) + 0.01 * math.sin(s), s, s) for s in steps]
            store.tracking.log_batch(run.run_id, metrics=chunk)
        client = TestClient(create_app(store))
        url = f"/runs/{run.run_id}/metrics/loss/series"
        tenth = {"from": 0, "to": args.points // 10}
        whole = client.get(url).json()
        assert whole["total"] == args.points and whole["shown"] <= 1000, whole["shown"]
        endpoint = median_ms(lambda: client.get(url).raise_for_status(), args.reps)
        zoomed = median_ms(lambda: client.get(url, params=tenth).raise_for_status(), args.reps)
        width = (args.points - 1) // 500 + 1
        floor_sql = (
            "SELECT (step - 0) / ? AS b, MIN(step), MAX(step), COUNT(*), SUM(CASE WHEN is_nan THEN 1 ELSE 0 END), "
            "MIN(value), MAX(value), AVG(value) FROM metrics WHERE run_id = ? AND key = 'loss' GROUP BY b ORDER BY b"
        )
        raw = sqlite3.connect(db)
        floor = median_ms(lambda: raw.execute(floor_sql, (width, run.run_id)).fetchall(), args.reps)
        raw.close()
        store.close()
    print(f"{machine()}; {args.points:,} points, median of {args.reps}")
    print("| request | ms (median) |")
    print("|---|---|")
    print(f"| `GET …/series` whole run ({whole['shown']} of {args.points:,} points) | {endpoint:.1f} |")
    print(f"| `GET …/series?from=0&to={args.points // 10}` (a zoomed tenth) | {zoomed:.1f} |")
    print(f"| floor: the bare GROUP BY over the whole run (sqlite3) | {floor:.1f} |")


if __name__ == "__main__":
    main()
