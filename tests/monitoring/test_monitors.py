"""Monitors: defined and stored on every backend, checked against the prediction log, alerts and results stored."""

from __future__ import annotations

import json

import numpy as np
import pytest

import loopml
from loopml.errors import DatasetNotFoundError, InvalidValueError, MonitorNotFoundError
from loopml.monitoring.monitors import delete_monitor, get_monitor, list_monitors, monitor, run_monitor
from loopml.monitoring.results import monitor_history, search_monitor_results
from loopml.monitoring.spec import MonitorSpec
from loopml.timestamps import now_ms
from tests.monitoring.logdata import SHIFTED, features, log_requests, predict, reference_frame

THRESHOLDS = {"drift_share": 0.2, "accuracy_min": 0.9, "error_rate_max": 0.05, "p99_latency_ms_max": 250}


def test_a_monitor_definition_round_trips_and_is_audited(client, store):
    created = monitor(
        "churn-watch", "churn", checks=["quality", "data_drift"], columns=["a", "b"], tests={"a": ("psi", 0.2)},
        thresholds={"drift_share": 0.3}, window={"since": "2h", "last": 500}, version="champion",
        schedule="*/15  * * * *", actions=[loopml.webhook("http://127.0.0.1:9/hook", timeout=2), "log"],
        client=client, actor="alice",
    )  # fmt: skip
    assert (created.name, created.model, created.created_by) == ("churn-watch", "churn", "alice")
    spec = MonitorSpec.from_json(get_monitor("churn-watch", client=client).spec)
    assert spec.checks == ("data_drift", "quality")  # a fixed order
    assert spec.columns == ("a", "b") and spec.tests == {"a": ("psi", 0.2)}
    assert (spec.window.last, spec.window.since, spec.version, spec.schedule) == (500, "2h", "champion", "*/15 * * * *")
    assert spec.threshold("drift_share") == 0.3 and spec.threshold("quality_problems_max") == 0
    assert [a["type"] for a in spec.actions] == ["webhook", "log"] and spec.actions[0]["timeout"] == 2.0
    assert MonitorSpec.from_json(spec.to_json()) == spec

    monitor("churn-watch", "churn", checks="operations", client=client, actor="bob")
    monitor("fraud-watch", "fraud", client=client)
    assert [m.name for m in list_monitors(client=client)] == ["churn-watch", "fraud-watch"]
    assert MonitorSpec.from_json(get_monitor("churn-watch", client=client).spec).checks == ("operations",)
    delete_monitor("fraud-watch", client=client, actor="alice")
    assert [m.name for m in list_monitors(client=client)] == ["churn-watch"]
    actions = [e.action for e in store.audit.list_events(target_type="monitor")]
    assert actions == ["monitor.create", "monitor.update", "monitor.create", "monitor.delete"]


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"checks": ["data_drift", "data_drfit"]}, "Unknown check 'data_drfit'.*Did you mean 'data_drift'"),
        ({"checks": []}, "checks must be a non-empty list"),
        ({"thresholds": {"drift_shar": 0.3}}, "Unknown threshold 'drift_shar'.*Did you mean 'drift_share'"),
        ({"thresholds": {"drift_share": 1.5}}, "'drift_share' must be a number in \\(0, 1\\]"),
        ({"thresholds": {"error_rate_max": -0.1}}, "'error_rate_max' must be a number in \\[0, 1\\]"),
        ({"thresholds": {"accuracy_min": "high"}}, "'accuracy_min' must be a finite number"),
        ({"checks": ["data_drift"], "thresholds": {"accuracy_min": 0.9}}, "applies to the performance check"),
        ({"window": {"lats": 10}}, "Unknown window key 'lats'.*Did you mean 'last'"),
        ({"window": {"last": 0}}, "window last must be a whole number"),
        ({"window": {"since": "yesterday"}}, "window since must be a duration"),
        ({"window": {"since": "1h", "until": "2h"}}, "window since \\('1h'\\) must come before until"),
        ({"window": {"since": "2026-01-02", "until": 1_767_225_600_000}}, "must come before until"),
        ({"tests": {"a": "kss"}}, "kss"),
        ({"version": 0}, "version must be"),
        ({"schedule": "every hour"}, "cron expression"),
        ({"actions": [loopml.webhook]}, None),  # a function is a callable action: accepted
        ({"actions": ["page-me"]}, "Unknown action 'page-me'"),
        ({"actions": [{"type": "email"}]}, "Unknown action"),
    ],
)
def test_bad_definitions_are_refused_and_store_nothing(sqlite_client, sqlite_store, arguments, match):
    if match is None:
        monitor("m", "churn", client=sqlite_client, **arguments)
        return
    with pytest.raises(InvalidValueError, match=match):
        monitor("m", "churn", client=sqlite_client, **arguments)
    assert list_monitors(client=sqlite_client) == []
    assert sqlite_store.audit.list_events(target_type="monitor") == []


def test_more_bad_input_gives_clear_errors(sqlite_client, sqlite_store):
    with pytest.raises(InvalidValueError, match="Invalid monitor name"):
        monitor("bad name", "churn", client=sqlite_client)
    with pytest.raises(InvalidValueError, match="webhook URL must start with http"):
        loopml.webhook("ftp://example.com")
    with pytest.raises(DatasetNotFoundError):
        monitor("m", "churn", reference="train@abcdef012345", client=sqlite_client)
    assert list_monitors(client=sqlite_client) == []
    monitor("churn-drift", "churn", client=sqlite_client)
    with pytest.raises(MonitorNotFoundError, match="Did you mean 'churn-drift'"):
        run_monitor("churn-drfit", client=sqlite_client)
    with pytest.raises(MonitorNotFoundError, match="Did you mean 'churn-drift'"):
        search_monitor_results("churn-drif", client=sqlite_client)
    # a monitor whose columns the data lacks: a clear error, and no result stored
    monitor("cols", "churn", columns=["a", "nope"], client=sqlite_client)
    log_requests(sqlite_store, "churn", features(40, seed=1))
    with pytest.raises(loopml.LoopMLError, match="'nope'"):
        run_monitor("cols", reference=reference_frame(), client=sqlite_client)
    assert sqlite_store.monitoring.list_results("cols") == []


def test_numpy_numbers_are_accepted_and_stored_as_json():
    spec = MonitorSpec.from_json(
        {"thresholds": {"quality_problems_max": np.int64(3)}, "window": {"last": np.int64(50)}}
    )
    assert spec.thresholds == {"quality_problems_max": 3} and spec.window.last == 50
    assert json.loads(json.dumps(spec.to_json()))["window"] == {"last": 50}
    with pytest.raises(InvalidValueError, match="The test for '\\*' must be"):
        MonitorSpec.from_json({"tests": ["psi"]})  # a spec edited by hand: the same message as the argument


def test_a_forced_test_on_a_column_the_window_lacks_does_not_fail_the_check(sqlite_client, sqlite_store):
    monitor("forced", "churn", checks=["data_drift", "quality"], tests={"a": "psi"}, client=sqlite_client)
    current = features(400, seed=5).drop(columns="a")  # a client stopped sending "a"
    result = run_monitor("forced", reference=reference_frame(), current=current, client=sqlite_client)
    assert result.drift is not None and [c.column for c in result.drift.columns] == ["b", "c", "d", "plan"]
    monitor("typo", "churn", checks=["data_drift"], tests={"aa": "psi"}, client=sqlite_client)
    with pytest.raises(loopml.LoopMLError, match=r"forces a drift test on column 'aa'.*Did you mean 'a'"):
        run_monitor("typo", reference=reference_frame(), current=current, client=sqlite_client)
    assert sqlite_store.monitoring.list_results("typo") == []


def test_a_version_column_that_holds_no_version_number_is_a_clear_error(sqlite_client):
    monitor("versions", "churn", checks=["data_drift"], client=sqlite_client)
    current = features(100, seed=6).assign(version="2.3.1")
    with pytest.raises(InvalidValueError, match=r"Column 'version' of the current data .* got '2\.3\.1'"):
        run_monitor("versions", reference=reference_frame(), current=current, client=sqlite_client)


def test_check_alerts_on_exactly_the_shifted_columns(client, store):
    monitor("churn-drift", "churn", checks=["data_drift", "prediction_drift", "quality"], thresholds={"drift_share": 0.2},
            client=client)  # fmt: skip
    reference = reference_frame()
    log_requests(store, "churn", features(1000, seed=1, shift=SHIFTED))

    result = run_monitor("churn-drift", reference=reference, client=client)

    assert result.status == "alert"
    kinds = {a.kind: a for a in result.alerts}
    assert set(kinds) >= {"data_drift", "prediction_drift"}
    assert kinds["data_drift"].details["drifted_columns"] == SHIFTED
    assert "2 of 5 columns drifted" in kinds["data_drift"].message
    assert result.drift is not None and result.drift.drifted_columns == SHIFTED
    stored = store.monitoring.list_results("churn-drift")[-1]
    assert stored.result_id == result.result.result_id and stored.summary["drifted_columns"] == SHIFTED
    assert {c["column"] for c in stored.figures["data_drift"]["columns"]} == set("abcd") | {"plan"}
    assert stored.figures["window"]["n_rows"] == 1000 and stored.figures["window"]["n_requests"] == 250
    assert stored.figures["data_drift"]["columns"][0]["distribution"]["reference"]  # the counts the report plots
    alerts = store.monitoring.list_alerts(monitor="churn-drift")
    assert [a.alert_id for a in alerts] == [a.alert_id for a in result.alerts]
    assert [e.action for e in store.audit.list_events(action="monitor.alert")] == ["monitor.alert"] * len(alerts)


def test_no_alert_on_unshifted_data(client, store):
    monitor("churn-drift", "churn", thresholds={"drift_share": 0.2, "error_rate_max": 0.05}, client=client)
    reference = reference_frame()
    current = features(1000, seed=1)
    log_requests(store, "churn", current, rows_per_request=1, labels=predict(current))

    result = run_monitor("churn-drift", reference=reference, client=client)

    assert (result.status, result.alerts) == ("ok", ())
    assert result.drift is not None and result.drift.drifted_columns == [] and not result.drift.prediction_drift
    assert result.quality is not None and result.quality.ok
    assert result.summary["accuracy"] == 1.0 and result.summary["error_rate"] == 0.0
    assert store.monitoring.list_alerts(monitor="churn-drift") == []


def test_performance_and_operations_thresholds(sqlite_client, sqlite_store):
    monitor("churn-live", "churn", checks=["performance", "operations"],
            thresholds={"accuracy_min": 0.9, "error_rate_max": 0.02, "p99_latency_ms_max": 100}, client=sqlite_client)  # fmt: skip
    current = features(400, seed=2)
    wrong = 1 - predict(current)
    wrong.iloc[:200] = predict(current).iloc[:200]  # half the labels agree: accuracy 0.5
    log_requests(sqlite_store, "churn", current, rows_per_request=1, labels=wrong, latency_ms=300.0)
    log_requests(sqlite_store, "churn", current.head(40), prefix="e", status=500)

    result = run_monitor("churn-live", reference=reference_frame(), client=sqlite_client)

    kinds = {a.kind: a for a in result.alerts}
    assert set(kinds) == {"performance", "operations"}
    assert kinds["performance"].details["crossed"]["accuracy"] == {"value": 0.5, "min": 0.9}
    assert set(kinds["operations"].details["crossed"]) == {"error_rate", "latency_p99_ms"}
    assert result.summary["n_labelled"] == 400 and result.summary["n_requests"] == 410


def test_too_few_labels_are_not_judged(sqlite_client, sqlite_store):
    monitor("churn-live", "churn", checks=["performance"], thresholds={"accuracy_min": 0.9, "min_labels": 50},
            client=sqlite_client)  # fmt: skip
    current = features(20, seed=3)
    log_requests(sqlite_store, "churn", current, rows_per_request=1, labels=1 - predict(current))
    result = run_monitor("churn-live", reference=reference_frame(), client=sqlite_client)
    assert result.status == "ok" and result.summary["accuracy"] == 0.0
    assert any("fewer than min_labels=50" in note for note in result.summary["notes"])


def test_a_threshold_on_a_metric_the_check_cannot_measure_is_noted(sqlite_client, sqlite_store):
    monitor("churn-auc", "churn", checks=["performance"], thresholds={"roc_auc_min": 0.8, "mae_max": 1, "min_labels": 5},
            client=sqlite_client)  # fmt: skip
    current = features(40, seed=3)
    log_requests(sqlite_store, "churn", current, rows_per_request=1, labels=1 - predict(current))
    result = run_monitor("churn-auc", reference=reference_frame(), client=sqlite_client)
    assert result.status == "ok" and result.summary["roc_auc"] is None  # the log holds classes, not scores
    assert any("roc_auc_min, mae_max not judged" in note for note in result.summary["notes"])


def test_the_window_is_the_newest_requests_of_the_watched_version(sqlite_client, sqlite_store):
    start = now_ms() - 3_600_000
    log_requests(sqlite_store, "churn", features(800, seed=4, shift=["a"]), start_ms=start, step_ms=1000, prefix="old")
    log_requests(sqlite_store, "churn", features(800, seed=5), start_ms=now_ms() - 60_000, step_ms=10, prefix="new")
    log_requests(sqlite_store, "churn", features(800, seed=6, shift=["c"]), version=2, role="shadow", prefix="shadow")
    monitor("latest", "churn", checks=["data_drift"], window={"last": 200}, thresholds={"drift_share": 0.2},
            client=sqlite_client)  # fmt: skip
    result = run_monitor("latest", reference=reference_frame(), client=sqlite_client)
    assert result.figures["window"]["n_requests"] == 200 and result.status == "ok"  # the old, shifted data is out
    assert result.result.version == 1

    monitor("all-of-it", "churn", checks=["data_drift"], window={"since": "2h"}, client=sqlite_client)
    whole = run_monitor("all-of-it", reference=reference_frame(), client=sqlite_client)
    assert whole.figures["window"]["n_requests"] == 400  # the shadow's copies are not traffic

    monitor("shadow", "churn", checks=["data_drift"], version=2, window={"since": "2h"},
            thresholds={"drift_share": 0.2}, client=sqlite_client)  # fmt: skip
    shadow = run_monitor("shadow", reference=reference_frame(), client=sqlite_client)
    assert shadow.result.version == 2 and shadow.drift is not None and shadow.drift.drifted_columns == ["c"]


def test_an_empty_window_is_an_error_result_not_an_exception(sqlite_client, sqlite_store):
    monitor("quiet", "churn", window={"since": "1h"}, client=sqlite_client)
    result = run_monitor("quiet", client=sqlite_client)
    assert result.status == "error" and "no predictions of churn" in result.summary["errors"][0]
    assert [r.status for r in sqlite_store.monitoring.list_results("quiet")] == ["error"]


def test_a_dataset_reference_and_a_dataframe_as_current(sqlite_client, sqlite_store):
    run = sqlite_client.create_run("monitoring", capture=False)
    dataset = sqlite_client.log_dataset(run.info.run_id, reference_frame(), "churn-train", context="train")
    monitor("by-ref", "churn", checks=["data_drift", "prediction_drift", "operations"], reference=dataset.ref,
            thresholds={"drift_share": 0.2}, client=sqlite_client)  # fmt: skip
    current = features(1000, seed=7, shift=["a"])
    result = run_monitor("by-ref", current=current.assign(prediction=predict(current)), client=sqlite_client)
    assert result.drift is not None and result.drift.drifted_columns == ["a"]
    assert result.figures["reference"] == {"source": "dataset", "dataset": dataset.ref, "run_id": None, "n_rows": 3000}
    assert result.figures["window"]["source"] == "frame"
    assert "operations skipped" in " ".join(result.summary.get("notes", []))


def test_results_read_back_as_frames(sqlite_client, sqlite_store):
    monitor(
        "churn-drift",
        "churn",
        checks=["data_drift", "operations"],
        thresholds={"drift_share": 0.2},
        client=sqlite_client,
    )
    log_requests(sqlite_store, "churn", features(1000, seed=8))
    run_monitor("churn-drift", reference=reference_frame(), client=sqlite_client)
    log_requests(sqlite_store, "churn", features(1000, seed=9, shift=SHIFTED), prefix="s")
    run_monitor(
        "churn-drift", reference=reference_frame(), current=features(1000, seed=9, shift=SHIFTED), client=sqlite_client
    )

    frame = search_monitor_results("churn-drift", client=sqlite_client)
    assert list(frame["status"]) == ["ok", "alert"] and list(frame["alerts"]) == ["", "data_drift"]
    assert list(frame["drifted_columns"]) == ["", "b, d"]
    assert frame["share_drifted"].tolist() == [0.0, 0.4] and str(frame["time"].dt.tz) == "UTC"
    assert frame["error_rate"].iloc[0] == 0.0 and frame["error_rate"].isna().iloc[1]  # a frame has no statuses
    history = monitor_history("churn-drift", client=sqlite_client)
    assert len(history) == 10 and set(history.loc[history["drifted"], "column"]) == {"b", "d"}
    assert list(history.columns) == ["time", "column", "test", "statistic", "p_value", "drifted", "share_drifted"]
