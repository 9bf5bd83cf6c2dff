"""Feature store, online half: loopml vs Feast on the same generated data, both on the real Redis (issue 13).

Three parts, each tool in a child process of its own (so peak RSS is that tool's alone):

- materialization of ``--views`` views of ``--rows`` rows each (``--features`` float features, ``--keys``
  customers) into Redis: time and peak memory. loopml streams each view in batches; Feast
  (``FeatureStore.materialize``) loads the range. The floor is the bare work: DuckDB's ``arg_max`` per key
  and a redis-py pipeline of ``HSET`` s of orjson payloads.
- online reads in process of 1 and 100 entities x ``--features`` features (one view): p50/p99 over
  ``--reads`` calls; loopml ``get_online_features``, Feast ``get_online_features(...).to_dict()``, the floor
  a redis-py pipeline of ``HMGET`` s plus orjson decoding. Then again with 50 views applied (1 vs 50 views).
- loopml over REST: ``POST /v1/models/bench/versions/1/predict`` with ``{"entities": [...]}`` on the serving
  app (uvicorn on 127.0.0.1, a linear model over the same features), 1 and 100 entities.

Redis databases: loopml ``--redis-db`` (default 14), Feast ``--redis-db + 1``; both flushed before and after.

    .venv/bin/python benchmarks/features_online.py --quick     # 3 views x 100,000 rows, 10,000 keys
    .venv/bin/python benchmarks/features_online.py             # 3 views x 1,000,000 rows, 100,000 keys
    .venv/bin/python benchmarks/features_online.py --no-peer   # loopml and the floor only
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import ensure_venv, machine, this_python  # noqa: E402

START = "2024-01-01"
SPAN_DAYS = 30
MANY_VIEWS = 50


def say(message: str) -> None:
    print(f"[features-online] {message}", file=sys.stderr, flush=True)


def generate(workdir: Path, rows: int, views: int, keys: int, features: int, seed: int) -> list[str]:
    """One parquet file per view: customer_id, event_time and ``features`` float columns ``f0..``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    start = int(np.datetime64(START, "us").astype(np.int64))
    span = SPAN_DAYS * 86_400 * 1_000_000
    paths = []
    for v in range(views):
        path = workdir / f"view_{v}.parquet"
        writer = None
        done = 0
        while done < rows:
            n = min(1_000_000, rows - done)
            columns = {
                "customer_id": rng.integers(0, keys, n, dtype=np.int64),
                "event_time": pa.array(start + rng.integers(0, span, n), type=pa.timestamp("us", "UTC")),
            }
            columns.update({f"f{i}": rng.random(n) for i in range(features)})
            table = pa.table(columns)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=500_000)
            done += n
        assert writer is not None
        writer.close()
        paths.append(str(path))
    return paths


def percentiles(samples: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.array(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def timed(call: Any, reads: int) -> dict[str, float]:
    for _ in range(min(50, reads)):  # warm up: connections, caches, first-call imports
        call()
    samples = []
    for _ in range(reads):
        begin = time.perf_counter()
        call()
        samples.append(time.perf_counter() - begin)
    return percentiles(samples)


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _flush(db: int) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    client.flushdb()
    client.close()


# -- loopml --------------------------------------------------------------------------------------------


def child_loopml(config: dict[str, Any]) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    import loopml
    from loopml.features.online.redis import RedisOnlineStore
    from loopml.store import open_store

    workdir = Path(config["workdir"])
    nfeat, keys, reads = config["features"], config["keys"], config["reads"]
    _flush(config["redis_db"])
    store = open_store(f"sqlite:///{workdir / 'loopml.db'}", artifacts_url=str(workdir / "artifacts"))
    online = RedisOnlineStore(f"redis://127.0.0.1:6379/{config['redis_db']}", prefix="bench")
    customer = loopml.Entity("customer", ["customer_id"])
    schema = {f"f{i}": "float64" for i in range(nfeat)}

    def view(name: str, path: str) -> Any:
        return loopml.FeatureView(name, [customer], loopml.FileSource(path), ttl="3650d", schema=schema)

    views = [view(f"view_{v}", p) for v, p in enumerate(config["views"])]
    service = loopml.FeatureService("bench", [views[0]])
    loopml.apply_features([*views, service], client=store, actor="bench")
    start = datetime.fromisoformat(START).replace(tzinfo=UTC)
    begin = time.perf_counter()
    loopml.materialize(start, start + timedelta(days=SPAN_DAYS + 1), store=store, online=online)
    out: dict[str, Any] = {"materialize_s": time.perf_counter() - begin, "materialize_peak_mb": _peak_mb()}
    refs = [f"view_0:f{i}" for i in range(nfeat)]
    one = [{"customer_id": 7}]
    many = [{"customer_id": k} for k in range(0, keys, max(1, keys // 100))][:100]

    def reads_of() -> dict[str, Any]:
        return {
            "1": timed(lambda: loopml.get_online_features(one, refs, store=store, online=online), reads),
            "100": timed(lambda: loopml.get_online_features(many, refs, store=store, online=online), reads // 4),
        }

    out["reads"] = reads_of()
    got = loopml.get_online_features(many, refs, store=store, online=online)
    out["found_100"] = 100 * nfeat - got.missing - got.stale
    extra = [view(f"extra_{v}", config["views"][0]) for v in range(MANY_VIEWS - len(views))]
    loopml.apply_features(extra, client=store, actor="bench")
    out["reads_50_views"] = reads_of()
    out["rest"] = rest(store, online, one, many, config)
    online.close()
    store.close()
    _flush(config["redis_db"])
    return out


def rest(store: Any, online: Any, one: list[Any], many: list[Any], config: dict[str, Any]) -> dict[str, Any]:
    """``loopml serve``'s REST route, by entity key, on a real socket."""
    import os
    import socket
    import threading

    import httpx
    import numpy as np
    import pandas as pd
    import uvicorn
    from sklearn.linear_model import LinearRegression

    from loopml.registry.client import RegistryClient
    from loopml.serving.app import create_serving_app
    from loopml.tracking.client import TrackingClient
    from loopml.tracking.runs import ActiveRun

    os.environ["LOOPML_ONLINE_STORE_URL"] = f"redis://127.0.0.1:6379/{config['redis_db']}"
    os.environ["LOOPML_ONLINE_STORE_PREFIX"] = "bench"
    nfeat = config["features"]
    X = pd.DataFrame(np.random.default_rng(0).random((50, nfeat)), columns=[f"f{i}" for i in range(nfeat)])
    model = LinearRegression().fit(X, X.sum(axis=1))
    tracking = TrackingClient(store)
    run = ActiveRun(tracking, tracking.create_run("bench", capture=False))
    info = run.log_model(model, "model", input_example=X.head(2))
    RegistryClient(tracking).register_model(info.uri, "bench", tags={"loopml.feature_service": "bench"})
    app = create_serving_app(store, log_predictions=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    url = "/v1/models/bench/versions/1/predict"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.post(url, json={"entities": many}).status_code == 200

            def post(rows: list[Any]) -> None:
                http.post(url, json={"entities": rows}).raise_for_status()

            return {
                "1": timed(lambda: post(one), config["reads"] // 2),
                "100": timed(lambda: post(many), config["reads"] // 4),
            }
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- the floor -----------------------------------------------------------------------------------------


def child_floor(config: dict[str, Any]) -> dict[str, Any]:
    import duckdb
    import orjson
    import redis

    db = config["redis_db"]
    _flush(db)
    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    nfeat = config["features"]
    feats = [f"f{i}" for i in range(nfeat)]
    begin = time.perf_counter()
    con = duckdb.connect()
    for v, path in enumerate(config["views"]):
        cols = ", ".join(f"arg_max({f}, event_time) AS {f}" for f in feats)
        reader = con.sql(
            f"SELECT customer_id, max(event_time) AS t, {cols} FROM read_parquet('{path}') GROUP BY customer_id"
        ).fetch_record_batch(50_000)
        for batch in reader:
            pipe = client.pipeline(transaction=False)
            for row in batch.to_pylist():
                payload = orjson.dumps({f: row[f] for f in feats})
                pipe.hset(f"floor:{row['customer_id']}", mapping={f"v:view_{v}": payload, f"t:view_{v}": 0})
            pipe.execute()
    out: dict[str, Any] = {"materialize_s": time.perf_counter() - begin, "materialize_peak_mb": _peak_mb()}
    keys = config["keys"]
    many = list(range(0, keys, max(1, keys // 100)))[:100]

    def read(ids: list[int]) -> None:
        pipe = client.pipeline(transaction=False)
        for k in ids:
            pipe.hmget(f"floor:{k}", ["v:view_0", "t:view_0"])
        for payload, _ in pipe.execute():
            orjson.loads(payload)

    out["reads"] = {
        "1": timed(lambda: read([7]), config["reads"]),
        "100": timed(lambda: read(many), config["reads"] // 4),
    }
    client.close()
    _flush(db)
    return out


# -- Feast ---------------------------------------------------------------------------------------------

FEAST_CHILD = r"""
import json, sys, time, resource, warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np, redis
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

config = json.loads(sys.argv[1])
db = config["redis_db"] + 1
redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
repo = Path(config["workdir"]) / "feast_repo"
repo.mkdir(exist_ok=True)
(repo / "feature_store.yaml").write_text(
    "project: bench\nregistry: %s\nprovider: local\nonline_store:\n  type: redis\n"
    "  connection_string: 127.0.0.1:6379,db=%d\noffline_store:\n  type: file\n"
    "entity_key_serialization_version: 3\n" % (repo / "registry.db", db)
)
store = FeatureStore(repo_path=str(repo))
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
nfeat = config["features"]
def view(name, path):
    return FeatureView(name=name, entities=[customer], ttl=timedelta(days=3650),
                       source=FileSource(path=path, timestamp_field="event_time"),
                       schema=[Field(name=f"f{i}", dtype=Float64) for i in range(nfeat)])
views = [view(f"view_{v}", p) for v, p in enumerate(config["views"])]
store.apply([customer, *views])
start = datetime(2024, 1, 1, tzinfo=timezone.utc)
begin = time.perf_counter()
store.materialize(start, start + timedelta(days=config["span_days"] + 1))
out = {"materialize_s": time.perf_counter() - begin,
       "materialize_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
refs = [f"view_0:f{i}" for i in range(nfeat)]
keys, reads = config["keys"], config["reads"]
one = [{"customer_id": 7}]
many = [{"customer_id": k} for k in range(0, keys, max(1, keys // 100))][:100]
def timed(call, n):
    for _ in range(min(50, n)):
        call()
    samples = []
    for _ in range(n):
        b = time.perf_counter(); call(); samples.append(time.perf_counter() - b)
    ms = np.array(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
def reads_of():
    return {"1": timed(lambda: store.get_online_features(features=refs, entity_rows=one).to_dict(), reads),
            "100": timed(lambda: store.get_online_features(features=refs, entity_rows=many).to_dict(), reads // 4)}
out["reads"] = reads_of()
got = store.get_online_features(features=refs, entity_rows=many).to_dict()
out["found_100"] = sum(v is not None for f in refs for v in got[f.split(":")[1]])
store.apply([view(f"extra_{v}", config["views"][0]) for v in range(50 - len(views))])
out["reads_50_views"] = reads_of()
redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
print(json.dumps(out))
"""


def run_child(python: str, args: list[str], timeout: int) -> dict[str, Any]:
    try:
        done = subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": [f"did not finish within {timeout} s"]}
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-3:] or ["failed"]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- report --------------------------------------------------------------------------------------------


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(f"\nFeature store, online: {args.views} views x {args.rows:,} rows, {args.keys:,} keys, "
          f"{args.features} features, Redis on 127.0.0.1  [{machine()}]")  # fmt: skip
    print(f"{'materialize':14} {'seconds':>9} {'peak MB':>9}")
    for name in ("loopml", "floor", "feast"):
        r = results.get(name, {})
        if "error" in r:
            print(f"{name:14} failed: {r['error']}")
        elif r:
            print(f"{name:14} {r['materialize_s']:9.2f} {r['materialize_peak_mb']:9.0f}")
    print(f"\n{'online reads':22} {'1 p50':>8} {'1 p99':>8} {'100 p50':>8} {'100 p99':>8}   (ms)")
    rows = [
        ("loopml", "loopml", "reads"),
        ("loopml, 50 views", "loopml", "reads_50_views"),
        ("loopml REST", "loopml", "rest"),
        ("floor (redis-py)", "floor", "reads"),
        ("feast", "feast", "reads"),
        ("feast, 50 views", "feast", "reads_50_views"),
    ]
    for label, name, part in rows:
        r = results.get(name, {}).get(part)
        if r:
            print(f"{label:22} {r['1']['p50_ms']:8.3f} {r['1']['p99_ms']:8.3f} {r['100']['p50_ms']:8.3f} "
                  f"{r['100']['p99_ms']:8.3f}")  # fmt: skip
    ours, feast, floor = results.get("loopml", {}), results.get("feast", {}), results.get("floor", {})
    if "reads" in ours and "reads" in floor:
        print(
            f"loopml / floor, 100 entities p50: {ours['reads']['100']['p50_ms'] / floor['reads']['100']['p50_ms']:.2f}x"
        )
    if "reads" in ours and "reads" in feast:
        print(
            f"Feast / loopml materialization time: {feast['materialize_s'] / ours['materialize_s']:.1f}x (target >= 10x); "
            f"peak memory loopml / Feast: {ours['materialize_peak_mb'] / feast['materialize_peak_mb']:.2f}"
        )
        print(
            f"Feast / loopml online p50: 1 entity {feast['reads']['1']['p50_ms'] / ours['reads']['1']['p50_ms']:.1f}x "
            f"(target >= 1x, loopml p99 <= 1 ms), 100 entities "
            f"{feast['reads']['100']['p50_ms'] / ours['reads']['100']['p50_ms']:.1f}x (target >= 3x)"
        )
        print(f"found 100 x {args.features}: loopml {ours.get('found_100')}, Feast {feast.get('found_100')}")
    flags = " ".join(a for a in sys.argv[1:] if not a.startswith("--json"))
    print(f"reproduce: {this_python(ROOT)} benchmarks/features_online.py {flags}".rstrip())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        config = json.loads(sys.argv[3])
        print(json.dumps({"loopml": child_loopml, "floor": child_floor}[sys.argv[2]](config)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per feature view")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--reads", type=int, default=2000, help="timed calls for 1 entity (a quarter for 100)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows per view, 10,000 keys, 1,000 reads")
    parser.add_argument("--no-peer", action="store_true", help="skip Feast")
    parser.add_argument("--peer-venv", default=str(Path(tempfile.gettempdir()) / "peer-feast-online"))
    parser.add_argument("--redis-db", type=int, default=14, help="loopml's Redis database (Feast gets the next)")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.keys, args.reads = 100_000, 10_000, 1000
    workdir = Path(tempfile.mkdtemp(prefix="loopml-bench-features-online-"))
    try:
        say(f"generating {args.views} x {args.rows:,} rows of {args.features} features in {workdir}")
        paths = generate(workdir, args.rows, args.views, args.keys, args.features, args.seed)
        config = {"views": paths, "workdir": str(workdir), "features": args.features, "keys": args.keys,
                  "reads": args.reads, "redis_db": args.redis_db, "span_days": SPAN_DAYS}  # fmt: skip
        text = json.dumps(config)
        results: dict[str, Any] = {}
        for name in ("loopml", "floor"):
            say(f"running {name}")
            results[name] = run_child(sys.executable, [__file__, "--child", name, text], args.timeout)
        if not args.no_peer:
            python = ensure_venv(Path(args.peer_venv), ["feast[redis]"], say)
            script = workdir / "feast_child.py"
            script.write_text(FEAST_CHILD)
            say("running feast")
            results["feast"] = run_child(str(python), [str(script), text], args.timeout)
        report(args, results)
        if args.json:
            Path(args.json).write_text(json.dumps({"results": results, "args": vars(args)}, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
