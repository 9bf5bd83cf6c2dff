"""``loopml features apply/list/show`` through CliRunner on the SQL backends."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.cli.main import app

runner = CliRunner()
DEFINITIONS = """
from loopml import Entity, FeatureService, FeatureView, FileSource

customer = Entity("customer", ["customer_id"], description="A shop customer")
stats = FeatureView(
    "customer_stats", [customer], FileSource({path}), ttl="7d", schema={schema},
)
churn = FeatureService("churn", [stats[["orders_7d"]]])
"""


@pytest.fixture
def definitions(tmp_path):
    parquet = tmp_path / "stats.parquet"
    pd.DataFrame(
        {"customer_id": [1], "event_time": pd.to_datetime(["2024-01-01"]), "orders_7d": [3], "spend": [1.5]}
    ).to_parquet(parquet)

    def write(schema):
        path = tmp_path / "features.py"
        path.write_text(DEFINITIONS.format(path=json.dumps(str(parquet)), schema=json.dumps(schema)))
        return str(path)

    return write


def ok(*args):
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})  # wide enough that no table cell is cut
    assert result.exit_code == 0, result.output
    return result.output


def test_apply_list_show(loopml_env, definitions):
    path = definitions({"orders_7d": "int64", "spend": "float64"})
    first = ok("features", "apply", path)
    assert "customer_stats" in first and "new version" in first
    assert "unchanged" in ok("features", "apply", path) and "new version" not in ok("features", "apply", path)
    listed = ok("features", "list")
    assert "customer_stats" in listed and "orders_7d, spend" in listed and "churn" in listed
    ok("features", "apply", definitions({"orders_7d": "int64", "spend": "float64", "visits": "int64"}))
    shown = ok("features", "show", "customer_stats")
    assert "customer_stats v2" in shown and "visits" in shown and "604800s" in shown
    assert "orders_7d:int64, spend:float64" in shown  # version 1 in the history
    assert "customer_stats v1" in ok("features", "show", "customer_stats", "--version", "1")


def test_errors_are_one_line(loopml_env, definitions, tmp_path):
    missing = runner.invoke(app, ["features", "show", "nothing"])
    assert missing.exit_code == 1 and missing.output.startswith("Error") and "Traceback" not in missing.output
    bad = tmp_path / "bad.py"
    bad.write_text("from loopml import FeatureView\n")
    empty = runner.invoke(app, ["features", "apply", str(bad)])
    assert empty.exit_code == 2 and "defines no" in empty.output
    ttl = tmp_path / "ttl.py"
    ttl.write_text(
        "from loopml import Entity, FeatureView, FileSource\n"
        "v = FeatureView('v', [Entity('c', ['id'])], FileSource('x.parquet'), ttl='soon', schema={'a': 'int64'})\n"
    )
    wrong = runner.invoke(app, ["features", "apply", str(ttl)])
    assert wrong.exit_code == 2 and "ttl of feature view 'v'" in wrong.output
