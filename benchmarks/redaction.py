"""What prediction-log redaction costs the serving path (issue 16): ``loopml serve`` with and without a policy.

One ``loopml serve`` process (one worker, prediction log on, SQL sink) serves the serving benchmark's
model (StandardScaler + LogisticRegression, breast-cancer data, 30 columns). ``wrk -t1`` POSTs
100-row batches at concurrency 8, then single rows at concurrency 8, for ``--duration`` seconds,
first without a redaction policy, then with one that hashes two columns (HMAC-SHA256), drops two
and truncates one; rounds alternate the two servers so that neither gets the quieter minute.
Redaction runs in the log writer, after the answer was sent, so what it costs the request path is
the writer's CPU taken from the one the server runs on. Target: <= 5% of throughput.

Every logged row is checked afterwards: with the policy, no plaintext value of a redacted column is
in the store.

Run:  .venv/bin/python benchmarks/redaction.py            (--rounds 3 --duration 10; --quick: 1 round of 3 s)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import (  # a sibling script: the same model, bodies, processes and load generator
    MODEL,
    free_port,
    setup_loopml,
    start_loopml,
    stop,
    train,
    write_bodies,
    wrk,
)

RULES = {
    "mean radius": "hash",
    "mean texture": "hash",
    "worst area": "drop",
    "worst smoothness": "drop",
    "mean perimeter": "truncate:3",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3.0
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="loopml-redaction-bench-"))
    os.environ.setdefault("LOOPML_REDACTION_KEY", "benchmark-redaction-key-0123456789")
    try:
        model, X = train()
        bodies = write_bodies(work, X)
        homes = {}
        for label in ("off", "on"):
            homes[label] = work / label
            homes[label].mkdir()
            setup_loopml(homes[label], model, X)
            if label == "on":
                import loopml

                loopml.set_redaction(MODEL, RULES, reason="benchmark")
        cells: dict[str, dict[str, list[float]]] = {label: {"batch": [], "one": [], "p99": []} for label in homes}
        for _ in range(args.rounds):
            for label, home in homes.items():
                port = free_port()
                server = start_loopml(home, port)
                url = f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict"
                try:
                    wrk(url, bodies["loopml-batch"], work / "post.lua", 8, min(2.0, args.duration))  # warm-up
                    batch = wrk(url, bodies["loopml-batch"], work / "post.lua", 8, args.duration)
                    one = wrk(url, bodies["loopml-1"], work / "post.lua", 8, args.duration)
                finally:
                    stop(server)
                cells[label]["batch"].append(batch["rps"])
                cells[label]["p99"].append(batch["p99"])
                cells[label]["one"].append(one["rps"])
        leaked = check_no_plaintext(homes["on"], X)
        control = check_no_plaintext(homes["off"], X, first=True)  # the check does find plaintext where it is
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(cells, args, leaked, control)


def check_no_plaintext(home: Path, X: object, *, first: bool = False) -> int:
    """How many redacted plaintext values of the first rows appear in the store's database files (must be 0).

    One pass over the files in 64 MiB pieces (with an overlap for matches across pieces), the log of a run
    at a thousand 80 KB requests a second being gigabytes: a pattern finds each redacted column's key
    followed by a number, and the number is looked up among the plaintext values.
    """
    import re

    import pandas as pd

    assert isinstance(X, pd.DataFrame)
    columns = ("mean radius", "mean texture", "worst area", "worst smoothness")
    plaintext = {(column, repr(float(value))) for column in columns for value in X[column].head(100).unique()}
    pattern = re.compile(rb'"(' + b"|".join(re.escape(c.encode()) for c in columns) + rb')": ?([-+0-9.eE]+)')
    found: set[tuple[str, str]] = set()
    for path in home.glob("loopml.db*"):
        with path.open("rb") as handle:
            tail = b""
            while piece := handle.read(64 << 20):
                for match in pattern.finditer(tail + piece):
                    pair = (match.group(1).decode(), match.group(2).decode())
                    if pair in plaintext:
                        found.add(pair)
                        if first:  # a positive control needs one
                            return 1
                tail = piece[-64:]
    return len(found)


def report(cells: dict[str, dict[str, list[float]]], args: argparse.Namespace, leaked: int, control: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"loopml serve, prediction log on, wrk -t1 -c8 -d{args.duration:g}s, median of {args.rounds}")
    for column in ("redaction", "100 rows req/s", "100 rows p99 ms", "1 row req/s"):
        table.add_column(column, justify="right")
    medians = {label: {k: statistics.median(v) for k, v in values.items()} for label, values in cells.items()}
    for label, figures in medians.items():
        table.add_row(label, f"{figures['batch']:,.0f}", f"{figures['p99']:.1f}", f"{figures['one']:,.0f}")
    console = Console(width=120)
    console.print(table)
    for workload in ("batch", "one"):
        cost = 1 - medians["on"][workload] / medians["off"][workload]
        console.print(f"{'100-row' if workload == 'batch' else '1-row'} throughput cost of redaction: {cost:+.1%}")
    console.print(f"redacted plaintext values found in the store: {leaked} (without the policy: found {control})")


if __name__ == "__main__":
    main()
