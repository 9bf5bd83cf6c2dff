"""Alert actions: a webhook on a real local HTTP server, a failing webhook, a Python callable, a log line."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import loopml
from loopml.entities.monitoring import Alert
from loopml.monitoring import actions
from loopml.monitoring.monitors import monitor, run_monitor
from tests.monitoring.logdata import SHIFTED, features, log_requests, reference_frame

received_by_name: list[Alert] = []


def record_alert(alert: Alert) -> None:
    """A module-level action: importable by name from any process."""
    received_by_name.append(alert)


class Hook:
    """A real HTTP server on a free 127.0.0.1 port that keeps every JSON body POSTed to it."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def drifted(store: Any) -> None:
    log_requests(store, "churn", features(1000, seed=1, shift=SHIFTED))


def test_a_webhook_receives_each_alert_as_json(sqlite_client, sqlite_store, hook, monkeypatch):
    monkeypatch.setenv("LOOPML_TEST_HOOK_TOKEN", "s3cret")
    monitor("churn-drift", "churn", checks=["data_drift"], thresholds={"drift_share": 0.2},
            actions=[loopml.webhook(hook.url, headers={"Authorization": "env:LOOPML_TEST_HOOK_TOKEN"})],
            client=sqlite_client)  # fmt: skip
    drifted(sqlite_store)

    result = run_monitor("churn-drift", reference=reference_frame(), client=sqlite_client)

    [alert] = result.alerts
    [body] = hook.bodies
    assert body == {"alert_id": alert.alert_id, "monitor": "churn-drift", "result_id": result.result.result_id,
                    "time": alert.time, "model": "churn", "version": 1, "kind": "data_drift",
                    "message": alert.message, "details": json.loads(json.dumps(alert.details))}  # fmt: skip
    assert body["details"]["drifted_columns"] == SHIFTED
    assert hook.headers[0]["Authorization"] == "s3cret"  # read from the environment, never stored
    assert "s3cret" not in json.dumps(sqlite_store.monitoring.get_monitor("churn-drift").spec)
    [outcome] = result.actions
    assert (outcome.ok, outcome.status_code, outcome.alert_id) == (True, 204, alert.alert_id)


def test_a_failing_webhook_is_recorded_not_raised(client, store, caplog):
    url = f"http://127.0.0.1:{closed_port()}/alerts"
    calls: list[Alert] = []
    monitor("churn-drift", "churn", checks=["data_drift"], thresholds={"drift_share": 0.2},
            actions=[loopml.webhook(url, timeout=2), calls.append], client=client)  # fmt: skip
    drifted(store)

    with caplog.at_level(logging.WARNING, logger="loopml.monitoring"):
        result = run_monitor("churn-drift", reference=reference_frame(), client=client)

    assert result.status == "alert" and len(result.alerts) == 1
    failed, called = result.actions
    assert not failed.ok and "ConnectError" in failed.error and failed.action == f"webhook {url}"
    assert called.ok and [a.alert_id for a in calls] == [result.alerts[0].alert_id]  # the next action still ran
    assert any("webhook" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
    [event] = store.audit.list_events(action="monitor.action.failed")
    assert event.target == "churn-drift" and event.evidence["alert_id"] == result.alerts[0].alert_id
    assert store.monitoring.list_alerts(monitor="churn-drift")  # the alert itself is stored


def test_a_callable_is_called_with_the_alert_and_errors_are_contained(sqlite_client, sqlite_store):
    seen: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("pager down")

    monitor("churn-drift", "churn", checks=["data_drift", "prediction_drift"], thresholds={"drift_share": 0.2},
            actions=[actions.call(seen.append), broken], client=sqlite_client)  # fmt: skip
    spec_actions = sqlite_store.monitoring.get_monitor("churn-drift").spec["actions"]
    assert spec_actions == [{"type": "callable", "target": "builtins.list.append"},
                            {"type": "callable", "target": f"{__name__}.{broken.__qualname__}"}]  # fmt: skip
    drifted(sqlite_store)

    result = run_monitor("churn-drift", reference=reference_frame(), client=sqlite_client)

    assert [a.kind for a in seen] == ["data_drift", "prediction_drift"]
    assert all(isinstance(a, Alert) and a.alert_id > 0 for a in seen)
    errors = [o.error for o in result.actions if not o.ok]
    assert errors == ["RuntimeError: pager down"] * 2


def test_a_module_level_function_runs_from_another_process_by_name(sqlite_client, sqlite_store):
    monitor("churn-drift", "churn", checks=["data_drift"], thresholds={"drift_share": 0.2}, actions=[record_alert],
            client=sqlite_client)  # fmt: skip
    actions.forget_callables("churn-drift")  # as in a fresh process: only the stored name is known
    received_by_name.clear()
    drifted(sqlite_store)

    result = run_monitor("churn-drift", reference=reference_frame(), client=sqlite_client)

    assert [a.alert_id for a in received_by_name] == [a.alert_id for a in result.alerts]


def test_a_lambda_cannot_run_elsewhere_and_says_why(sqlite_client, sqlite_store):
    monitor("churn-drift", "churn", checks=["data_drift"], thresholds={"drift_share": 0.2},
            actions=[lambda alert: None], client=sqlite_client)  # fmt: skip
    actions.forget_callables("churn-drift")
    drifted(sqlite_store)
    [outcome] = run_monitor("churn-drift", reference=reference_frame(), client=sqlite_client).actions
    assert not outcome.ok and "only runs in the process that defined the monitor" in outcome.error


def test_the_log_action_writes_a_warning(sqlite_client, sqlite_store, caplog):
    monitor("churn-drift", "churn", checks=["data_drift"], thresholds={"drift_share": 0.2}, actions=["log"],
            client=sqlite_client)  # fmt: skip
    drifted(sqlite_store)
    with caplog.at_level(logging.WARNING, logger="loopml.monitoring"):
        run_monitor("churn-drift", reference=reference_frame(), client=sqlite_client)
    [record] = [r for r in caplog.records if r.name == "loopml.monitoring"]
    assert record.levelno == logging.WARNING
    assert "churn-drift alert on churn v1 [data_drift]: 2 of 5 columns drifted" in record.getMessage()


def test_no_alert_runs_no_action(sqlite_client, sqlite_store, hook):
    monitor("churn-drift", "churn", checks=["data_drift"], actions=[loopml.webhook(hook.url)], client=sqlite_client)
    log_requests(sqlite_store, "churn", features(1000, seed=1))
    assert run_monitor("churn-drift", reference=reference_frame(), client=sqlite_client).actions == ()
    assert hook.bodies == []
