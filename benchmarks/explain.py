"""Explanation benchmark (issue 16): per-prediction SHAP latency, in process and over HTTP, against bare shap.

Two registered models on the same data (``--features`` numeric columns): a random forest of ``--trees``
(200) trees, explained with exact tree SHAP, and a logistic regression, explained with linear SHAP over
50 background rows. For each, one row per call, ``--requests`` calls after a warm-up, p50 and p99 of:

* the floor: the bare shap explainer (``shap.TreeExplainer(model).shap_values(row)`` /
  ``shap.LinearExplainer(model, background).shap_values(row)``), built once, on a numpy row;
* loopml in process: ``LoadedModel.explain(record)`` (input checked against the signature, the cached
  explainer, attributions and the model's own output for the additivity figures);
* loopml over HTTP: ``POST /v1/models/{name}/versions/1/predict?explain=true`` to ``loopml serve``'s app
  (uvicorn on 127.0.0.1, one worker, an explanation budget large enough not to refuse), one httpx client;
  the plain prediction over the same route is printed beside it.

    .venv/bin/python benchmarks/explain.py             # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/explain.py --quick     # smoke test (50 trees, 50 requests)
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, this_python

ROOT = Path(__file__).resolve().parent.parent


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    values = np.asarray(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def timed(call: Callable[[int], Any], n: int, warmup: int = 5) -> tuple[float, float]:
    for i in range(warmup):
        call(i)
    samples = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


@contextlib.contextmanager
def serving(store: Any) -> Iterator[str]:
    """The prediction service over ``store`` on a free port, with a budget that never refuses."""
    import httpx
    import uvicorn

    from loopml.serving.app import create_serving_app
    from loopml.serving.explaining import Explanations

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_serving_app(store, poll_interval_s=60.0, log_predictions=False)
    app.state.explanations = Explanations(app.state.service, seconds_per_second=1000.0, burst_s=1000.0,
                                          max_concurrent=8)  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    httpx.get(f"{url}/readyz")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="50 trees, 50 requests")
    args = parser.parse_args()
    if args.quick:
        args.trees, args.requests = 50, 50
    warnings.simplefilter("ignore")

    import httpx
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from loopml.explain.explainers import import_shap
    from loopml.explain.importance import explain_model
    from loopml.registry.client import RegistryClient
    from loopml.store import open_store
    from loopml.tracking.client import TrackingClient
    from loopml.tracking.runs import ActiveRun

    shap = import_shap()
    X_arr, y = make_classification(3000, args.features, n_informative=args.features // 2, random_state=0)
    X = pd.DataFrame(X_arr, columns=[f"f{i}" for i in range(args.features)])
    train, rows = X.iloc[:2000], X.iloc[2000:]
    records = rows.to_dict(orient="records")
    models = {
        "forest": RandomForestClassifier(n_estimators=args.trees, max_depth=10, random_state=0, n_jobs=1),
        "linear": LogisticRegression(max_iter=1000),
    }
    for model in models.values():
        model.fit(train, y[:2000])
    background = train.sample(50, random_state=0)
    print(f"# loopml explain benchmark: {args.trees} trees, {args.features} features, {args.requests} requests; "
          f"{machine()}; shap {shap.__version__}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/db.sqlite", artifacts_url=f"{folder}/artifacts")
        tracking = TrackingClient(store)
        registry = RegistryClient(tracking)
        for name, model in models.items():
            run = tracking.create_run("explain-bench", capture=False)
            info = ActiveRun(tracking, run).log_model(model, "model", input_example=train.head())
            registry.register_model(info.uri, name)
            explain_model(f"models:/{name}/1", train, client=registry, shap_values=False)  # keeps background rows
        lines = []
        with serving(store) as url, httpx.Client(base_url=url, timeout=60) as http:
            for name, model in models.items():
                bare = (shap.TreeExplainer(model) if name == "forest"
                        else shap.LinearExplainer(model, background.to_numpy()))  # fmt: skip
                matrix = rows.to_numpy()
                floor = timed(lambda i, bare=bare, matrix=matrix: bare.shap_values(matrix[i % len(matrix) : i % len(matrix) + 1]),
                              args.requests)  # fmt: skip
                loaded = registry.load_model(f"models:/{name}/1")
                loaded.explain(records[0], background=background)
                inproc = timed(lambda i, loaded=loaded: loaded.explain(records[i % len(records)]), args.requests)
                path = f"/v1/models/{name}/versions/1/predict"

                def post(i: int, path: str = path, explain: bool = True) -> None:
                    answer = http.post(
                        path + ("?explain=true" if explain else ""), json={"inputs": records[i % len(records)]}
                    )
                    answer.raise_for_status()

                over_http = timed(post, args.requests)
                plain = timed(lambda i, path=path: post(i, path, explain=False), args.requests)
                lines.append((name, floor, inproc, over_http, plain))
        store.close()
    print(
        f"{'model':8} {'shap (floor)':>16} {'loopml in process':>20} {'loopml HTTP':>16} {'HTTP no explain':>16}  p50 against the floor"
    )
    for name, floor, inproc, over_http, plain in lines:
        print(f"{name:8} {floor[0]:7.2f}/{floor[1]:7.2f} ms {inproc[0]:9.2f}/{inproc[1]:7.2f} ms "
              f"{over_http[0]:7.2f}/{over_http[1]:7.2f} ms {plain[0]:7.2f}/{plain[1]:7.2f} ms  "
              f"in process +{inproc[0] - floor[0]:.2f} ms, HTTP +{over_http[0] - floor[0]:.2f} ms over the floor "
              f"({over_http[0] / max(floor[0], 1e-3):.1f}x)")  # fmt: skip
    print("(p50/p99 per call, one row per call)")
    print(f"reproduce: {this_python(ROOT)} benchmarks/explain.py --trees {args.trees} --features {args.features} "
          f"--requests {args.requests}")  # fmt: skip


if __name__ == "__main__":
    main()
