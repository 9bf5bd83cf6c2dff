"""Data contracts: YAML/JSON/dict specs, every problem of a bad spec at once, and validation by contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from loopml.errors import InvalidValueError, ValidationFailedError
from loopml.validation import DataContract

SPEC = """
name: transactions
version: "3"
description: Card transactions from the payments export.
columns:
  id:       {dtype: int, nullable: false, unique: true}
  amount:   {dtype: float, min: 0}
  currency: {dtype: text, allowed: [EUR, USD]}
  comment:  {dtype: text, max_missing_share: 0.5}
  ts:       {dtype: datetime, nullable: false}
rows: {min: 3}
unique: [[currency, ts]]
freshness: {column: ts, max_age: 2d}
allow_extra_columns: false
"""
NOW = datetime(2024, 6, 2, tzinfo=UTC)


def good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "amount": [10.0, 0.0, 99.5],
            "currency": ["EUR", "USD", "EUR"],
            "comment": ["ok", None, "refund"],
            "ts": pd.to_datetime(["2024-06-01 10:00", "2024-06-01 11:00", "2024-06-01 12:00"]),
        }
    )


def test_a_yaml_contract_validates_good_data_and_names_itself() -> None:
    contract = DataContract.from_yaml(SPEC)
    assert contract.ref == "transactions@3" and len(contract.columns) == 5
    report = contract.validate(good(), now=NOW)
    assert report.passed and report.contract == "transactions@3"
    assert [r.check for r in report.results] == [
        "schema", "missing_share", "unique", "in_range", "allowed_values", "missing_share", "missing_share",
        "row_count", "unique", "freshness",
    ]  # fmt: skip


def test_bad_data_reports_every_broken_promise() -> None:
    bad = good().assign(id=[1, 1, None], amount=[-1.0, 5.0, 5.0], currency=["EUR", "GBP", "EUR"], extra=1)
    with pytest.raises(ValidationFailedError) as caught:
        DataContract.from_yaml(SPEC).validate(bad, now=NOW)
    message = str(caught.value)
    assert message.startswith("Data 'transactions' (contract transactions@3) violates 5 of 10 checks")
    for fragment in (
        "unexpected extra",
        "wrong dtype id",
        "[id]: 1 missing",
        "[id]: 2 rows share",
        "[amount]: 1 value outside",
        "GBP (1)",
    ):
        assert fragment in message, fragment


def test_json_dict_and_file_forms_round_trip(tmp_path: Path) -> None:
    contract = DataContract.from_yaml(SPEC)
    spec = contract.to_dict()
    assert DataContract.from_dict(spec) == contract
    assert DataContract.from_json(json.dumps(spec)) == contract
    (tmp_path / "c.json").write_text(json.dumps(spec))
    (tmp_path / "c.yaml").write_text(SPEC)
    assert DataContract.load(tmp_path / "c.json") == DataContract.load(tmp_path / "c.yaml") == contract
    assert DataContract.from_dict({**spec, "version": "4"}).digest != contract.digest
    listed = DataContract.from_dict({"name": "x", "version": 1, "columns": [{"name": "a", "dtype": "int"}]})
    assert listed.columns[0].name == "a" and listed.version == "1"


def test_an_invalid_spec_lists_every_problem() -> None:
    with pytest.raises(InvalidValueError) as caught:
        DataContract.from_dict(
            {
                "name": "broken",
                "colums": {},
                "columns": {"a": {"dtype": "int", "minimum": 0}, "b": {"max_missing_share": 2}, "c": "int"},
                "rows": {"least": 1},
                "freshness": {"column": "ts", "max_age": "soon"},
            }
        )
    message = str(caught.value)
    for fragment in (
        "unknown key 'colums'",
        "'version' must be",
        "column 'a': unknown rule 'minimum'",
        "column 'b': max_missing_share must be between 0 and 1",
        "column 'c': rules must be a mapping",
        "'rows' takes",
        "freshness: max_age",
    ):
        assert fragment in message, fragment
    with pytest.raises(InvalidValueError, match="not valid YAML"):
        DataContract.from_yaml("name: [unclosed")
    with pytest.raises(InvalidValueError, match="No data contract file"):
        DataContract.load("/nonexistent/contract.yaml")


def test_wrong_types_and_impossible_rules_are_spec_problems_not_silent_or_late_errors() -> None:
    spec = """
name: typed
version: "1"
columns:
  a: {dtype: int, nullable: "false", unique: "no", min: 5, max: 1}
  b: {dtype: integr, min: .nan}
rows: {min: "1000", max: 10}
unique: 5
freshness: {column: 3, max_age: 2d}
allow_extra_columns: "false"
"""
    with pytest.raises(InvalidValueError) as caught:
        DataContract.from_yaml(spec)
    message = str(caught.value)
    for fragment in (
        "column 'a': nullable must be true or false, got 'false'",
        "column 'a': unique must be true or false, got 'no'",
        "column 'a': min 5 is above max 1",
        "Column 'b': unknown dtype 'integr'",
        "column 'b': min must be a number, got nan",
        "'rows' min must be a whole number >= 0, got '1000'",
        "'unique' is a list of column names or of lists of them, not 5",
        "freshness: column must be a column name, got 3",
        "'allow_extra_columns' must be true or false, got 'false'",
    ):
        assert fragment in message, fragment
    with pytest.raises(InvalidValueError, match="'rows' min 10 is above max 1"):
        DataContract.from_dict({"name": "x", "version": "1", "columns": {"a": {}}, "rows": {"min": 10, "max": 1}})
    with pytest.raises(InvalidValueError, match="column 'a' is listed more than once"):
        DataContract.from_dict({"name": "x", "version": "1", "columns": [{"name": "a"}, {"name": "a"}]})


def test_unique_may_name_one_column_and_max_age_may_be_seconds() -> None:
    contract = DataContract.from_yaml(
        "name: s\nversion: 1\ncolumns: {id: {}, ts: {}}\nunique: id\nfreshness: {column: ts, max_age: 3600}\n"
    )
    assert contract.unique == (("id",),)  # not one key per letter, ("i",) and ("d",)
    assert DataContract.from_dict(contract.to_dict()) == contract
    frame = pd.DataFrame({"id": [1, 2], "ts": pd.to_datetime(["2024-06-01 23:30", "2024-06-01 22:00"])})
    assert contract.validate(frame, now=NOW).passed
    late = contract.validate(frame, now=datetime(2024, 6, 2, 1, tzinfo=UTC), raise_on_failure=False)
    assert [r.check for r in late.violations] == ["freshness"]
