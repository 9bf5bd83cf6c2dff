"""Property-based fuzzing of the REST API: every request schemathesis generates from the
OpenAPI document must be answered without a 5xx (``not_a_server_error``).

The app runs in-process (ASGI, no socket) over a fresh SQLite store; each operation gets a
bounded number of examples so the file stays fast.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from loopml.server.app import create_app
from loopml.store import Store, open_store

_tmp = tempfile.TemporaryDirectory(prefix="loopml-fuzz-")
_STORE: Store = open_store(f"sqlite:///{Path(_tmp.name) / 'l.db'}", artifacts_url=str(Path(_tmp.name) / "artifacts"))
app = create_app(_STORE)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
# The coverage phase enumerates boundary cases without regard to max_examples (minutes on 2 cores);
# the 5xx it found are pinned by the regression tests below. Examples and fuzzing stay on.
schema.config.phases.coverage.enabled = False


@pytest.fixture(scope="module", autouse=True)
def _close_store() -> Iterator[None]:
    yield
    _STORE.close()
    _tmp.cleanup()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text


# -- regressions for 5xx the fuzzer found -----------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "reason"),
    [
        ("<", [None], "needs a single value"),
        ("=", [1, 2], "needs a single value"),
        ("in", 3, "needs a list value"),
        ("not in", "abc", "needs a list value"),
        ("in", [1, None], "cannot hold null"),
        ("<", None, "null only compares"),
        ("like", 5, "needs a string pattern"),
        ("<", False, "only compare with"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/runs/search", "/api/v1/models/search"])
def test_a_filter_value_that_does_not_fit_its_operator_is_refused_with_422(
    api: object, path: str, op: str, value: object, reason: str
) -> None:
    comparison = {"type": "comparison", "kind": "tag", "key": "t", "op": op, "value": value}
    response = api.post(path, json={"filter": {"type": "not", "item": comparison}})  # type: ignore[attr-defined]
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "InvalidFilterError" and reason in error["message"]


@pytest.mark.parametrize("path", ["/api/v1/runs/search", "/api/v1/models/search"])
def test_well_formed_filters_still_search(api: object, path: str) -> None:
    for op, value in [("in", ["a", 1]), ("=", None), ("!=", None), ("like", "a%"), ("<", 3), ("=", True)]:
        comparison = {"type": "comparison", "kind": "tag", "key": "t", "op": op, "value": value}
        response = api.post(path, json={"filter": comparison})  # type: ignore[attr-defined]
        assert response.status_code == 200, (op, response.text)
