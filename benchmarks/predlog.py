"""Prediction-log benchmark (issue 14): the parquet sink against the SQL sink, and what logging costs a request.

Three workloads, each printed with the floor (the bare library doing the same work) beside it:

1. **Writer rate**: logged predictions per second through ``ServingStore.log_predictions`` (what the
   service's background writer calls), in the batches each sink asks for (SQL 1,000, parquet 5,000 with
   the default queue), for ``--rows`` logged requests of 100-row bodies (a prediction is a row), cycling
   through ``VARIED_BODIES`` different ones. Floor: ``pyarrow.parquet.write_table`` of the same records
   already in Arrow, and one ``executemany`` of the same rows into a bare SQLite table.
2. **Window read**: reading ``--read-rows`` logged predictions of one model back, as Arrow (the parquet
   sink's scan) and as ``PredictionRecord`` objects through ``read_predictions`` (what monitoring calls),
   for both sinks. Floor: ``pyarrow.dataset`` over the same files.
3. **Logging cost** (``--wrk``): ``loopml serve`` (one worker) under wrk, 100-row batches, c=8, with
   ``--no-log``, the SQL log and ``--log-sink parquet``, cycling through the same different bodies:
   requests/s and p99, and the cost against ``--no-log``.
   Targets: <= 10% of throughput and <= 1.5x the p99 for either sink. With ``--rounds N`` it also prints each
   round's cost against that round's own ``--no-log`` cell, and their median: on a shared 2-core VM the
   machine's speed drifts by more than the cost being measured between cells a minute apart. Each cell
   also counts the CPU time per request of the serving process and of its log-writer process, and
   ``--other-tree DIR`` runs both logging configurations from another version's ``loopml`` (a
   ``git worktree`` of an earlier commit) in the same rounds. ``--codecs`` only prints what each codec
   costs on the logged bodies.

Targets of the writer and the read: >= 200,000 logged predictions/s, 1,000,000 rows read in <= 1 s.

Run:  .venv/bin/python benchmarks/predlog.py --rows 200000 --read-rows 1000000 --wrk --duration 10
      (add --quick for a smoke test)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine

ROOT = Path(__file__).resolve().parent.parent
START = 1_767_225_600_000


def log(message: str) -> None:
    print(f"[predlog] {message}", file=sys.stderr, flush=True)


#: Different request bodies the writer and wrk cycle through. Real traffic never repeats a body, and a
#: repeated one flatters the parquet sink: its dictionary encoding stores a repeated body once and
#: compresses nothing more (70 to 83 µs of the writer's CPU a request, against 143 to 159 µs for
#: different bodies, measured alone).
VARIED_BODIES = 128
WRK_VARIED = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local requests = {}
local turn = 0
init = function(args)
  for line in io.lines(os.getenv("BODY_FILE")) do
    requests[#requests + 1] = wrk.format(nil, nil, nil, line)
  end
end
request = function()
  turn = turn % #requests + 1
  return requests[turn]
end
"""


def bodies_100_rows(count: int = VARIED_BODIES) -> list[str]:
    """``count`` different 100-row request bodies: random samples of the breast-cancer rows, as records."""
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    return [
        json.dumps({"records": X.sample(100, random_state=seed).to_dict(orient="records")}) for seed in range(count)
    ]


def records(n: int, bodies: list[str], model: str = "bench") -> list[Any]:
    """``n`` logged predictions whose bodies cycle through ``bodies``."""
    from loopml.entities.serving import PredictionRecord

    outputs = json.dumps([0, 1] * 50)
    return [
        PredictionRecord(f"r{i}", START + i, model, 1, "main", bodies[i % len(bodies)], outputs, 1.5, 200)
        for i in range(n)
    ]


def open_store(folder: Path, sink: str) -> Any:
    os.environ["LOOPML_PREDICTION_LOG"] = sink
    from loopml.store import open_store as opener

    store = opener(f"sqlite:///{folder / 'loopml.db'}", artifacts_url=str(folder / "artifacts"))
    return store


def write_rate(store: Any, batch: list[Any], total: int, batch_size: int) -> float:
    start = time.perf_counter()
    written = 0
    while written < total:
        chunk = batch[: min(batch_size, total - written)]
        # fresh ids per chunk, as a service's would be (the SQL sink checks them against the log)
        from dataclasses import replace

        store.serving.log_predictions([replace(r, request_id=f"w{written + i}") for i, r in enumerate(chunk)])
        written += len(chunk)
    return total / (time.perf_counter() - start)


def floor_write(batch: list[Any], folder: Path, total: int, batch_size: int) -> dict[str, float]:
    import pyarrow.parquet as pq

    from loopml.store.predictions.parquet import records_table

    tables = records_table(batch[:batch_size])
    start = time.perf_counter()
    for i in range(0, total, batch_size):
        pq.write_table(tables, folder / f"floor-{i}.parquet", compression="zstd")
    parquet = total / (time.perf_counter() - start)
    conn = sqlite3.connect(folder / "floor.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE p (request_id, time, model, version, role, inputs, outputs, latency_ms, status)")
    rows = [(r.request_id, r.time, r.model, r.version, r.role, r.inputs, r.outputs, r.latency_ms, r.status)
            for r in batch[:1000]]  # fmt: skip
    start = time.perf_counter()
    for _ in range(0, total, 1000):
        with conn:
            conn.executemany("INSERT INTO p VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    sql = total / (time.perf_counter() - start)
    conn.close()
    return {"parquet": parquet, "sql": sql}


def fill_for_read(store: Any, sink: str, n: int) -> None:
    """``n`` small logged predictions of model "read" (a short body: the read measures rows, not bytes)."""
    from loopml.store.predictions.parquet import records_table

    step = 100_000
    for first in range(0, n, step):
        chunk = records(min(step, n - first), ['{"inputs": {"x": 1}}'], model="read")
        chunk = [type(r)(f"q{first + i}", r.time + first, *list(_fields(r))[2:]) for i, r in enumerate(chunk)]
        if sink == "parquet":
            store.serving._sink.write(records_table(chunk))  # the sink's own write: no id checks on the fill
        else:
            store.serving.log_predictions(chunk)


def _fields(record: Any) -> tuple[Any, ...]:
    return (record.request_id, record.time, record.model, record.version, record.role, record.inputs,
            record.outputs, record.latency_ms, record.status)  # fmt: skip


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def read_figures(store: Any, sink: str, n: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    if sink == "parquet":
        import pyarrow.dataset as ds

        sink_obj = store.serving._sink
        seconds, table = timed(lambda: sink_obj.read_table("read", max_results=1_000_000))
        assert table.num_rows == min(n, 1_000_000)
        figures["arrow_s"] = seconds
        files = sink_obj.files("read")
        seconds, table = timed(lambda: ds.dataset(files, format="parquet").to_table())
        figures["floor_s"] = seconds
    seconds, found = timed(lambda: store.serving.read_predictions("read", max_results=1_000_000))
    assert len(found) == min(n, 1_000_000)
    figures["records_s"] = seconds
    return figures


def process_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of process ``pid`` and of all its descendants, from ``/proc`` (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone since the listing
            continue
        parents[int(entry)] = int(fields[1])
        seconds[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    family, frontier = set(), [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        family.update(children)
        frontier = children
    return seconds.get(pid, 0.0), sum(seconds[child] for child in family)


def wrk_cost(
    duration: float, work: Path, rounds: int = 1, other_tree: Path | None = None
) -> dict[str, dict[str, float]]:
    """Each server configuration under wrk, ``rounds`` times in turn; the median round of each (by req/s).

    The three servers start once and stay up; the cells run one after another, each configuration once per
    round (in reverse order every other round), with the log's queue drained between cells. The machine's
    speed drifts by more than the cost being measured (a 2-core VM whose host is shared) over minutes, so
    short cells close together, paired within their round, say more than long cells far apart: besides the
    median cells this returns each round's cost against its own ``--no-log`` cell, and the pooled cost
    (all requests of a configuration against all of ``--no-log``'s, over the same rounds). Each cell also
    counts the CPU time the serving process and its children (the log's writer process) spent per request,
    its queue drained: a figure the host's drift moves less than throughput. With ``other_tree`` (a folder
    holding another version's ``loopml`` package, e.g. a ``git worktree`` of an earlier commit) both logging
    configurations also run from that code, in the same rounds: an A/B of two versions on one machine.
    """
    import serving as bench  # benchmarks/serving.py: the same model, bodies and wrk driver

    model, X = bench.train()
    varied = work / "varied.jsonl"  # one body a line (json.dumps escapes newlines), cycled by WRK_VARIED
    varied.write_text("\n".join(bodies_100_rows()) + "\n")
    script = work / "varied.lua"
    script.write_text(WRK_VARIED)
    home = work / "serve-home"
    bench.setup_loopml(home, model, X)
    configurations: list[tuple[str, tuple[str, ...], Path | None]] = [
        ("--no-log", ("--no-log",), None),
        ("log, sql sink", (), None),
        ("log, parquet sink", ("--log-sink", "parquet"), None),
    ]
    if other_tree is not None:
        configurations += [(f"{label} ({other_tree.name})", args, other_tree) for label, args, _ in configurations[1:]]
    servers: dict[str, tuple[Any, str]] = {}
    runs: dict[str, list[dict[str, float]]] = {}
    try:
        for label, args, tree in configurations:
            port = bench.free_port()
            previous = os.environ.pop("PYTHONPATH", None)
            if tree is not None:  # the server, and the writer process it spawns, import that tree's loopml
                os.environ["PYTHONPATH"] = str(tree.resolve())
            try:  # run from the tree: ``python -m`` puts its folder first on the path, ahead of PYTHONPATH
                process = bench.start_loopml(
                    home, port, args=("-m", f"{bench.MODEL}@champion", *args), cwd=(tree or ROOT).resolve()
                )
            finally:
                os.environ.pop("PYTHONPATH", None)
                if previous is not None:
                    os.environ["PYTHONPATH"] = previous
            servers[label] = (process, f"http://127.0.0.1:{port}")
            bench.wrk(_predict_url(servers[label][1]), varied, script, 8, min(2.0, duration))
            _drained(servers[label][1])
        for turn in range(rounds):
            for label, *_ in configurations if turn % 2 == 0 else configurations[::-1]:  # neither end always first
                os.sync()  # what earlier cells wrote is on disk before this one
                process, url = servers[label]
                before = bench.prediction_log_figures(url)
                cpu_before = process_cpu(process.pid)
                cell = bench.wrk(_predict_url(url), varied, script, 8, duration)
                after = _drained(url)
                cpu_after = process_cpu(process.pid)
                cell.update({name: after[name] - before[name] for name in after if name.endswith("_total")})
                answered = max(1.0, after["requests"] - before["requests"])
                cell["serving_us"] = (cpu_after[0] - cpu_before[0]) / answered * 1e6
                cell["children_us"] = (cpu_after[1] - cpu_before[1]) / answered * 1e6
                runs.setdefault(label, []).append(cell)
                log(f"round {turn + 1}/{rounds} {label}: {cell['rps']:.0f} req/s, p99 {cell['p99']:.1f} ms")
    finally:
        for process, _ in servers.values():
            bench.stop(process)
    medians = {label: sorted(cells, key=lambda c: c["rps"])[len(cells) // 2] for label, cells in runs.items()}
    base = runs["--no-log"]
    for label, cells in runs.items():
        if label != "--no-log":
            paired = sorted(1 - cell["rps"] / own["rps"] for cell, own in zip(cells, base, strict=True))
            pooled = 1 - sum(cell["rps"] for cell in cells) / sum(own["rps"] for own in base)
            p99_ratio = statistics.median(cell["p99"] for cell in cells) / statistics.median(own["p99"] for own in base)
            medians[label] = {**medians[label], "paired_costs": paired, "pooled_cost": pooled, "p99_ratio": p99_ratio}
    for label, cells in runs.items():
        for figure in ("serving_us", "children_us"):
            medians[label] = {**medians[label], f"median_{figure}": statistics.median(c[figure] for c in cells)}
    return medians


def _predict_url(server: str) -> str:
    import serving as bench

    return f"{server}/v1/models/{bench.MODEL}/predict"


def _drained(server: str) -> dict[str, float]:
    """The server's log figures once its queue is empty and its writer has had time to store the last batch."""
    import serving as bench

    for _ in range(200):
        figures = bench.prediction_log_figures(server)
        depth = figures["prediction_log_queue_depth"]
        if not depth or math.isnan(depth):  # empty, or no such gauge: nothing to wait for
            break
        time.sleep(0.05)
    time.sleep(0.5)  # the batch in flight: taken off the queue, still being written
    return bench.prediction_log_figures(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=10_000, help="records (100-row requests) through the writer, per sink"
    )
    parser.add_argument("--read-rows", type=int, default=1_000_000, help="rows of the window read")
    parser.add_argument("--wrk", action="store_true", help="also measure the logging cost with wrk")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk cell")
    parser.add_argument("--rounds", type=int, default=1, help="wrk: rounds of every configuration (medians)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 20,000 rows, 100,000 read, 3 s cells")
    parser.add_argument(
        "--other-tree",
        type=Path,
        metavar="DIR",
        help="wrk: also run both logging configurations from the loopml package in DIR (an A/B of two versions)",
    )
    parser.add_argument(
        "--codecs", action="store_true", help="only: what each codec costs on the logged bodies, as text and as floats"
    )
    args = parser.parse_args()
    if args.codecs:
        print_codec_figures(bodies_100_rows())
        return
    if args.quick:
        args.rows, args.read_rows, args.duration = 2_000, 100_000, 3.0
    batch = records(min(args.rows, 5_000), bodies_100_rows())
    results: dict[str, Any] = {"machine": machine(), "rows": args.rows, "read_rows": args.read_rows}
    with tempfile.TemporaryDirectory(prefix="loopml-predlog-") as tmp:
        work = Path(tmp)
        for sink, batch_size in (("sql", 1_000), ("parquet", 5_000)):
            folder = work / sink
            folder.mkdir()
            store = open_store(folder, sink)
            log(f"{sink}: writing {args.rows:,} records in batches of {batch_size:,}")
            results[f"write_{sink}"] = write_rate(store, batch, args.rows, batch_size)
            log(f"{sink}: filling {args.read_rows:,} rows to read")
            fill_for_read(store, sink, args.read_rows)
            results[f"read_{sink}"] = read_figures(store, sink, args.read_rows)
            store.close()
        (work / "floor").mkdir()
        results["write_floor"] = floor_write(batch, work / "floor", args.rows, 5_000)
        if args.wrk:
            results["wrk"] = wrk_cost(args.duration, work, args.rounds, args.other_tree)
    report(results, args)


def codec_figures(bodies: list[str]) -> list[tuple[str, float, float]]:
    """``(what, µs a body, KB a body)`` for each codec on ``bodies``, as JSON text and as float64 matrices.

    The matrices are what the request path parses each body into (100 rows by 30 columns): the size a log
    of the values the model was given, instead of the body text, would have to move and store.
    """
    import numpy as np
    import pyarrow as pa

    texts = [body.encode() for body in bodies]
    matrices = []
    for body in bodies:
        rows = json.loads(body)["records"]
        matrices.append(np.array([list(row.values()) for row in rows], dtype=np.float64).tobytes())
    codecs = (("zstd 1", pa.Codec("zstd", compression_level=1)), ("zstd -5", pa.Codec("zstd", compression_level=-5)),
              ("lz4", pa.Codec("lz4")))  # fmt: skip
    figures: list[tuple[str, float, float]] = []
    for what, data in (("text", texts), ("float64 matrix", matrices)):
        figures.append((f"{what}, as is", 0.0, statistics.mean(map(len, data)) / 1024))
        for name, codec in codecs:
            best = min(
                timed(lambda c=codec, d=data: [c.compress(item, asbytes=True) for item in d])[0] for _ in range(5)
            )
            size = statistics.mean(len(codec.compress(item, asbytes=True)) for item in data)
            figures.append((f"{what}, {name}", best / len(data) * 1e6, size / 1024))
    return figures


def print_codec_figures(bodies: list[str]) -> None:
    print(f"codecs on {len(bodies)} different 100-row bodies (best of 5; µs and KB a body):")
    for what, micros, kilobytes in codec_figures(bodies):
        print(f"  {what:<24} {micros:>7.1f} µs {kilobytes:>7.1f} KB")
    print("reproduce: .venv/bin/python benchmarks/predlog.py --codecs")


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"machine: {results['machine']}")
    print(f"writer: {results['rows']:,} logged requests of 100 rows each per sink; logged predictions (rows)/s,"
          " requests/s in brackets:")  # fmt: skip
    floor = results["write_floor"]
    for sink, floor_name in (("sql", "sqlite3 executemany"), ("parquet", "pq.write_table")):
        rate = results[f"write_{sink}"]
        print(f"  {sink + ' sink':<13} {rate * 100:>12,.0f} ({rate:>7,.0f})   floor ({floor_name:<19}) "
              f"{floor[sink] * 100:>12,.0f} ({floor[sink]:>7,.0f})" + ("   target >= 200,000" if sink == "parquet" else ""))  # fmt: skip
    n = results["read_rows"]
    print(f"window read of {min(n, 1_000_000):,} rows (seconds):")
    print(f"  sql sink      read_predictions {results['read_sql']['records_s']:.2f}")
    rp = results["read_parquet"]
    print(f"  parquet sink  read_predictions {rp['records_s']:.2f}   Arrow scan {rp['arrow_s']:.2f}"
          f"   floor (pyarrow.dataset) {rp['floor_s']:.2f}   target <= 1 s")  # fmt: skip
    if "wrk" in results:
        cells = results["wrk"]
        base = cells["--no-log"]
        print(f"logging cost: loopml serve, 1 worker, 100-row batches, c=8, {args.duration:g} s (wrk), "
              f"median of {args.rounds}:")  # fmt: skip
        for label, cell in cells.items():
            cost = 1 - cell["rps"] / base["rps"]
            ratio = cell["p99"] / base["p99"]
            print(f"  {label:<28} {cell['rps']:>8,.0f} req/s  p99 {cell['p99']:>6.1f} ms"
                  + ("" if label == "--no-log" else f"   cost {cost:+.1%} throughput, p99 x{ratio:.2f}")
                  + f"   logged {cell.get('prediction_log_written_total', float('nan')):,.0f}"
                  + f" dropped {cell.get('prediction_log_dropped_total', float('nan')):,.0f}"
                  + f" errors {cell['errors']:,.0f}")  # fmt: skip
        print("  cost against the same round's --no-log (the median, then every round's, lowest first):")
        for label, cell in cells.items():
            if "paired_costs" in cell:
                paired = cell["paired_costs"]
                every = ", ".join(f"{value:+.1%}" for value in paired)
                print(f"  {label:<28} {statistics.median(paired):+.1%}   ({every})   target <= 10%")
        print("  CPU time per request, the median cell (µs; the serving process, and its log-writer process):")
        for label, cell in cells.items():
            print(
                f"  {label:<28} serving {cell['median_serving_us']:>6.0f}   writer {cell['median_children_us']:>6.0f}"
            )
        print("  pooled cost (every round's requests against --no-log's), and the median p99 against --no-log's:")
        for label, cell in cells.items():
            if "pooled_cost" in cell:
                print(f"  {label:<28} {cell['pooled_cost']:+.1%}   target <= 10%    p99 x{cell['p99_ratio']:.2f}"
                      "   target <= 1.5x")  # fmt: skip
    command = " ".join(sys.argv[1:])
    print(f"reproduce: .venv/bin/python benchmarks/predlog.py {command}".rstrip())


if __name__ == "__main__":
    main()
