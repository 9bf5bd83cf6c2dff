"""Pipelines benchmark: per-step overhead of loopml's runners, fan-out wall time, cached re-runs, vs Metaflow.

Workloads (issue 7):

1. Per-step overhead of a no-op step on the local runner, with cached outputs and executed
   (``cache=False``): the marginal cost per step between a 10-step and a 100-step chain, and
   the whole re-run divided by its steps. The same chain executed on Ray.
2. A 100-step fan-out (100 independent steps, then one that sums them) on the local runner
   (in-process), the local process pool and Ray; once with no-op steps and once with steps that
   burn ``--work-ms`` of CPU each. The outputs must be identical on every runner.
3. The wall time of re-running an unchanged 20-step chain (every step a cache hit).
4. The peer: Metaflow (``/tmp/peer-metaflow``, created when missing unless ``--no-peer``), run as
   ``python flow.py run`` in its own venv: the per-step cost of a chain, the 100-task
   ``foreach`` fan-out, and ``resume end`` of an unchanged 20-step flow, its closest
   counterpart to a cached re-run.

    .venv/bin/python benchmarks/pipelines.py              # full run (about 8 minutes, most of it Metaflow)
    .venv/bin/python benchmarks/pipelines.py --quick      # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _machine import ensure_venv, machine, this_python

from loopml.pipelines import pipeline, step

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path("/tmp/peer-metaflow")
TARGET_CACHED_MS = 5.0


# -- the pipelines (module level, so process pools and Ray can ship them) -------------------------


@step
def noop(x: int) -> int:
    return x


@step
def work(i: int, ms: float = 0.0) -> int:
    deadline = time.perf_counter() + ms / 1000
    while time.perf_counter() < deadline:  # burn CPU, not sleep: parallelism has to come from cores
        pass
    return i * i


@step
def combine(parts: list) -> int:
    return sum(parts)


@pipeline
def chain(n: int = 20):
    x = noop(0)
    for _ in range(n - 1):
        x = noop(x)
    return x


@pipeline
def fanout(n: int = 100, ms: float = 0.0):
    return combine([work(i, ms=ms) for i in range(n)])


# -- helpers ---------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def median_ms(fn: Callable[[], Any], reps: int) -> float:
    """Median of ``reps`` timed calls, in ms (the caller warms up)."""
    return statistics.median(timed(fn)[0] for _ in range(reps))


def slope(sizes: Sequence[int], times: Sequence[float]) -> float:
    """Least-squares ms per extra step across chain lengths: the per-step cost without the fixed part."""
    import numpy as np

    return float(np.polyfit(np.asarray(sizes, dtype=float), np.asarray(times, dtype=float), 1)[0])


def use_home(home: Path) -> None:
    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI"):
        os.environ.pop(name, None)
    os.environ["LOOPML_HOME"] = str(home)
    import loopml

    loopml.set_tracking_uri(None)


# -- loopml ------------------------------------------------------------------------------------------


def bench_local(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    small, big = args.small, args.big
    for n in (small, big):
        log(f"local chain of {n}: first run, then {args.reps} cached re-runs and executed runs")
        chain.run(n=n)
        out[f"cached_{n}_ms"] = median_ms(lambda n=n: chain.run(n=n), args.reps)
        out[f"executed_{n}_ms"] = median_ms(lambda n=n: chain.run(n=n, cache=False), max(1, args.reps // 2))
    log("local chain of 20: cached re-run")
    chain.run(n=20)
    out["rerun_20_ms"] = median_ms(lambda: chain.run(n=20), args.reps)
    out["executed_20_ms"] = median_ms(lambda: chain.run(n=20, cache=False), max(1, args.reps // 2))
    sizes = (small, 20, big)
    out["cached_marginal_ms"] = slope(sizes, (out[f"cached_{small}_ms"], out["rerun_20_ms"], out[f"cached_{big}_ms"]))
    out["executed_marginal_ms"] = slope(sizes, [out[f"executed_{n}_ms"] for n in sizes])
    return out


def bench_fanout(args: argparse.Namespace, runner: str, **options: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, ms in (("noop", 0.0), ("work", args.work_ms)):
        log(f"fan-out of {args.fan} ({label}) on {runner} {options or ''}")
        wall, result = timed(lambda ms=ms: fanout.run(n=args.fan, ms=ms, runner=runner, cache=False, **options))
        out[f"fan_{label}_ms"] = wall
        out[f"fan_{label}_output"] = result.output
    return out


def bench_ray(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    out: dict[str, Any] = {}
    log(f"starting Ray (num_cpus={os.cpu_count()})")
    out["init_ms"], _ = timed(lambda: ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False))
    chain.run(n=args.small, runner="ray", cache=False)  # warm the workers (imports, store connections)
    for n in (args.small, 20):
        log(f"Ray chain of {n}, executed")
        out[f"executed_{n}_ms"] = median_ms(
            lambda n=n: chain.run(n=n, runner="ray", cache=False), max(1, args.reps // 2)
        )
    out["executed_marginal_ms"] = slope((args.small, 20), (out[f"executed_{args.small}_ms"], out["executed_20_ms"]))
    out["rerun_20_ms"] = median_ms(lambda: chain.run(n=20, runner="ray"), args.reps)
    fanout.run(n=4, runner="ray", cache=False)
    out.update(bench_fanout(args, "ray"))
    out["version"] = ray.__version__
    ray.shutdown()
    return out


# -- Metaflow ----------------------------------------------------------------------------------------


def ensure_peer(venv: Path) -> Path:
    return ensure_venv(venv, ["metaflow"], log)


def chain_flow(n: int) -> str:
    names = ["start", *(f"s{i}" for i in range(1, n + 1)), "end"]
    body = []
    for name, following in zip(names, [*names[1:], None], strict=True):
        lines = ["    @step", f"    def {name}(self):"]
        lines.append(f"        self.next(self.{following})" if following else "        pass")
        body.append("\n".join(lines))
    return (
        "from metaflow import FlowSpec, step\n\n\nclass Chain(FlowSpec):\n"
        + "\n\n".join(body)
        + ("\n\n\nif __name__ == '__main__':\n    Chain()\n")
    )


def fan_flow(n: int) -> str:
    return textwrap.dedent(
        f"""
        from metaflow import FlowSpec, step


        class Fan(FlowSpec):
            @step
            def start(self):
                self.items = list(range({n}))
                self.next(self.work, foreach="items")

            @step
            def work(self):
                self.y = self.input * self.input
                self.next(self.join)

            @step
            def join(self, inputs):
                self.total = sum(i.y for i in inputs)
                print("total", self.total)
                self.next(self.end)

            @step
            def end(self):
                pass


        if __name__ == "__main__":
            Fan()
        """
    )


def metaflow_ms(python: Path, folder: Path, *command: str) -> tuple[float, str]:
    env = {**os.environ, "USER": os.environ.get("USER") or "bench", "METAFLOW_DEFAULT_DATASTORE": "local"}
    start = time.perf_counter()
    done = subprocess.run(
        [str(python), "flow.py", "--quiet", "--no-pylint", *command],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"Metaflow failed ({' '.join(command)}): {done.stderr[-2000:]}")
    return elapsed, done.stdout + done.stderr


def bench_metaflow(python: Path, base: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    version = subprocess.run(
        [str(python), "-c", "import metaflow; print(metaflow.__version__)"], capture_output=True, text=True
    )
    out["version"] = version.stdout.strip()
    times = {}
    for n in (args.peer_small, args.peer_big, 20):
        folder = base / f"metaflow-chain-{n}"
        folder.mkdir()
        (folder / "flow.py").write_text(chain_flow(n))
        log(f"Metaflow chain of {n} steps (+ start and end)")
        runs = [metaflow_ms(python, folder, "run")[0] for _ in range(args.peer_reps)]
        times[n] = statistics.median(runs)
        if n == 20:
            log("Metaflow resume end of the unchanged 20-step chain")
            out["resume_20_ms"] = statistics.median(
                metaflow_ms(python, folder, "resume", "end")[0] for _ in range(args.peer_reps)
            )
    out["chain_ms"] = times
    out["executed_marginal_ms"] = slope(list(times), list(times.values()))
    out["executed_20_ms"] = times[20]
    if args.fan and not args.no_peer_fanout:
        folder = base / "metaflow-fan"
        folder.mkdir()
        (folder / "flow.py").write_text(fan_flow(args.fan))
        log(f"Metaflow foreach over {args.fan} items (max-workers {args.peer_workers})")
        out["fan_noop_ms"], text = metaflow_ms(python, folder, "run", "--max-workers", str(args.peer_workers))
        out["fan_noop_output"] = next((int(line.split()[-1]) for line in text.splitlines() if "total" in line), None)
    return out


# -- report --------------------------------------------------------------------------------------------


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def ratio(theirs: float | None, ours: float | None) -> str:
    if theirs is None or ours is None or ours <= 0:
        return "—"
    return f"{theirs / ours:,.0f}\u00d7" if theirs / ours >= 10 else f"{theirs / ours:.1f}\u00d7"


def print_report(args: argparse.Namespace, lm: dict[str, Any], pool: dict[str, Any], ray: dict[str, Any] | None,
                 mf: dict[str, Any] | None, versions: dict[str, str]) -> None:  # fmt: skip
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal or console.width < 150:
        console = Console(width=160)

    def get(figures: dict[str, Any] | None, key: str) -> Any:
        return None if figures is None else figures.get(key)

    whole_cached = lm[f"cached_{args.big}_ms"] / args.big
    rows = [
        (f"no-op step, cached outputs: marginal ms per step (slope over {args.small}/20/{args.big}-step chains)",
         fmt_ms(lm["cached_marginal_ms"]), "(driver only)", "—", "—", f"< {TARGET_CACHED_MS:g} ms",
         "PASS" if lm["cached_marginal_ms"] < TARGET_CACHED_MS else "FAIL"),
        (f"no-op step, cached: whole {args.big}-step re-run ÷ {args.big} (fixed cost included)", fmt_ms(whole_cached),
         "—", "—", "—", "report", "—"),
        ("no-op step, executed: marginal ms per step (slope; Metaflow: one process per task)",
         fmt_ms(lm["executed_marginal_ms"]), fmt_ms(get(ray, "executed_marginal_ms")),
         fmt_ms(get(mf, "executed_marginal_ms")), ratio(get(mf, "executed_marginal_ms"), lm["executed_marginal_ms"]),
         "report", "—"),
        ("20-step chain, every step executed (Metaflow: + start and end)", fmt_ms(lm["executed_20_ms"]),
         fmt_ms(get(ray, "executed_20_ms")), fmt_ms(get(mf, "executed_20_ms")),
         ratio(get(mf, "executed_20_ms"), lm["executed_20_ms"]), "report", "—"),
        ("re-run of an unchanged 20-step chain (all cache hits; Metaflow: resume end)", fmt_ms(lm["rerun_20_ms"]),
         fmt_ms(get(ray, "rerun_20_ms")), fmt_ms(get(mf, "resume_20_ms")),
         ratio(get(mf, "resume_20_ms"), lm["rerun_20_ms"]), "report", "—"),
        (f"{args.fan}-step fan-out + 1, no-op steps: in-process / process pool ({args.workers}); Metaflow foreach",
         f"{fmt_ms(lm['fan_noop_ms'])} / {fmt_ms(pool['fan_noop_ms'])}", fmt_ms(get(ray, "fan_noop_ms")),
         fmt_ms(get(mf, "fan_noop_ms")), ratio(get(mf, "fan_noop_ms"), lm["fan_noop_ms"]), "report", "—"),
        (f"{args.fan}-step fan-out + 1, {args.work_ms:g} ms of CPU a step: in-process / process pool",
         f"{fmt_ms(lm['fan_work_ms'])} / {fmt_ms(pool['fan_work_ms'])}", fmt_ms(get(ray, "fan_work_ms")),
         "—", "—", "report", "—"),
    ]  # fmt: skip
    table = Table(title="Pipelines: loopml local and Ray vs Metaflow (medians unless one run; SQLite store)")
    for column in (
        "workload",
        "loopml local",
        "loopml Ray",
        "Metaflow",
        "ratio (Metaflow ÷ loopml local)",
        "target",
        "result",
    ):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for row in rows:
        result = row[-1]
        style = {"PASS": "green", "FAIL": "bold red"}.get(result, "")
        table.add_row(*row[:-1], f"[{style}]{result}[/]" if style else result)
    console.print(table)
    outputs = {lm["fan_noop_output"], lm["fan_work_output"], pool["fan_noop_output"], pool["fan_work_output"]}
    if ray is not None:
        outputs |= {ray["fan_noop_output"], ray["fan_work_output"]}
    notes = [
        f"machine: {versions['machine']}; Python {versions['python']}; loopml {versions['loopml']}; "
        f"Ray {versions.get('ray', 'not run')}; Metaflow {versions.get('metaflow', 'not run')}; "
        f"load average (1 min) at start {versions['load_start']}, at end {versions['load_end']}",
        f"identical fan-out output on every runner: {'yes' if len(outputs) == 1 else 'NO'} ({sorted(outputs)})"
        + (f"; Metaflow's foreach total: {mf.get('fan_noop_output')}" if mf and "fan_noop_output" in mf else ""),
        f"chains: cached {args.small}-step re-run {fmt_ms(lm[f'cached_{args.small}_ms'])}, {args.big}-step "
        f"{fmt_ms(lm[f'cached_{args.big}_ms'])}; executed {fmt_ms(lm[f'executed_{args.small}_ms'])} and "
        f"{fmt_ms(lm[f'executed_{args.big}_ms'])}. A re-run's fixed cost is the pipeline's own run (git and "
        "environment capture, the DAG and step records) and reading the recent runs' step records.",
        "a cache hit creates no run: the driver finds the key in the step records of the pipeline's recent runs "
        "(or by the tag search) and points the step's record at the run that produced the outputs.",
    ]
    if ray is not None:
        notes.append(
            f"Ray: local instance with num_cpus={os.cpu_count()}, started in {fmt_ms(ray['init_ms'])} (not "
            "counted); a warm-up run first; each executed step is a task that opens the SQLite store by URL."
        )
    if mf is not None:
        chains = ", ".join(f"{n} steps {fmt_ms(ms)}" for n, ms in mf["chain_ms"].items())
        notes.append(
            f"Metaflow: python flow.py --quiet --no-pylint run (local datastore, one process per task; "
            f"medians of {args.peer_reps}): {chains}; per-step = least-squares slope over those lengths. "
            f"Fan-out: foreach over {args.fan} items, --max-workers {args.peer_workers}."
        )
    for note in notes:
        console.print(f"• {note}", highlight=False)
    console.print("\nReproduce:", style="bold")
    console.print(reproduce_command(args), highlight=False, soft_wrap=True)


def reproduce_command(args: argparse.Namespace) -> str:
    shown = this_python(ROOT)
    argv = [shown, "benchmarks/pipelines.py", "--reps", str(args.reps), "--fan", str(args.fan), "--work-ms",
            str(args.work_ms), "--peer-reps", str(args.peer_reps)]  # fmt: skip
    for flag in ("quick", "no_peer", "no_ray", "no_peer_fanout"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    return f"cd {shlex.quote(str(ROOT))} && {shlex.join(argv)}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions after a warm-up (default 7)")
    parser.add_argument("--fan", type=int, default=100, help="steps in the fan-out (default 100)")
    parser.add_argument(
        "--work-ms", type=float, default=100.0, help="CPU each working fan-out step burns (default 100)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="local process pool size")
    parser.add_argument("--peer-reps", type=int, default=3, help="Metaflow runs per chain length (default 3)")
    parser.add_argument("--peer-workers", type=int, default=16, help="Metaflow --max-workers (its default, 16)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--no-peer", action="store_true", help="skip Metaflow (and never create its venv)")
    parser.add_argument("--no-peer-fanout", action="store_true", help="skip Metaflow's fan-out (the slowest part)")
    parser.add_argument("--no-ray", action="store_true", help="skip Ray")
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    args.small, args.big = (5, 50) if args.quick else (10, 100)
    args.peer_small, args.peer_big = (1, 3) if args.quick else (2, 12)
    if args.quick:
        args.reps, args.fan, args.work_ms, args.peer_reps = (
            min(args.reps, 3),
            min(args.fan, 10),
            min(args.work_ms, 20),
            1,
        )
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("loopml").setLevel(logging.ERROR)
    import loopml

    versions = {
        "machine": machine(),
        "python": platform.python_version(),
        "loopml": loopml.__version__,
        "load_start": f"{os.getloadavg()[0]:.1f}",
    }
    python = None if args.no_peer else ensure_peer(args.peer_venv)
    base = Path(tempfile.mkdtemp(prefix="loopml-bench-pipelines-"))
    try:
        use_home(base / "local")
        lm = bench_local(args)
        lm.update(bench_fanout(args, "local"))
        pool = bench_fanout(args, "local", parallel=True, max_workers=args.workers)
        ray = None
        if not args.no_ray:
            use_home(base / "ray")
            ray = bench_ray(args)
            versions["ray"] = ray["version"]
        mf = None
        if python is not None:
            mf = bench_metaflow(python, base, args)
            versions["metaflow"] = mf["version"]
        versions["load_end"] = f"{os.getloadavg()[0]:.1f}"
        if args.json:
            args.json.write_text(json.dumps({"versions": versions, "local": lm, "pool": pool, "ray": ray, "metaflow": mf},
                                            indent=2, default=str))  # fmt: skip
        print_report(args, lm, pool, ray, mf, versions)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
