"""Registry benchmark (issue 3): lookups over 1,000 models x 5 versions, and model loading vs MLflow.

Workloads, on the embedded SQLite store:
  * search_models with a tag filter, resolving models:/name@alias, and lineage of one version,
    over 1,000 registered models with 5 versions each (targets: each under 20 ms);
  * loading one registered scikit-learn model (RandomForest, 200 trees, breast-cancer data):
    loopml.load_model("models:/…@champion") against mlflow.pyfunc.load_model("models:/…@champion")
    on the same model in a separate MLflow venv, ratio printed; the floor is skops.io.load of the
    same bytes from a local file.

Run:  .venv/bin/python benchmarks/registry.py            (add --quick for a smoke test, --no-peer to skip MLflow)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PEER_PYTHON = Path("/tmp/peer-mlflow/bin/python")
TARGET_MS = 20.0


def median_ms(fn: Callable[[], Any], reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def train_model() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return RandomForestClassifier(n_estimators=200, random_state=0).fit(X, y), X


def loopml_side(n_models: int, n_versions: int, reps: int, home: Path) -> dict[str, float]:
    os.environ["LOOPML_HOME"] = str(home)
    import loopml
    from loopml.tracking.fluent import get_tracking_client

    model, X = train_model()
    loopml.set_experiment("registry-bench")
    with loopml.start_run(name="trained") as run:
        run.log_dataset(X, "breast-cancer", context="train")
        info = run.log_model(model, "model", input_example=X.head())
    registry = loopml.get_registry_client()
    store = get_tracking_client().store
    setup = time.perf_counter()
    for m in range(n_models):
        name = f"model-{m:04d}"
        registry.create_registered_model(name, tags={"team": f"team-{m % 10}", "tier": str(m % 3)})
        for _ in range(n_versions):
            store.registry.create_version(name, run_id=run.id, source=info.uri, description=None, tags={}, actor="bench")
        registry.set_alias(name, "champion", n_versions)
        registry.set_alias(name, "challenger", max(1, n_versions - 1))
    setup_s = time.perf_counter() - setup
    target = f"model-{n_models // 2:04d}"
    results = {
        "setup_s": setup_s,
        "search_models_ms": median_ms(lambda: registry.search_models("tags.team = 'team-3' and tags.tier = '1'"), reps),
        "resolve_alias_ms": median_ms(lambda: registry.resolve(f"models:/{target}@champion"), reps),
        "lineage_ms": median_ms(lambda: loopml.get_lineage(f"models:/{target}/{n_versions}"), reps),
        "n_found": len(registry.search_models("tags.team = 'team-3' and tags.tier = '1'")),
    }
    registry.set_alias(target, "champion", 1)
    uri = f"models:/{target}@champion"
    loaded = loopml.load_model(uri)
    assert (loaded.predict(X) == model.predict(X)).all()
    results["load_model_ms"] = median_ms(lambda: loopml.load_model(uri), max(5, reps // 4))
    # the floor: skops itself reading the same bytes from a local file
    import skops.io

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.skops"
        skops.io.dump(model, path)
        untrusted = skops.io.get_untrusted_types(file=path)
        results["floor_skops_load_ms"] = median_ms(lambda: skops.io.load(path, trusted=untrusted), max(5, reps // 4))
    return results


PEER_SCRIPT = r"""
import json, os, statistics, sys, time, warnings, logging
warnings.filterwarnings("ignore"); logging.getLogger("mlflow").setLevel(logging.ERROR)
import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
home, reps = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
mlflow.set_experiment("registry-bench")
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = RandomForestClassifier(n_estimators=200, random_state=0).fit(X, y)
with mlflow.start_run():
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(),
                                    skops_trusted_types=["sklearn.tree._tree.Tree"])
version = mlflow.register_model(info.model_uri, "bench-model")
MlflowClient().set_registered_model_alias("bench-model", "champion", version.version)
uri = "models:/bench-model@champion"
loaded = mlflow.pyfunc.load_model(uri)
assert (loaded.predict(X) == model.predict(X)).all()
def timed():
    start = time.perf_counter(); mlflow.pyfunc.load_model(uri); return (time.perf_counter() - start) * 1000
timed()
times = [timed() for _ in range(reps)]
print(json.dumps({"load_model_ms": statistics.median(times), "mlflow": mlflow.__version__}))
"""


def mlflow_side(reps: int, home: Path) -> dict[str, Any] | None:
    if not PEER_PYTHON.exists():
        print(f"MLflow venv not found at {PEER_PYTHON}: python -m venv /tmp/peer-mlflow && "
              "/tmp/peer-mlflow/bin/pip install mlflow scikit-learn", file=sys.stderr)
        return None
    out = subprocess.run(
        [str(PEER_PYTHON), "-c", PEER_SCRIPT, str(home), str(reps)],
        capture_output=True, text=True, check=False, env={**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false"},
    )
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="50 models, few repetitions")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow")
    args = parser.parse_args()
    if args.quick:
        args.models, args.reps = 50, 8
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory() as mine, tempfile.TemporaryDirectory() as theirs:
        ours = loopml_side(args.models, args.versions, args.reps, Path(mine))
        peer = None if args.no_peer else mlflow_side(max(5, args.reps // 4), Path(theirs))
    table = Table(title=f"Registry: {args.models} models x {args.versions} versions (SQLite), median ms")
    for column in ("workload", "loopml", "MLflow", "floor", "ratio", "target", "verdict"):
        table.add_column(column, justify="right" if column not in ("workload", "target") else "left")
    for key, label in (("search_models_ms", "search_models tag filter"), ("resolve_alias_ms", "resolve models:/name@alias"),
                       ("lineage_ms", "lineage of one version")):
        verdict = "PASS" if ours[key] < TARGET_MS else "FAIL"
        table.add_row(label, f"{ours[key]:.2f}", "", "", "", f"< {TARGET_MS:.0f} ms", verdict)
    ratio = f"{peer['load_model_ms'] / ours['load_model_ms']:.1f}x" if peer else "n/a"
    table.add_row("load registered sklearn model", f"{ours['load_model_ms']:.1f}",
                  f"{peer['load_model_ms']:.1f}" if peer else "n/a", f"{ours['floor_skops_load_ms']:.1f}", ratio,
                  "faster than MLflow", "PASS" if peer and ours["load_model_ms"] < peer["load_model_ms"] else "-")
    console = Console()
    console.print(table)
    console.print(f"search matched {ours['n_found']} models; setup of {args.models * args.versions} versions took "
                  f"{ours['setup_s']:.1f} s" + (f"; MLflow {peer['mlflow']}" if peer else ""))
    console.print(f"reproduce: .venv/bin/python benchmarks/registry.py --models {args.models} --versions {args.versions}"
                  f" --reps {args.reps}" + (" --no-peer" if args.no_peer else ""))


if __name__ == "__main__":
    main()
