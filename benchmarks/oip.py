"""Open Inference Protocol benchmark (issue 15): v2 infer with binary tensors against JSON tensors.

One ``loopml serve`` process (one worker, its defaults, prediction log on) serves the serving
benchmark's model (StandardScaler + LogisticRegression on scikit-learn's bundled breast-cancer data,
30 numeric columns). ``wrk`` in its own process POSTs a fixed body for ``--duration`` seconds at
concurrency ``--concurrency``, for batches of 100 and 10,000 rows sent as one ``[n, 30]`` FP64 tensor:

* ``JSON``: the tensor's values in ``data``, the answer's output as a JSON list (what a hand-written
  client sends);
* ``binary``: the tensor's bytes after the JSON header (``Inference-Header-Content-Length``) and the
  output asked for as binary data (what ``tritonclient`` sends by default).

Beside them, the floor: a bare Starlette endpoint on the same uvicorn that reads the same binary body
with ``numpy.frombuffer``, calls the same model's ``predict`` and answers the bytes (no checks, no
logging, no batching, no request ids), and the same for JSON (orjson, ``numpy.array``).

Printed: requests/s, rows/s, p50 and p99 per cell, and the binary / JSON ratio.

Run:  .venv/bin/python benchmarks/oip.py            (--duration 10 --concurrency 8; --quick for 3 s cells)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import (  # a sibling script: the same model, processes and load generator
    MODEL,
    PYTHON,
    TRAIN_SOURCE,
    free_port,
    setup_loopml,
    start_loopml,
    stop,
    train,
    wait_ready,
    wrk,
)

ROWS = (100, 10_000)
WRK_BINARY = """
wrk.method = "POST"
local f = io.open(os.getenv("BODY_FILE"), "rb")
wrk.body = f:read("*a")
f:close()
local header = os.getenv("HEADER_LENGTH")
if header ~= nil and header ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header
  wrk.headers["Content-Type"] = "application/octet-stream"
else
  wrk.headers["Content-Type"] = "application/json"
end
"""

FLOOR_SERVER = (
    """
import sys
import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
"""
    + TRAIN_SOURCE
    + """
for step in model.steps:
    vars(step[1]).pop("feature_names_in_", None)
width = X.shape[1]
async def infer(request):
    body = await request.body()
    header = request.headers.get("inference-header-content-length")
    if header is None:
        tensor = orjson.loads(body)["inputs"][0]
        rows = np.array(tensor["data"], dtype=np.float64).reshape(-1, width)
        return Response(orjson.dumps({"outputs": [{"name": "predict", "data": model.predict(rows).tolist()}]}))
    n = int(header)
    rows = np.frombuffer(body, dtype="<f8", offset=n).reshape(-1, width)
    data = model.predict(rows).astype("<i8").tobytes()
    head = orjson.dumps({"outputs": [{"name": "predict", "parameters": {"binary_data_size": len(data)}}]})
    return Response(head + data, headers={"inference-header-content-length": str(len(head))})
async def ready(request):
    return Response(b"ok")
app = Starlette(routes=[Route("/infer", infer, methods=["POST"]), Route("/readyz", ready)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""
)


def bodies(folder: Path, X: Any) -> dict[tuple[int, str], tuple[Path, str]]:
    """(rows, kind) -> (body file, Inference-Header-Content-Length or "") for every cell."""
    found = {}
    for n in ROWS:
        matrix = np.resize(X.to_numpy(dtype=np.float64), (n, X.shape[1]))  # the data set repeated to n rows
        shape = list(matrix.shape)
        as_json = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": matrix.ravel().tolist()}]}
        path = folder / f"json-{n}.json"
        path.write_text(json.dumps(as_json))
        found[(n, "JSON")] = (path, "")
        raw = matrix.astype("<f8").tobytes()
        header = json.dumps(
            {
                "inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "parameters": {"binary_data_size": len(raw)}}],
                "parameters": {"binary_data_output": True},
            }
        ).encode()
        path = folder / f"binary-{n}.bin"
        path.write_bytes(header + raw)
        found[(n, "binary")] = (path, str(len(header)))
    return found


def check(url: str, body: Path, header: str, expected: np.ndarray) -> None:
    """The server's answer to one body equals the model's own predictions (JSON or binary)."""
    import httpx

    headers = {"Inference-Header-Content-Length": header} if header else {}
    answer = httpx.post(url, content=body.read_bytes(), headers=headers, timeout=60)
    answer.raise_for_status()
    length = answer.headers.get("inference-header-content-length")
    if length is None:
        got = np.array(answer.json()["outputs"][0]["data"])
    else:
        got = np.frombuffer(answer.content[int(length) :], dtype="<i8")
    if not np.array_equal(got, expected):
        raise RuntimeError(f"{url} answered {got[:5]}..., expected {expected[:5]}...")


def measure(url: str, cells: dict[tuple[int, str], tuple[Path, str]], script: Path, args: argparse.Namespace,
            expected: dict[int, np.ndarray]) -> dict[str, dict[str, float]]:  # fmt: skip
    figures = {}
    for (n, kind), (body, header) in cells.items():
        check(url, body, header, expected[n])
        wrk(url, body, script, args.concurrency, min(2.0, args.duration), {"HEADER_LENGTH": header})  # warm-up
        cell = wrk(url, body, script, args.concurrency, args.duration, {"HEADER_LENGTH": header})
        cell["rows_per_s"] = cell["rps"] * n
        figures[f"{n} rows, {kind}"] = cell
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 s cells")
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    import subprocess

    work = Path(tempfile.mkdtemp(prefix="loopml-oip-bench-"))
    try:
        model, X = train()
        cells = bodies(work, X)
        expected = {n: model.predict(pd.DataFrame(np.resize(X.to_numpy(), (n, X.shape[1])), columns=X.columns))
                    for n in ROWS}  # fmt: skip
        script = work / "post.lua"
        script.write_text(WRK_BINARY)
        home = work / "home"
        home.mkdir()
        setup_loopml(home, model, X)
        port = free_port()
        server = start_loopml(home, port)
        try:
            loopml = measure(f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer", cells, script, args, expected)
        finally:
            stop(server)
        port = free_port()
        (work / "floor.py").write_text(FLOOR_SERVER)
        floor_process = subprocess.Popen([PYTHON, str(work / "floor.py"), str(port)])
        wait_ready(f"http://127.0.0.1:{port}/readyz", floor_process)
        try:
            floor = measure(f"http://127.0.0.1:{port}/infer", cells, script, args, expected)
        finally:
            stop(floor_process)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(loopml, floor, args)


def report(loopml: dict[str, dict[str, float]], floor: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"v2 infer, one \\[n, 30] FP64 tensor, wrk -t1 -c{args.concurrency} -d{args.duration:g}s")
    for column in ("cell", "loopml req/s", "rows/s", "p50 ms", "p99 ms", "floor req/s", "floor p99 ms", "errors"):
        table.add_column(column, justify="right")
    for cell, figures in loopml.items():
        bare = floor[cell]
        table.add_row(cell, f"{figures['rps']:,.0f}", f"{figures['rows_per_s']:,.0f}", f"{figures['p50']:.2f}",
                      f"{figures['p99']:.2f}", f"{bare['rps']:,.0f}", f"{bare['p99']:.2f}",
                      str(int(figures["errors"] + bare["errors"])))  # fmt: skip
    console = Console(width=140)
    console.print(table)
    for n in ROWS:
        binary, plain = loopml[f"{n} rows, binary"], loopml[f"{n} rows, JSON"]
        if not (binary["rps"] and plain["rps"] and binary["p99"]):
            console.print(f"{n:>6} rows: a cell finished no request in {args.duration:g} s; run longer cells")
            continue
        console.print(
            f"{n:>6} rows: binary/JSON throughput {binary['rps'] / plain['rps']:.2f}x, "
            f"p99 {plain['p99'] / binary['p99']:.2f}x lower"
        )


if __name__ == "__main__":
    main()
