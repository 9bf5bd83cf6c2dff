"""The chart data endpoint's server work for a 1,000,000-point metric (issue 12): median of reps, in process.

Times ``GET /runs/<id>/metrics/<key>/series`` through the app (Starlette's test client: routing, the
store's bucketing, the JSON) for the whole run, zoomed step ranges and the time axis, while the run runs
(computed from the points) and after it ended (from the roll-ups its first chart builds, checked to draw
the same series), beside the floor: the bare GROUP BY over the points on the same SQLite file. Target:
50 ms or less.

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

    from loopml.entities.tracking import Metric, RunStatus
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
        narrow = {"from": args.points // 2, "to": args.points // 2 + args.points // 100}
        by_time = {"x": "time"}
        requests = [
            ("whole run", {}),
            ("a zoomed tenth", tenth),
            ("a zoomed hundredth", narrow),
            ("time axis", by_time),
        ]
        whole = client.get(url).json()
        assert whole["total"] == args.points and whole["shown"] <= 1000, whole["shown"]
        running = {name: median_ms(lambda q=q: client.get(url, params=q).raise_for_status(), args.reps)
                   for name, q in requests}  # fmt: skip
        store.tracking.end_run(run.run_id, RunStatus.FINISHED, args.points)
        started = time.perf_counter()
        built = client.get(url).json()  # the first chart of the ended run builds its roll-ups
        build_ms = (time.perf_counter() - started) * 1000
        assert built["data"] == whole["data"], "roll-ups must draw the same series as the points"
        ended = {name: median_ms(lambda q=q: client.get(url, params=q).raise_for_status(), args.reps)
                 for name, q in requests}  # fmt: skip
        width = (args.points - 1) // 500 + 1
        floor_sql = (
            "SELECT (step - 0) / ? AS b, MIN(step), MAX(step), COUNT(*), SUM(CASE WHEN is_nan THEN 1 ELSE 0 END), "
            "MIN(value), MAX(value), AVG(value) FROM metrics WHERE run_id = ? AND key = 'loss' GROUP BY b ORDER BY b"
        )
        raw = sqlite3.connect(db)
        floor = median_ms(lambda: raw.execute(floor_sql, (width, run.run_id)).fetchall(), args.reps)
        rollup_rows = raw.execute("SELECT count(*) FROM metric_rollups WHERE run_id = ?", (run.run_id,)).fetchone()[0]
        raw.close()
        store.close()
    print(f"{machine()}; {args.points:,} points, median of {args.reps}")
    print(
        "| request (`GET …/series`, 1,000 points asked) | running run: from the points (ms) | ended run: from roll-ups (ms) |"
    )
    print("|---|---|---|")
    for name, query in requests:
        shown = "&".join(f"{k}={v}" for k, v in query.items())
        print(f"| {name} {('`?' + shown + '`') if shown else ''} | {running[name]:.1f} | {ended[name]:.1f} |")
    print(f"| first chart of the ended run (builds {rollup_rows:,} roll-up rows) | — | {build_ms:.0f} |")
    print(f"| floor: the bare GROUP BY over the whole run's points (sqlite3) | {floor:.1f} | — |")


if __name__ == "__main__":
    main()
