"""drift(): which columns are flagged on data with known shifts, the test-choice rule, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

import loopml
from loopml.errors import ColumnNotFoundError, InvalidValueError
from loopml.monitoring.drift import FRAME_COLUMNS, DriftReport, DriftTest, drift, prediction_drift


# Two samples of one distribution still differ at the 5% level now and then (that is what alpha
# means): the seeds 1 and 3, used below, are a pair where no column of this frame does.
def frame(n: int, seed: int, *, shift: dict[str, float] | None = None, new_city: float = 0.0) -> pd.DataFrame:
    """Three numeric and two categorical columns; ``shift`` moves numeric means, ``new_city`` adds a category."""
    rng = np.random.default_rng(seed)
    shift = shift or {}
    cities = np.array(["paris", "lyon", "nice", "lille"])
    city = cities[rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])].astype(object)
    city[rng.random(n) < new_city] = "brest"
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n) + shift.get("age", 0) * 10,
            "income": rng.lognormal(10, 0.5, n) * math.exp(shift.get("income", 0) * 0.5),
            "score": rng.uniform(0, 1, n) + shift.get("score", 0),
            "city": city,
            "member": rng.random(n) < 0.3,
        }
    )


@pytest.mark.parametrize("n", [500, 5000])
def test_no_shift_flags_nothing(n):
    report = drift(frame(n, 1), frame(n, 3))
    assert report.drifted_columns == []
    assert report.share_drifted == 0.0 and not report.dataset_drift


@pytest.mark.parametrize("n", [500, 5000])
def test_one_shifted_column_is_the_only_one_flagged(n):
    report = drift(frame(n, 1), frame(n, 3, shift={"age": 0.5}))
    assert report.drifted_columns == ["age"]
    assert report.share_drifted == pytest.approx(0.2)
    assert not report.dataset_drift


@pytest.mark.parametrize("n", [500, 5000])
def test_several_shifted_columns_drift_the_dataset(n):
    report = drift(frame(n, 1), frame(n, 3, shift={"age": 0.6, "income": 0.8, "score": 0.5}))
    assert report.drifted_columns == ["age", "income", "score"]
    assert report.share_drifted == pytest.approx(0.6)
    assert report.dataset_drift


@pytest.mark.parametrize("n", [500, 5000])
def test_a_new_category_is_flagged(n):
    report = drift(frame(n, 1), frame(n, 3, new_city=0.2))
    assert report.drifted_columns == ["city"]


def test_the_dataset_drifts_when_the_share_reaches_drift_share():
    shifted = frame(5000, 2, shift={"age": 0.6, "income": 0.8})
    assert not drift(frame(5000, 1), shifted).dataset_drift
    assert drift(frame(5000, 1), shifted, drift_share=0.4).dataset_drift


def test_the_default_rule_picks_tests_by_kind_and_reference_size():
    small = drift(frame(1000, 1), frame(300, 2)).to_frame().set_index("column")
    large = drift(frame(1001, 1), frame(300, 2)).to_frame().set_index("column")
    assert small["test"].to_dict() == {
        "age": "ks",
        "income": "ks",
        "score": "ks",
        "city": "chisquare",
        "member": "chisquare",
    }
    assert large["test"].to_dict() == {
        "age": "wasserstein",
        "income": "wasserstein",
        "score": "wasserstein",
        "city": "jensenshannon",
        "member": "jensenshannon",
    }
    assert small["kind"].to_dict() == {
        "age": "numeric",
        "income": "numeric",
        "score": "numeric",
        "city": "categorical",
        "member": "categorical",
    }
    assert small.loc["age", "threshold"] == 0.05 and large.loc["age", "threshold"] == 0.1


def test_a_numeric_column_with_few_values_gets_the_categorical_tests():
    rng = np.random.default_rng(0)
    ref, cur = pd.DataFrame({"k": rng.integers(0, 5, 2000)}), pd.DataFrame({"k": rng.integers(0, 5, 2000)})
    assert drift(ref, cur)["k"].test == "jensenshannon"
    assert drift(ref.head(100), cur)["k"].test == "chisquare"
    assert drift(pd.DataFrame({"k": rng.integers(0, 6, 100)}), cur)["k"].test == "ks"


def test_reported_statistics_agree_with_scipy_on_the_raw_columns():
    ref, cur = frame(800, 1), frame(600, 2, shift={"age": 0.2}, new_city=0.05)
    report = drift(ref, cur)
    age = report["age"]
    expected = stats.ks_2samp(ref["age"], cur["age"])
    assert (age.statistic, age.p_value) == pytest.approx((expected.statistic, expected.pvalue), abs=1e-9)
    city = report["city"]
    table = pd.crosstab(
        np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref["city"].to_numpy(), cur["city"].to_numpy()]
    )
    chi2 = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert (city.statistic, city.p_value) == pytest.approx((chi2.statistic, chi2.pvalue), abs=1e-9)

    big_ref, big_cur = frame(5000, 1), frame(4000, 2, shift={"income": 0.1}, new_city=0.05)
    big = drift(big_ref, big_cur)
    income = big["income"]
    expected_w = stats.wasserstein_distance(big_ref["income"], big_cur["income"]) / np.std(big_ref["income"])
    assert income.statistic == pytest.approx(expected_w, rel=1e-9)
    assert math.isnan(income.p_value)
    labels = sorted(set(big_ref["city"]) | set(big_cur["city"]))
    p = big_ref["city"].value_counts().reindex(labels, fill_value=0).to_numpy()
    q = big_cur["city"].value_counts().reindex(labels, fill_value=0).to_numpy()
    assert big["city"].statistic == pytest.approx(jensenshannon(p, q), abs=1e-9)


def test_ks_false_positive_rate_over_many_seeds_is_near_alpha():
    rng = np.random.default_rng(2024)
    flagged = 0
    for _ in range(200):
        ref = pd.DataFrame({"x": rng.normal(size=200)})
        cur = pd.DataFrame({"x": rng.normal(size=150)})
        result = drift(ref, cur)["x"]
        assert result.test == "ks"
        flagged += result.drifted
    # binomial(200, 0.05): mean 10, sd 3.1; the bound is 2.6 sd above, and a test that never fires is broken too
    assert 0 < flagged / 200 <= 0.05 + 0.04


def test_chisquare_false_positive_rate_over_many_seeds_is_near_alpha():
    rng = np.random.default_rng(7)
    flagged = 0
    for _ in range(200):
        ref = pd.DataFrame({"c": rng.choice(list("abcde"), 300)})
        cur = pd.DataFrame({"c": rng.choice(list("abcde"), 200)})
        flagged += drift(ref, cur)["c"].drifted
    assert 0 < flagged / 200 <= 0.05 + 0.04


def test_distance_tests_do_not_flag_large_samples_of_one_distribution():
    for seed in range(20):
        report = drift(frame(5000, seed), frame(5000, seed + 1000))
        assert report.drifted_columns == [], seed


def test_forced_tests_and_thresholds_per_column():
    ref, cur = frame(5000, 1), frame(5000, 2, shift={"age": 0.05})
    report = drift(
        ref,
        cur,
        tests={"age": ("ks", 0.01), "income": DriftTest("psi", threshold=0.2), "city": "chisquare", "score": "js"},
    )
    rows = report.to_frame().set_index("column")
    assert rows.loc["age", "test"] == "ks" and rows.loc["age", "threshold"] == 0.01
    assert rows.loc["income", "test"] == "psi" and rows.loc["income", "threshold"] == 0.2
    assert rows.loc["city", "test"] == "chisquare" and rows.loc["score", "test"] == "jensenshannon"
    assert rows.loc["member", "test"] == "jensenshannon"  # not forced: the default rule
    # a small mean shift goes unnoticed by the normalised distance but not by KS on 5,000 rows
    assert drift(ref, cur)["age"].drifted is False
    assert report["age"].drifted is True


def test_one_test_for_every_column():
    report = drift(frame(2000, 1), frame(2000, 2), tests="psi")
    assert set(report.to_frame()["test"]) == {"psi"}


def test_columns_limits_what_is_tested():
    report = drift(frame(500, 1), frame(500, 2, shift={"age": 1}), columns=["age", "city"])
    assert [c.column for c in report.columns] == ["age", "city"]
    assert report.drifted_columns == ["age"] and report.share_drifted == 0.5


def test_to_frame_has_one_row_per_column_with_the_documented_columns():
    result = drift(frame(2000, 1), frame(2000, 2)).to_frame()
    assert list(result.columns) == list(FRAME_COLUMNS)
    assert len(result) == 5
    assert result["p_value"].isna().all()  # distances have no p-value
    assert result["n_reference"].eq(2000).all() and result["n_current"].eq(2000).all()


def test_missing_values_are_dropped_and_counted_out():
    ref, cur = frame(500, 1), frame(500, 3)
    cur.loc[:99, "age"] = np.nan
    cur.loc[:49, "city"] = None
    cur.loc[100:104, "income"] = np.inf
    report = drift(ref, cur)
    assert report["age"].n_current == 400
    assert report["city"].n_current == 450
    assert report["income"].n_current == 495
    assert report.drifted_columns == []


@pytest.mark.parametrize("test", [None, "ks", "wasserstein", "psi", "jensenshannon", "chisquare"])
def test_constant_columns_raise_no_warnings(test):
    ref = pd.DataFrame({"x": np.full(2000, 3.0)})
    same, moved = pd.DataFrame({"x": np.full(1500, 3.0)}), pd.DataFrame({"x": np.full(1500, 4.0)})
    assert drift(ref, same, tests=test)["x"].drifted is False
    assert drift(ref, moved, tests=test)["x"].drifted is True


def test_a_column_with_no_values_on_one_side_is_reported_not_flagged():
    ref = pd.DataFrame({"x": np.arange(100.0), "c": ["a"] * 100})
    cur = pd.DataFrame({"x": [np.nan] * 10, "c": [None] * 10})
    report = drift(ref, cur)
    for name in ("x", "c"):
        result = report[name]
        assert result.n_current == 0 and not result.drifted
        assert math.isnan(result.statistic) and math.isnan(result.p_value)


def test_a_numeric_reference_with_strings_in_the_current_column_tests_the_numbers():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=300)})
    cur = pd.DataFrame({"x": np.r_[rng.normal(size=290), np.zeros(10)].astype(object)})
    cur.loc[:9, "x"] = "oops"
    result = drift(ref, cur)["x"]
    assert result.kind == "numeric" and result.n_current == 290


def test_datetime_columns_are_left_out_by_default():
    ref, cur = frame(300, 1), frame(300, 2)
    ref["time"] = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    cur["time"] = pd.date_range("2024-03-01", periods=300, freq="h", tz="UTC")
    assert "time" not in [c.column for c in drift(ref, cur).columns]
    with pytest.raises(InvalidValueError, match="datetimes"):
        drift(ref, cur, columns=["time"])


def test_prediction_column_is_reported_apart_from_the_share():
    rng = np.random.default_rng(0)
    ref, cur = frame(3000, 1), frame(3000, 2)
    ref["pred"], cur["pred"] = rng.uniform(size=3000), rng.uniform(size=3000) ** 2
    report = drift(ref, cur, prediction="pred")
    assert report.prediction is not None and report.prediction.drifted and report.prediction_drift
    assert report.drifted_columns == [] and len(report.columns) == 5
    assert report.to_frame()["column"].iloc[-1] == "pred"
    assert report.to_dict()["prediction"]["column"] == "pred"


def test_prediction_drift_on_arrays():
    rng = np.random.default_rng(0)
    scores = prediction_drift(rng.uniform(size=2000), rng.uniform(size=2000) + 0.2)
    assert scores.column == "prediction" and scores.test == "wasserstein" and scores.drifted
    labels = prediction_drift(pd.Series(rng.choice(["yes", "no"], 500), name="label"), ["yes"] * 300 + ["no"] * 200)
    assert labels.column == "label" and labels.test == "chisquare" and labels.kind == "categorical"
    forced = prediction_drift(rng.normal(size=400), rng.normal(size=400), test="psi", threshold=0.3)
    assert (forced.test, forced.threshold) == ("psi", 0.3)


def test_top_level_exports():
    assert loopml.drift is drift
    assert loopml.DriftReport is DriftReport
    report = loopml.drift({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, {"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]})
    assert report.drifted_columns == []


# -- bad input ------------------------------------------------------------------------------------------------


def test_an_unknown_column_is_named_with_a_suggestion():
    with pytest.raises(ColumnNotFoundError, match=r"Column 'agee' is not in the reference data.*Did you mean 'age'"):
        drift(frame(100, 1), frame(100, 2), columns=["agee"])
    with pytest.raises(ColumnNotFoundError, match=r"tests names column 'incme'.*Did you mean 'income'"):
        drift(frame(100, 1), frame(100, 2), tests={"incme": "ks"})
    with pytest.raises(ColumnNotFoundError, match="No drift result for column 'nope'"):
        drift(frame(100, 1), frame(100, 2))["nope"]


def test_mismatched_columns_are_reported():
    with pytest.raises(ColumnNotFoundError, match=r"current data lacks 1 reference column\(s\): city"):
        drift(frame(100, 1), frame(100, 2).drop(columns=["city"]))
    with pytest.raises(ColumnNotFoundError, match="not in the current data"):
        drift(frame(100, 1), frame(100, 2).drop(columns=["age"]), columns=["age"])
    # extra current columns are ignored (data quality reports them)
    assert len(drift(frame(100, 1), frame(100, 2).assign(extra=1)).columns) == 5


def test_a_test_that_does_not_fit_the_column_kind_is_refused():
    with pytest.raises(InvalidValueError, match=r"ks test applies to numeric columns only, but 'city' is categorical"):
        drift(frame(100, 1), frame(100, 2), tests={"city": "ks"})
    with pytest.raises(InvalidValueError, match="use one of chisquare, jensenshannon, psi"):
        drift(frame(100, 1), frame(100, 2), tests={"member": "wasserstein"})


def test_unknown_tests_and_bad_thresholds_are_refused():
    with pytest.raises(InvalidValueError, match="Did you mean 'psi'"):
        drift(frame(100, 1), frame(100, 2), tests={"age": "pis"})
    with pytest.raises(InvalidValueError, match="must be below 1"):
        DriftTest("ks", 1.5)
    with pytest.raises(InvalidValueError, match="positive number"):
        DriftTest("psi", -0.1)
    with pytest.raises(InvalidValueError, match="name, threshold"):
        drift(frame(100, 1), frame(100, 2), tests={"age": 0.1})


@pytest.mark.parametrize(
    ("reference", "current", "message"),
    [
        (pd.DataFrame(), pd.DataFrame({"a": [1.0]}), "reference data is empty"),
        (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": []}), r"current data is empty \(0 rows"),
        ([1, 2, 3], pd.DataFrame({"a": [1.0]}), "must be a pandas DataFrame"),
        ({"a": [1, 2], "b": [1]}, pd.DataFrame({"a": [1.0]}), "not a table"),
    ],
)
def test_empty_or_malformed_frames_are_refused(reference, current, message):
    with pytest.raises(InvalidValueError, match=message):
        drift(reference, current)


def test_other_bad_arguments():
    with pytest.raises(InvalidValueError, match="drift_share"):
        drift(frame(50, 1), frame(50, 2), drift_share=0)
    with pytest.raises(InvalidValueError, match="list of column names"):
        drift(frame(50, 1), frame(50, 2), columns="age")
    with pytest.raises(InvalidValueError, match="unhashable"):
        drift(pd.DataFrame({"inputs": [{"a": 1}] * 3}), pd.DataFrame({"inputs": [{"a": 2}] * 3}))
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'score'"):
        drift(frame(50, 1), frame(50, 2), prediction="scores")
    with pytest.raises(InvalidValueError, match="duplicate columns: a"):
        drift(pd.DataFrame([[1, 2]], columns=["a", "a"]), pd.DataFrame({"a": [1]}))


def test_the_prediction_column_is_not_tested_twice_and_its_test_is_checked_first():
    ref, cur = frame(300, 1), frame(300, 3)
    report = drift(ref, cur, columns=["age", "score"], prediction="score")
    assert [c.column for c in report.columns] == ["age"] and report.prediction.column == "score"
    with pytest.raises(InvalidValueError, match="'city' is categorical"):
        drift(ref, cur, prediction="city", tests={"city": "ks"})


def test_prediction_drift_arguments():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=300), rng.normal(size=300)
    assert prediction_drift(ref, cur, DriftTest("psi"), threshold=0.5).threshold == 0.5
    with pytest.raises(InvalidValueError, match="needs a test"):
        prediction_drift(ref, cur, threshold=0.5)
    with pytest.raises(InvalidValueError, match="one-dimensional"):
        prediction_drift(np.ones((3, 2)), cur)
    with pytest.raises(InvalidValueError, match="empty"):
        prediction_drift([], cur)
