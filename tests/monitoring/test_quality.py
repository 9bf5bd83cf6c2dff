"""quality(): missing values, out-of-range values, unseen categories, type violations, constant columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.errors import InvalidValueError
from loopml.models.signature import ColumnSpec, Signature
from loopml.monitoring.quality import FRAME_COLUMNS, QualityReport, quality


def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, 1000),
            "income": np.r_[rng.normal(50_000, 10_000, 990), [np.nan] * 10],
            "city": rng.choice(["paris", "lyon", "nice"], 1000),
            "active": rng.random(1000) < 0.5,
        }
    )


def checks(report: QualityReport) -> dict[tuple[str, str], int]:
    return {(p.column, p.check): p.count for p in report.problems}


def test_clean_data_has_no_problems():
    ref = reference()
    report = quality(ref, ref.sample(frac=0.5, random_state=1))
    assert report.ok and report.problems == ()
    assert list(report.to_frame().columns) == list(FRAME_COLUMNS)
    assert report.to_frame()["missing"].tolist() == [0, report.to_frame().loc[1, "missing"], 0, 0]


def test_each_problem_is_counted():
    ref = reference()
    cur = ref.head(200).copy()
    cur["age"] = cur["age"].astype(object)
    cur.loc[0:4, "age"] = "forty"  # strings in a numeric column
    cur.loc[5:7, "age"] = 150  # out of range (above the reference max)
    cur.loc[8, "age"] = -1  # out of range (below the min)
    cur.loc[10:29, "income"] = np.nan  # 20 missing where the reference has 1%
    cur["city"] = cur["city"].astype(object)  # a feed that mixes types arrives as object
    cur.loc[30:35, "city"] = "brest"  # unseen category
    cur.loc[36:37, "city"] = 7  # a number in a string column
    cur["active"] = True  # constant where the reference varies
    report = quality(ref, cur)
    assert checks(report) == {
        ("age", "type_violations"): 5,
        ("age", "out_of_range"): 4,
        ("income", "missing_values"): report.to_frame().set_index("column").loc["income", "missing"],
        ("city", "unseen_categories"): 8,
        ("city", "type_violations"): 2,
        ("active", "constant"): 200,
    }
    rows = report.to_frame().set_index("column")
    assert rows.loc["income", "missing"] >= 20
    assert rows.loc["income", "reference_missing_share"] == pytest.approx(0.01)
    assert bool(rows.loc["active", "constant"]) is True
    city = next(c for c in report.columns if c.column == "city")
    assert set(city.unseen_values) == {"brest", "7"}
    assert not report.ok


def test_missing_and_unexpected_columns():
    ref = reference()
    cur = ref.drop(columns=["city"]).assign(extra=1)
    report = quality(ref, cur)
    assert checks(report) == {("city", "missing_column"): 1000, ("extra", "unexpected_column"): 1000}
    assert report.unexpected_columns == ("extra",)
    assert not report.to_frame().set_index("column").loc["city", "present"]


def test_tolerance_lets_small_shares_pass():
    ref = reference()
    cur = ref.copy()
    cur.loc[0:4, "city"] = "brest"  # 0.5% of the rows
    assert ("city", "unseen_categories") in checks(quality(ref, cur))
    assert quality(ref, cur, tolerance=0.01).ok


def test_signature_sets_types_bounds_categories_and_nullability():
    signature = Signature(
        (
            ColumnSpec("age", "integer", min=18, max=65),
            ColumnSpec("city", "string", categories=("paris", "lyon", "nice", "brest")),
            ColumnSpec("income", "float", nullable=False),
        )
    )
    ref = reference()
    cur = ref.head(100).copy()
    cur.loc[0:2, "age"] = 70  # inside the reference range, outside the signature's
    cur.loc[3, "city"] = "brest"  # listed by the signature
    cur.loc[4, "income"] = np.nan
    report = quality(ref, cur, signature=signature)
    found = checks(report)
    assert found[("income", "missing_values")] == 1  # not nullable: any missing value is a problem
    assert found[("age", "out_of_range")] >= 3
    assert ("city", "unseen_categories") not in found
    assert ("active", "unexpected_column") in found  # not among the signature's inputs


def test_datetime_columns_count_unparseable_values():
    ref = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, tz="UTC")})
    cur = pd.DataFrame({"t": ["2024-02-01T00:00:00Z", "not a date", None]})
    report = quality(ref, cur)
    assert checks(report) == {("t", "type_violations"): 1, ("t", "missing_values"): 1}


def test_lists_and_dicts_sent_for_strings_are_type_violations():
    ref = pd.DataFrame({"city": ["paris", "lyon"] * 50, "size": np.arange(100.0)})
    cur = pd.DataFrame({"city": ["paris", ["lyon"], {"name": "nice"}, ("x",)] * 5, "size": [[2.0], 1.0] * 10})
    report = quality(ref, cur)
    assert checks(report) == {
        ("city", "unseen_categories"): 15,
        ("city", "type_violations"): 15,
        ("size", "type_violations"): 10,
    }
    column = report.columns[0]
    assert column.unseen_values == ("['lyon']", "{'name': 'nice'}", "('x',)") and not column.constant


def test_a_reference_column_with_no_value_is_not_said_to_vary():
    report = quality(pd.DataFrame({"x": [np.nan] * 10}), pd.DataFrame({"x": [1.0] * 10}))
    assert report.columns[0].constant and report.ok


def test_an_empty_current_frame_is_allowed_but_an_empty_reference_is_not():
    ref = reference()
    report = quality(ref, ref.head(0))
    assert report.n_current == 0 and report.ok
    with pytest.raises(InvalidValueError, match="reference data is empty"):
        quality(ref.head(0), ref)
    with pytest.raises(InvalidValueError, match="tolerance"):
        quality(ref, ref, tolerance=1)


def test_report_serialises_and_is_exported():
    ref = reference()
    data = loopml.quality(ref, ref.assign(city="x")).to_dict()
    assert data["ok"] is False and data["problems"][0]["check"] == "unseen_categories"
    assert loopml.QualityReport is QualityReport
    assert list(quality(ref, ref.assign(city="x")).problems_frame().columns) == [
        "column",
        "check",
        "count",
        "share",
        "message",
    ]


def fresh(n: int, seed: int) -> pd.DataFrame:
    """Draws of one distribution: a float column with 2% missing values and a long-tailed category."""
    rng = np.random.default_rng(seed)
    value = rng.normal(size=n)
    value[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame({"value": value, "word": rng.zipf(1.5, n).astype(str)})


def test_counts_within_chance_are_reported_but_not_problems():
    ref, cur = fresh(2000, 1), fresh(3000, 2)
    report = quality(ref, cur)
    rows = report.to_frame().set_index("column")
    assert rows.loc["value", "missing"] > 0 and rows.loc["value", "out_of_range"] > 0
    assert rows.loc["word", "unseen"] > 0  # a long tail keeps producing new words
    assert report.ok, report.problems


def test_counts_beyond_chance_are_problems():
    ref, cur = fresh(2000, 1), fresh(3000, 2)
    cur.loc[:299, "value"] = np.nan  # 10% more missing values
    cur.loc[300:339, "value"] = 99.0  # far outside the range, 40 times
    cur.loc[340:999, "word"] = "new"  # one new word on 22% of the rows
    assert set(checks(quality(ref, cur))) == {
        ("value", "missing_values"),
        ("value", "out_of_range"),
        ("word", "unseen_categories"),
    }
