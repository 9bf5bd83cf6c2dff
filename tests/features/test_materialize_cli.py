"""``loopml features materialize`` / ``materialize-incremental`` against an embedded store under LOOPML_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.main import app
from loopml.features import online_features
from loopml.features.online import ReadRequest, open_online_store
from tests.features.online_helpers import apply, parquet_view

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("LOOPML_DB_URL", "LOOPML_TRACKING_URI", "LOOPML_ARTIFACTS_URL", "LOOPML_ONLINE_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    loopml.set_tracking_uri(None)
    yield tmp_path
    for store in online_features._online.values():
        store.close()
    online_features._online.clear()
    from loopml.tracking import fluent

    if fluent._client is not None:
        fluent._client.close()
        fluent._client = None
        fluent._client_key = None
    loopml.set_tracking_uri(None)


def test_materialize_commands_fill_the_embedded_online_store(home: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    df = pd.DataFrame(
        {
            "customer_id": [1, 2, 1],
            "event_time": [now - timedelta(hours=h) for h in (3, 2, 1)],
            "spend": [1.0, 2.0, 3.0],
        }
    )
    apply(loopml.get_tracking_client().store, [parquet_view(home, df, "spend", {"spend": "float64"})])
    start = (now - timedelta(days=1)).isoformat()
    result = runner.invoke(app, ["features", "materialize", start, (now - timedelta(minutes=90)).isoformat()])
    assert result.exit_code == 0, result.output
    assert "spend" in result.output and "Keys written" in result.output
    online = open_online_store(f"sqlite:///{home / 'online.db'}")  # beside loopml.db, the embedded default
    [rows] = online.read([ReadRequest("spend", ("customer_id",), [(1,), (2,)])])
    assert [r.values["spend"] if r else None for r in rows] == [1.0, 2.0]
    result = runner.invoke(app, ["features", "materialize-incremental", "now", "--view", "spend"])
    assert result.exit_code == 0, result.output
    [rows] = online.read([ReadRequest("spend", ("customer_id",), [(1,)])])
    assert rows[0] is not None and rows[0].values["spend"] == 3.0
    online.close()
    bad = runner.invoke(app, ["features", "materialize", "yesterday"])
    assert bad.exit_code != 0 and "START" in bad.output
