"""Authentication flood (security finding 3): valid-request latency on both servers while wrong secrets pour in.

For ``loopml server --auth`` and ``loopml serve --auth`` (one worker each, SQLite, 127.0.0.1 only):

1. unloaded: ``--probes`` sequential valid requests (a viewer token the server has already checked) and as
   many health requests, after a warm-up; p50 and p99 of each. This is the floor.
2. flooded: a separate process sends ``--flood`` (400) requests at concurrency ``--concurrency`` (64), each
   with the real id of the editor token and a fresh wrong secret (so no cache can answer them: the worst
   case), stopping after ``--flood-seconds`` at most. While it runs, the same sequential probes repeat.

The figure is the ratio of flooded to unloaded latency, p50 and p99, printed beside the floor, plus how the
flood was answered (401, 429) and how long it took. Probes and flood share the 2 cores with the server, so
the ratio includes the load generator's CPU; compare the figures of one machine only.

``--source DIR`` runs the servers from another checkout's ``loopml`` package (e.g. the code before the fix,
exported with ``git archive``); the probes and the flood stay the same.

    .venv/bin/python benchmarks/auth_flood.py                 # both servers, ~1 minute
    .venv/bin/python benchmarks/auth_flood.py --quick         # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, this_python

ROOT = Path(__file__).resolve().parent.parent
MODEL = "iris"


def log(message: str) -> None:
    print(f"[auth-flood] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- setup: a store with a deployed model and a token per role ---------------------------------------------


def setup_store(home: Path) -> dict[str, str]:
    os.environ["LOOPML_HOME"] = str(home)
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import loopml
    from loopml.auth.tokens import create_token
    from loopml.config import get_settings
    from loopml.entities.auth import Role
    from loopml.store import open_store

    X, y = load_iris(return_X_y=True, as_frame=True)
    loopml.set_tracking_uri(None)
    with loopml.start_run("bench", experiment="auth-flood", capture=False) as run:
        info = run.log_model(LogisticRegression(max_iter=500).fit(X, y), "model", input_example=X.head())
    version = loopml.register_model(info.uri, MODEL)
    loopml.set_alias(MODEL, "champion", version.version)
    loopml.deploy(MODEL, "champion", reason="benchmark")
    settings = get_settings()
    store = open_store(settings.db_url, artifacts_url=settings.artifacts_url)
    try:
        tokens = {role.value: create_token(store, role.value, role, actor="bench").secret for role in Role}
    finally:
        store.close()
    tokens["row"] = json.dumps(X.head(1).to_dict(orient="records"))
    return tokens


@contextmanager
def running(argv: list[str], env: dict[str, str], ready_url: str, log_path: Path) -> Iterator[None]:
    with log_path.open("wb") as output:
        # cwd: the log's folder, not the checkout, which ``python -m`` would put first on sys.path (--source)
        proc = subprocess.Popen(
            argv, env=env, cwd=log_path.parent, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{argv[3]} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"no answer from {ready_url}:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# -- the flood (its own process, so its CPU is not the probes' event loop) ------------------------------------


async def _flood(config: dict[str, Any]) -> dict[str, Any]:
    import httpx

    token_id = config["token"].split("_")[1]
    statuses: Counter[str] = Counter()
    seconds: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(config["count"]):
        queue.put_nowait(n)
    deadline = time.monotonic() + config["max_seconds"]
    limits = httpx.Limits(max_connections=config["concurrency"], max_keepalive_connections=config["concurrency"])
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                headers = {"Authorization": f"Bearer lml_{token_id}_{secrets.token_urlsafe(32)}"}
                start = time.perf_counter()
                try:
                    answer = await client.request(
                        config["method"], config["url"], headers=headers, content=config["body"]
                    )
                    statuses[str(answer.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                seconds.append(time.perf_counter() - start)

        print("started", flush=True)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(config["concurrency"])))
    return {"statuses": dict(statuses), "seconds": time.perf_counter() - start, "p50_ms": _pct(seconds, 50) * 1e3,
            "p99_ms": _pct(seconds, 99) * 1e3, "sent": len(seconds)}  # fmt: skip


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# -- probes ----------------------------------------------------------------------------------------------------


def probe_round(client: Any, valid: dict[str, Any], health: str, n: int, until: Any = None) -> dict[str, list[float]]:
    """Alternate a valid request and a health request, ``n`` times or, with ``until``, while ``until()`` holds."""
    times: dict[str, list[float]] = {"valid": [], "health": []}
    failures: Counter[int] = Counter()
    while (until() if until is not None else len(times["valid"]) < n) and len(times["valid"]) < 100_000:
        start = time.perf_counter()
        answer = client.request(**valid)
        times["valid"].append(time.perf_counter() - start)
        if answer.status_code != 200:
            failures[answer.status_code] += 1
        start = time.perf_counter()
        answer = client.get(health)
        times["health"].append(time.perf_counter() - start)
        if answer.status_code != 200:
            failures[answer.status_code] += 1
    if failures:
        log(f"  probes not answered 200: {dict(failures)}")
    return times


def measure(name: str, base: str, valid: dict[str, Any], health: str, flood: dict[str, Any], args: Any) -> dict:
    import httpx

    out: dict[str, Any] = {"server": name}
    with httpx.Client(base_url=base, timeout=120) as client:
        probe_round(client, valid, health, 30)  # warm-up: the token is checked once and cached
        log(f"{name}: {args.probes} unloaded probes")
        out["unloaded"] = probe_round(client, valid, health, args.probes)
        config = {**flood, "url": base + flood["path"], "count": args.flood, "concurrency": args.concurrency,
                  "max_seconds": args.flood_seconds}  # fmt: skip
        log(f"{name}: flood of {args.flood} wrong secrets at concurrency {args.concurrency}, probing meanwhile")
        child = subprocess.Popen(
            [sys.executable, __file__, "--flood-child", json.dumps(config)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        child.stdout.readline()  # "started"
        out["flooded"] = probe_round(client, valid, health, 0, until=lambda: child.poll() is None)
        result, _ = child.communicate(timeout=args.flood_seconds + 120)
        out["flood"] = json.loads(result.strip().splitlines()[-1])
    return out


# -- report ------------------------------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nAuthentication flood: {args.flood} wrong secrets at concurrency {args.concurrency} ({machine()})")
    print(f"servers from: {args.source or 'this checkout'}\n")
    print("| server | probe | unloaded p50 / p99 ms (floor) | flooded p50 / p99 ms | ratio p50 / p99 | probes |")
    print("|---|---|---|---|---|---|")
    for result in results:
        for kind in ("valid", "health"):
            before, during = result["unloaded"][kind], result["flooded"][kind]
            b50, b99, d50, d99 = (_pct(v, p) * 1e3 for v, p in ((before, 50), (before, 99), (during, 50), (during, 99)))
            print(f"| {result['server']} | {kind} | {b50:.2f} / {b99:.2f} | {d50:.2f} / {d99:.2f} | "
                  f"{d50 / b50:.2f}\u00d7 / {d99 / b99:.2f}\u00d7 | {len(during)} |")  # fmt: skip
    print("\n| server | flood answered | flood took s | flood answer p50 / p99 ms |")
    print("|---|---|---|---|")
    for result in results:
        flood = result["flood"]
        answered = ", ".join(f"{count} \u00d7 {status}" for status, count in sorted(flood["statuses"].items()))
        print(
            f"| {result['server']} | {answered} | {flood['seconds']:.1f} | {flood['p50_ms']:.0f} / {flood['p99_ms']:.0f} |"
        )
    argv = [this_python(ROOT), "benchmarks/auth_flood.py", *sys.argv[1:]]
    print(f"\nreproduce: {shlex.join(argv)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=300, help="unloaded probes of each kind")
    parser.add_argument("--flood", type=int, default=400, help="wrong-secret requests in the flood")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--flood-seconds", type=float, default=60.0, help="the flood stops after this at most")
    parser.add_argument("--only", choices=("server", "serve"), help="one server only")
    parser.add_argument("--source", help="run the servers from this checkout's loopml package")
    parser.add_argument("--quick", action="store_true", help="smoke test: 50 probes, a flood of 100")
    parser.add_argument("--flood-child", help=argparse.SUPPRESS)
    parser.add_argument("--setup-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_child:
        print(json.dumps(setup_store(Path(args.setup_child))), flush=True)
        return
    if args.flood_child:
        print(json.dumps(asyncio.run(_flood(json.loads(args.flood_child)))), flush=True)
        return
    if args.quick:
        args.probes, args.flood = 50, 100
    with tempfile.TemporaryDirectory(prefix="loopml-auth-flood-") as work:
        home = Path(work) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        env["LOOPML_HOME"] = str(home)
        if args.source:
            env["PYTHONPATH"] = str(Path(args.source).resolve())
        log("setting up a store: one model deployed, a token per role")
        # in a child with the servers' environment: the store's schema is the one the servers' loopml writes
        setup = subprocess.run(
            [sys.executable, __file__, "--setup-child", str(home)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        tokens = json.loads(setup.stdout.strip().splitlines()[-1])
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        python = sys.executable
        results = []
        if args.only in (None, "server"):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            argv = [python, "-m", "loopml.cli.main", "server", "--auth", "--port", str(port), "--log-level", "warning"]
            with running(argv, env, f"{base}/api/v1/health", Path(work) / "server.log"):
                valid = {"method": "GET", "url": "/api/v1/experiments", "headers": viewer}
                flood = {"method": "GET", "path": "/api/v1/experiments", "body": None, "token": tokens["editor"]}
                results.append(measure("loopml server", base, valid, "/api/v1/health", flood, args))
        if args.only in (None, "serve"):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            argv = [python, "-m", "loopml.cli.main", "serve", "--auth", "--port", str(port), "--log-level",
                    "warning", "--no-log", "-m", f"{MODEL}@champion"]  # fmt: skip
            body = json.dumps({"records": json.loads(tokens["row"])})
            predict = f"/v1/models/{MODEL}/predict"
            with running(argv, env, f"{base}/readyz", Path(work) / "serve.log"):
                valid = {"method": "POST", "url": predict, "headers": {**viewer, "Content-Type": "application/json"},
                         "content": body}  # fmt: skip
                flood = {"method": "POST", "path": predict, "body": body, "token": tokens["editor"]}
                results.append(measure("loopml serve", base, valid, "/healthz", flood, args))
    report(results, args)


if __name__ == "__main__":
    main()
