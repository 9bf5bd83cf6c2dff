"""Performance per bucket and segment agrees with scikit-learn on each group; operations and join_labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from loopml.errors import ColumnNotFoundError, InvalidValueError
from loopml.monitoring.operations import operations
from loopml.monitoring.performance import (
    classification_metrics,
    join_labels,
    performance,
    regression_metrics,
)

START = pd.Timestamp("2024-01-01", tz="UTC")


def times(rng: np.random.Generator, n: int, hours: int = 6) -> pd.Series:
    return pd.Series(START + pd.to_timedelta(rng.uniform(0, hours * 3600, n), unit="s"))


def groups(frame: pd.DataFrame, bucket: str, by: str):
    keyed = frame.assign(bucket=frame["time"].dt.floor(bucket))
    return keyed.groupby(["bucket", by])


def test_binary_metrics_per_bucket_and_segment_match_sklearn():
    rng = np.random.default_rng(0)
    n = 6000
    label = rng.integers(0, 2, n)
    score = np.clip(label * 0.35 + rng.uniform(0, 0.65, n), 0, 1)
    frame = pd.DataFrame(
        {"time": times(rng, n), "label": label, "prediction": (score > 0.5).astype(int), "score": score}
    )
    frame["segment"] = rng.choice(["web", "app"], n)
    result = performance(frame, bucket="1h", by="segment", score="score")
    assert list(result.columns) == [
        "bucket",
        "segment",
        "n",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
    ]
    expected = groups(frame, "1h", "segment")
    assert len(result) == expected.ngroups == 12
    for row in result.itertuples(index=False):
        part = expected.get_group((row.bucket, row.segment))
        y, p, s = part["label"], part["prediction"], part["score"]
        assert row.n == len(part)
        assert row.accuracy == pytest.approx(metrics.accuracy_score(y, p), abs=1e-12)
        assert row.precision == pytest.approx(metrics.precision_score(y, p), abs=1e-12)
        assert row.recall == pytest.approx(metrics.recall_score(y, p), abs=1e-12)
        assert row.f1 == pytest.approx(metrics.f1_score(y, p), abs=1e-12)
        assert row.roc_auc == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-9)
        assert row.log_loss == pytest.approx(metrics.log_loss(y, s), abs=1e-9)


def test_auc_with_tied_scores_and_a_one_class_group():
    frame = pd.DataFrame(
        {
            "label": [1, 0, 1, 0, 1, 1, 1],
            "prediction": [1, 0, 0, 0, 1, 1, 1],
            "score": [0.8, 0.8, 0.3, 0.3, 0.9, 0.7, 0.6],
            "group": ["a", "a", "a", "a", "b", "b", "b"],
        }
    )
    result = classification_metrics(frame, by="group", score="score").set_index("group")
    part = frame[frame.group == "a"]
    assert result.loc["a", "roc_auc"] == pytest.approx(metrics.roc_auc_score(part.label, part.score))
    assert np.isnan(result.loc["b", "roc_auc"])  # only positives: AUC is undefined
    assert result.loc["b", "precision"] == 1.0


def test_multiclass_metrics_are_macro_averages_like_sklearn():
    rng = np.random.default_rng(1)
    n = 3000
    label = rng.choice(["cat", "dog", "bird"], n)
    prediction = np.where(rng.random(n) < 0.7, label, rng.choice(["cat", "dog", "bird", "fish"], n))
    frame = pd.DataFrame({"label": label, "prediction": prediction, "shop": rng.choice(["x", "y"], n)})
    result = performance(frame, by="shop").set_index("shop")
    for shop, part in frame.groupby("shop"):
        y, p = part["label"], part["prediction"]
        row = result.loc[shop]
        assert row["precision"] == pytest.approx(metrics.precision_score(y, p, average="macro", zero_division=0))
        assert row["recall"] == pytest.approx(metrics.recall_score(y, p, average="macro", zero_division=0))
        assert row["f1"] == pytest.approx(metrics.f1_score(y, p, average="macro", zero_division=0))
        assert np.isnan(row["roc_auc"])


def test_regression_metrics_per_bucket_match_sklearn():
    rng = np.random.default_rng(2)
    n = 4000
    label = rng.normal(10, 3, n)
    frame = pd.DataFrame({"time": times(rng, n), "label": label, "prediction": label + rng.normal(0, 1, n)})
    frame["region"] = rng.choice(["eu", "us"], n)
    result = performance(frame, bucket="2h", by="region")
    assert list(result.columns) == ["bucket", "region", "n", "mae", "rmse", "r2", "mape"]
    expected = groups(frame, "2h", "region")
    assert len(result) == expected.ngroups
    for row in result.itertuples(index=False):
        part = expected.get_group((row.bucket, row.region))
        y, p = part["label"], part["prediction"]
        assert row.mae == pytest.approx(metrics.mean_absolute_error(y, p), rel=1e-12)
        assert row.rmse == pytest.approx(metrics.root_mean_squared_error(y, p), rel=1e-12)
        assert row.r2 == pytest.approx(metrics.r2_score(y, p), rel=1e-9)
        assert row.mape == pytest.approx(metrics.mean_absolute_percentage_error(y, p), rel=1e-12)


def test_r2_of_a_constant_label_follows_sklearn():
    frame = pd.DataFrame({"label": [2.5, 2.5, 2.5, 2.5], "prediction": [2.5, 2.5, 3.0, 2.5], "g": [0, 0, 1, 1]})
    result = regression_metrics(frame, by="g").set_index("g")
    assert result.loc[0, "r2"] == metrics.r2_score([2.5, 2.5], [2.5, 2.5]) == 1.0
    assert result.loc[1, "r2"] == metrics.r2_score([2.5, 2.5], [3.0, 2.5]) == 0.0


def test_rows_without_labels_are_left_out_and_no_grouping_gives_one_row():
    frame = pd.DataFrame({"label": [1, 0, None, 1], "prediction": [1, 1, 0, 1]})
    result = classification_metrics(frame)
    assert result["n"].tolist() == [3]
    assert result["accuracy"].iloc[0] == pytest.approx(2 / 3)


def test_task_is_guessed_from_the_labels():
    assert "mae" in performance(pd.DataFrame({"label": [0.5, 1.5], "prediction": [1.0, 1.0]})).columns
    assert "accuracy" in performance(pd.DataFrame({"label": [0.0, 1.0], "prediction": [1.0, 1.0]})).columns
    assert "accuracy" in performance(pd.DataFrame({"label": ["a", "b"], "prediction": ["a", "a"]})).columns


def test_whole_labels_with_fractional_predictions_are_regression():
    # scikit-learn's diabetes target is whole numbers held as floats; a regressor's outputs are not
    rng = np.random.default_rng(4)
    label = rng.integers(25, 346, 400).astype(float)
    frame = pd.DataFrame({"label": label, "prediction": label + rng.normal(0, 30, 400)})
    result = performance(frame)
    assert list(result.columns) == ["n", "mae", "rmse", "r2", "mape"]
    assert result["mae"].iloc[0] == pytest.approx(metrics.mean_absolute_error(frame["label"], frame["prediction"]))
    integers = pd.DataFrame({"label": [1, 2, 4], "prediction": [1.5, 2.5, 3.5]})
    assert "rmse" in performance(integers).columns


def test_labels_sent_as_text_compare_with_numeric_predictions():
    rng = np.random.default_rng(5)
    label, prediction, score = rng.integers(0, 2, 300), rng.integers(0, 2, 300), rng.uniform(size=300)
    frame = pd.DataFrame({"label": label.astype(str), "prediction": prediction, "score": score})
    row = performance(frame, score="score").iloc[0]
    assert row["accuracy"] == pytest.approx(metrics.accuracy_score(label, prediction))
    assert row["precision"] == pytest.approx(metrics.precision_score(label, prediction))
    assert row["roc_auc"] == pytest.approx(metrics.roc_auc_score(label, score))
    with pytest.raises(InvalidValueError, match="'label' and 'prediction' mix strings and numbers"):
        performance(frame.assign(label=np.where(label, "yes", "no")))


def test_categorical_labels_and_predictions_with_different_categories():
    frame = pd.DataFrame(
        {
            "label": pd.Categorical(["yes", "no", "yes", "no"]),
            "prediction": pd.Categorical(["yes", "yes", "maybe", "no"]),
        }
    )
    row = performance(frame).iloc[0]
    y, p = frame["label"].astype(str), frame["prediction"].astype(str)
    assert row["accuracy"] == 0.5
    assert row["f1"] == pytest.approx(metrics.f1_score(y, p, average="macro", zero_division=0))


def test_bad_performance_input():
    frame = pd.DataFrame({"label": [1, 0], "prediction": [1, 1], "time": ["x", "y"]})
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'label'"):
        performance(frame, label="labels")
    with pytest.raises(InvalidValueError, match="offset alias"):
        performance(frame, bucket="every hour")
    with pytest.raises(InvalidValueError, match="must hold datetimes"):
        performance(frame, bucket="1h")
    with pytest.raises(ColumnNotFoundError, match="segment"):
        performance(frame, by="segment")
    with pytest.raises(InvalidValueError, match="task must be"):
        performance(frame, task="ranking")


def test_operations_per_bucket_match_numpy():
    rng = np.random.default_rng(3)
    n = 5000
    log = pd.DataFrame(
        {
            "time": times(rng, n, hours=3),
            "latency_ms": rng.exponential(20, n),
            "status": rng.choice([200, 200, 200, 200, 422, 503], n),
            "model": "churn",
            "version": rng.choice(["1", "2"], n),
        }
    )
    result = operations(log, bucket="1h", by=["model", "version"])
    assert list(result.columns) == [
        "bucket",
        "model",
        "version",
        "n",
        "client_errors",
        "server_errors",
        "error_rate",
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
    ]
    keyed = log.assign(bucket=log["time"].dt.floor("1h")).groupby(["bucket", "version"])
    assert len(result) == keyed.ngroups == 6
    for row in result.itertuples(index=False):
        part = keyed.get_group((row.bucket, row.version))
        assert row.n == len(part)
        assert row.client_errors == (part["status"] == 422).sum()
        assert row.server_errors == (part["status"] == 503).sum()
        assert row.error_rate == pytest.approx(((part["status"] >= 400).sum()) / len(part))
        p50, p95, p99 = np.percentile(part["latency_ms"], [50, 95, 99])
        assert (row.latency_p50_ms, row.latency_p95_ms, row.latency_p99_ms) == pytest.approx((p50, p95, p99))


@pytest.mark.parametrize("bucket", [None, "1h"])
def test_operations_of_an_empty_log_is_an_empty_table(bucket):
    log = pd.DataFrame({"time": pd.to_datetime([], utc=True), "latency_ms": [], "status": [], "version": []})
    result = operations(log, bucket=bucket, by="version")
    assert result.empty and list(result.columns)[-3:] == ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]


def test_join_labels_keeps_the_last_label_per_request():
    log = pd.DataFrame(
        {
            "request_id": ["r1", "r2", "r3"],
            "time": [START, START + pd.Timedelta("1min"), START + pd.Timedelta("2min")],
            "model": "churn",
            "version": "3",
            "inputs": [{"age": 30}, {"age": 40}, {"age": 50}],
            "outputs": [1, 0, 1],
            "latency_ms": [3.0, 4.0, 5.0],
            "status": [200, 200, 200],
        }
    )
    feedback = pd.DataFrame(
        {
            "request_id": ["r1", "r1", "r2", "r2", "r9"],
            "label": [0, 1, 1, 0, 1],
            "time": [START + pd.Timedelta(h, "h") for h in (5, 9, 7, 7)] + [START],
        }
    )
    joined = join_labels(log, feedback)
    assert joined["request_id"].tolist() == ["r1", "r2"]
    assert joined["label"].tolist() == [1, 0]  # latest time wins; on a tie, the later row
    assert joined["prediction"].tolist() == [1, 0]
    assert joined["label_time"].tolist() == [START + pd.Timedelta(9, "h"), START + pd.Timedelta(7, "h")]
    assert joined["time"].tolist() == log["time"].head(2).tolist()
    everything = join_labels(log, feedback, how="left")
    assert everything["request_id"].tolist() == ["r1", "r2", "r3"] and pd.isna(everything["label"].iloc[2])
    assert performance(joined)["accuracy"].iloc[0] == 1.0


def test_join_labels_needs_request_ids():
    with pytest.raises(ColumnNotFoundError, match="request_id"):
        join_labels(pd.DataFrame({"id": [1]}), pd.DataFrame({"request_id": [1], "label": [1]}))
    with pytest.raises(ColumnNotFoundError, match="label"):
        join_labels(pd.DataFrame({"request_id": [1]}), pd.DataFrame({"request_id": [1], "labels": [1]}))
