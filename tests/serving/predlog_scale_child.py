"""Run in a child process by test_predlog_scale: write and read N logged predictions, print peak-memory figures.

Memory is the kernel's high-water mark of the process (VmHWM), read before and after, so the figure
covers pyarrow's own allocations as well as Python's.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.store.predictions.parquet import SCHEMA, ParquetPredictionLog

CHUNK = 250_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_MS = 5 * 86_400_000  # the rows spread over five days


def peak_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def chunk(first: int, rows: int, total: int) -> pa.Table:
    index = pa.array(np.arange(first, first + rows, dtype=np.int64))
    times = pc.add(START, pc.divide(pc.multiply(index, SPAN_MS), total))
    return pa.table(
        [
            pc.binary_join_element_wise("r", pc.cast(index, pa.string()), ""),
            times,
            pa.repeat(pa.scalar("churn"), rows),
            pa.repeat(pa.scalar(1, pa.int32()), rows),
            pa.repeat(pa.scalar("main"), rows),
            pa.repeat(pa.scalar('{"inputs": {"age": 41, "income": 5.2}}', pa.large_string()), rows),
            pa.repeat(pa.scalar("[0.73]", pa.large_string()), rows),
            pa.repeat(pa.scalar(1.5), rows),
            pa.repeat(pa.scalar(200, pa.int16()), rows),
            pa.ListArray.from_arrays(pa.array(np.zeros(rows + 1, dtype=np.int32)), pa.array([], pa.string())),
        ],
        schema=SCHEMA,
    )


def main() -> None:
    root, total = sys.argv[1], int(sys.argv[2])
    log = ParquetPredictionLog(root)
    base = peak_kib()
    for first in range(0, total, CHUNK):
        log.write(chunk(first, min(CHUNK, total - first), total))
    written = peak_kib()
    rows = 0
    last_time = 0
    ids_sum = 0
    for batch in log.batches("churn", columns=["request_id", "time"]):
        rows += batch.num_rows
        last_time = max(last_time, int(pc.max(batch.column("time")).as_py()))
        ids_sum += int(pc.sum(pc.cast(pc.utf8_slice_codeunits(batch.column("request_id"), 1), pa.int64())).as_py())
    read = peak_kib()
    os.environ["LOOPML_PREDICTION_LOG"] = "parquet"
    from loopml.store import open_store

    store = open_store(f"sqlite:///{root}.db", artifacts_url=root.removesuffix("/prediction-log"))
    hour = store.serving.read_predictions("churn", since=START + 86_400_000, until=START + 86_400_000 + 3_600_000)
    store.close()
    print(
        json.dumps(
            {
                "base_kib": base,
                "written_kib": written,
                "read_kib": read,
                "rows": rows,
                "ids_sum": ids_sum,
                "last_time": last_time,
                "files": len(log.files("churn")),
                "hour_rows": len(hour),
                "hour_sorted": [r.time for r in hour] == sorted(r.time for r in hour),
            }
        )
    )


if __name__ == "__main__":
    main()
