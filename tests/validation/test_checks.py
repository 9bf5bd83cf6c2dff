"""Data checks: each check's verdict and figures, and one report of every violation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.errors import InvalidValueError, ValidationFailedError
from loopml.validation import checks as c
from loopml.validation import validate_data

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "age": [25.0, 130.0, -2.0, np.nan, 40.0],
            "country": ["FR", "DE", "XX", None, "YY"],
            "segment": pd.Categorical(["a", "b", "a", "b", "a"]),
            "ts": pd.to_datetime(
                ["2024-05-30 00:00", "2024-05-31 00:00", "2024-05-29 00:00", None, "2024-05-31 06:00"]
            ),
        }
    )


def test_a_clean_frame_passes_every_check(frame: pd.DataFrame) -> None:
    clean = frame.iloc[[0, 4]].assign(country=["FR", "DE"])
    report = validate_data(
        clean,
        [
            c.schema({"id": "int", "age": "float", "country": "text", "segment": "category", "ts": "datetime"}),
            c.in_range("age", 0, 120),
            c.allowed_values("country", ["FR", "DE"]),
            c.unique("id"),
            c.not_null("ts"),
            c.row_count(min=2, max=2),
            c.freshness("ts", "2d", now=NOW),
        ],
    )
    assert report.passed and not report.violations and len(report.results) == 7


def test_every_violation_is_reported_not_just_the_first(frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        validate_data(
            frame.assign(id=[1, 2, 2, 4, 4]),
            [
                c.schema({"id": "int", "age": "int", "missing_col": "float"}, allow_extra=False),
                c.in_range("age", 0, 120),
                c.allowed_values("country", ["FR", "DE"]),
                c.unique("id"),
                c.missing_share("country", max_share=0.1),
                c.row_count(min=10),
                c.freshness("ts", timedelta(hours=1), now=NOW),
                c.in_range("nope", 0, 1),
            ],
            name="people",
        )
    report = caught.value.report
    assert [v.check for v in report.violations] == [
        "schema", "in_range", "allowed_values", "unique", "missing_share", "row_count", "freshness", "in_range",
    ]  # fmt: skip
    message = str(caught.value)
    assert message.startswith("Data 'people' violates 8 of 8 checks:")
    for fragment in (
        "missing missing_col",
        "wrong dtype age (float64, expected int)",
        "unexpected country, segment, ts",
        "2 values outside [0, 120] (observed -2 to 130)",
        "2 values not allowed: XX (1), YY (1)",
        "4 rows share 2 duplicated values",
        "1 missing (20.00%, limit 10.00%)",
        "5 rows, outside [10, inf]",
        "newest 2024-05-31T06:00:00+00:00 is 1.2d old (limit 1.0h)",
        "[nope]: column missing",
    ):
        assert fragment in message, fragment


def test_results_carry_figures_and_examples(frame: pd.DataFrame) -> None:
    report = validate_data(frame, [c.in_range("age", max=100), c.unique("segment")], raise_on_failure=False)
    in_range, unique = report.results
    assert in_range.details["n_failed"] == 1 and in_range.details["examples"] == [{"row": 1, "value": 130.0}]
    assert unique.details["n_duplicated_keys"] == 2 and sorted(unique.details["examples"]) == [["a"], ["b"]]
    evidence = report.to_evidence()
    json.dumps(evidence, allow_nan=False)  # JSON-safe: NaN and numpy scalars converted
    assert evidence["n_violations"] == 2 and evidence["results"][0]["details"]["observed"] == {
        "min": -2.0,
        "max": 130.0,
    }
    assert not report and "FAIL in_range: [age] 1 value outside [-inf, 100]" in report.summary()


def test_range_bounds_can_be_exclusive_and_missing_values_are_ignored() -> None:
    data = pd.DataFrame({"p": [0.0, 0.5, 1.0, None]})
    assert validate_data(data, [c.in_range("p", 0, 1)]).passed
    failed = validate_data(data, [c.in_range("p", 0, 1, inclusive=False)], raise_on_failure=False)
    assert failed.results[0].details["n_failed"] == 2
    text = validate_data(pd.DataFrame({"p": ["a"]}), [c.in_range("p", 0, 1)], raise_on_failure=False)
    assert "not numeric" in text.results[0].message


def test_freshness_reads_naive_timestamps_as_utc_and_parses_text() -> None:
    naive = pd.DataFrame({"ts": ["2024-06-01 10:00"]})
    assert validate_data(naive, [c.freshness("ts", "3h", now=NOW)]).passed
    assert not validate_data(naive, [c.freshness("ts", 3600, now=NOW)], raise_on_failure=False).passed
    empty = validate_data(pd.DataFrame({"ts": [None]}), [c.freshness("ts", "1d", now=NOW)], raise_on_failure=False)
    assert empty.results[0].message == "no timestamp to judge freshness by"


def test_check_arguments_are_validated() -> None:
    with pytest.raises(InvalidValueError):
        c.in_range("x")
    with pytest.raises(InvalidValueError):
        c.in_range("x", 2, 1)
    with pytest.raises(InvalidValueError):
        c.missing_share("x", 1.5)
    with pytest.raises(InvalidValueError):
        c.freshness("x", "soon")
    assert c.parse_age("90 min") == timedelta(minutes=90) and c.parse_age("1w") == timedelta(days=7)
    with pytest.raises(InvalidValueError):
        c.allowed_values("x", [])
    with pytest.raises(InvalidValueError, match="list of checks"):
        validate_data(pd.DataFrame(), [lambda frame: True])  # type: ignore[list-item]


def test_the_report_is_recorded_on_the_active_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    for name in ("LOOPML_DB_URL", "LOOPML_ARTIFACTS_URL", "LOOPML_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    loopml.set_tracking_uri(None)
    with loopml.start_run(capture=False) as run:
        validate_data(pd.DataFrame({"x": [1, None]}), [c.not_null("x")], name="raw input", raise_on_failure=False)
    stored = json.loads(run.client.read_artifact(run.run_id, "validation/raw_input.json"))
    assert stored["passed"] is False and stored["results"][0]["details"]["n_missing"] == 1
    assert run.get().tags["loopml.validation.raw_input"] == "failed"
    run.client.close()


def test_unexpected_categories_list_only_the_values_present() -> None:
    data = pd.DataFrame({"tier": pd.Categorical(["gold", "lead", None], categories=["gold", "lead", "tin"])})
    result = validate_data(data, [c.allowed_values("tier", ["gold"])], raise_on_failure=False).results[0]
    assert result.message == "1 value not allowed: lead (1)"  # not "tin (0)": an unused category is no value
    assert result.details["unexpected"] == {"lead": 1}


def test_bounds_that_cannot_be_compared_with_the_column_fail_the_check_instead_of_raising() -> None:
    stamps = pd.DataFrame({"ts": pd.to_datetime(["2024-06-01"]).tz_localize("UTC")})
    checks = [c.in_range("ts", 0, 1), c.in_range("ts", pd.Timestamp("2024-01-01")), c.row_count(min=1)]
    report = validate_data(stamps, checks, raise_on_failure=False)
    assert [r.passed for r in report.results] == [False, False, True]
    assert "values of dtype datetime64[" in report.results[0].message
    assert "cannot be compared with the bounds [0, 1]" in report.results[0].message
    assert validate_data(stamps, [c.in_range("ts", pd.Timestamp("2024-01-01", tz="UTC"))]).passed


def test_a_column_name_used_twice_is_a_violation_not_a_crash() -> None:
    data = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"])
    report = validate_data(
        data,
        [c.schema({"a": "int", "b": "int"}), c.in_range("a", 0, 5), c.not_null("a"), c.unique("a", "b"),
         c.freshness("a", "1d"), c.in_range("b", 0, 5)],
        raise_on_failure=False,
    )  # fmt: skip
    assert [r.passed for r in report.results] == [False, False, False, False, False, True]
    assert report.results[0].message == "more than one column named a"
    assert report.results[1].message == "more than one column has this name"
    assert report.results[1].details["repeated"] == ["a"]


def test_a_dtype_no_column_can_have_is_refused_when_the_schema_is_built() -> None:
    for exact in ("Int64", "int32", "string", "datetime64[ns, UTC]", "object", "TEXT"):
        c.schema({"x": exact})
    with pytest.raises(InvalidValueError, match=r"Column 'x': unknown dtype 'integr'.*Did you mean 'int'"):
        c.schema({"x": "integr"})
    with pytest.raises(InvalidValueError, match="pandas names that dtype 'float64'"):
        c.schema({"x": "double"})  # a float64 column's dtype is "float64": "double" would never match
