"""5,000,000 logged predictions written and read back through the parquet sink in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROWS = 5_000_000
#: Held in memory at once, these rows would take about 600 MiB as Arrow columns (125 bytes a row).
BOUND_KIB = 300 * 1024


def test_five_million_predictions_are_written_and_read_in_bounded_memory(tmp_path: Path) -> None:
    root = tmp_path / "artifacts" / "prediction-log"
    child = subprocess.run(
        [sys.executable, "-m", "tests.serving.predlog_scale_child", str(root), str(ROWS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        timeout=600,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])

    assert figures["rows"] == ROWS
    assert figures["ids_sum"] == ROWS * (ROWS - 1) // 2  # every id read back exactly once
    assert figures["written_kib"] - figures["base_kib"] < BOUND_KIB
    assert figures["read_kib"] - figures["base_kib"] < BOUND_KIB
    # one hour's window, through the store's read interface, reads only that day's folder
    assert figures["hour_rows"] == ROWS // 120 + 1 and figures["hour_sorted"]
    days = sorted(path.name for path in (root / "model=churn").iterdir())
    assert days == [f"day=2026-01-0{day}" for day in range(1, 6)]
    assert figures["files"] == len(list(root.rglob("*.parquet")))
