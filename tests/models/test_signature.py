from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidValueError, SchemaError
from loopml.models import ColumnSpec, Signature, infer_signature
from loopml.models.signature import coerce_input


@pytest.fixture
def example() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27],
            "income": [50_000.0, np.nan, 72_500.5],
            "member": [True, False, True],
            "city": ["Oslo", None, "Rome"],
            "joined": pd.to_datetime(["2024-01-02", "2023-05-06", "2022-07-08"]),
            "tier": pd.Series(["gold", "silver", "gold"], dtype="category"),
        }
    )


@pytest.fixture
def signature() -> Signature:
    return Signature(
        (
            ColumnSpec("a", "float"),
            ColumnSpec("b", "integer"),
            ColumnSpec("c", "string"),
            ColumnSpec("d", "float", nullable=True),
        )
    )


def test_infer_dtypes_and_nullability(example: pd.DataFrame) -> None:
    sig = infer_signature(example)
    assert [(c.name, c.dtype, c.nullable) for c in sig.inputs] == [
        ("age", "integer", False),
        ("income", "float", True),
        ("member", "boolean", False),
        ("city", "string", True),
        ("joined", "datetime", False),
        ("tier", "category", False),
    ]
    assert sig.outputs is None
    assert all(c.min is None and c.max is None and c.categories is None for c in sig.inputs)


def test_infer_ranges_and_categories(example: pd.DataFrame) -> None:
    sig = infer_signature(example, ranges=True, categories=True)
    specs = {c.name: c for c in sig.inputs}
    assert (specs["age"].min, specs["age"].max) == (27, 45)
    assert (specs["income"].min, specs["income"].max) == (50_000.0, 72_500.5)
    assert specs["city"].categories == ("Oslo", "Rome")
    assert specs["tier"].categories == ("gold", "silver")
    assert specs["member"].categories is None


@pytest.mark.parametrize(
    "data",
    [
        [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}],
        {"x": [1, 2], "y": ["a", "b"]},
        pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}),
    ],
    ids=["records", "columns", "frame"],
)
def test_infer_from_each_input_form(data: object) -> None:
    sig = infer_signature(data)
    assert [(c.name, c.dtype) for c in sig.inputs] == [("x", "integer"), ("y", "string")]


def test_infer_from_numpy_names_columns_by_position() -> None:
    sig = infer_signature(np.zeros((3, 2)), np.array([0, 1, 1]))
    assert sig.input_names == ["0", "1"]
    assert [c.dtype for c in sig.inputs] == ["float", "float"]
    assert sig.outputs == (ColumnSpec("0", "integer"),)


def test_infer_refuses_mixed_and_empty_columns() -> None:
    with pytest.raises(InvalidValueError, match="'m'"):
        infer_signature(pd.DataFrame({"m": pd.Series(["a", 1], dtype=object)}))
    with pytest.raises(InvalidValueError, match="only missing values"):
        infer_signature({"e": [None, None]})


def test_to_dict_round_trips_through_json(example: pd.DataFrame) -> None:
    sig = infer_signature(example, np.array([1.0, 2.0, 3.0]), ranges=True, categories=True)
    restored = Signature.from_dict(json.loads(json.dumps(sig.to_dict())))
    assert restored == sig


def test_column_spec_validates() -> None:
    with pytest.raises(InvalidValueError, match="dtype"):
        ColumnSpec("x", "flaot")
    with pytest.raises(InvalidValueError, match="min/max"):
        ColumnSpec("x", "string", min=1)
    with pytest.raises(InvalidValueError, match="greater"):
        ColumnSpec("x", "float", min=2, max=1)
    with pytest.raises(InvalidValueError, match="twice"):
        Signature((ColumnSpec("x", "float"), ColumnSpec("x", "integer")))
    with pytest.raises(InvalidValueError, match="unknown keys"):
        Signature.from_dict({"inputs": [{"name": "x", "dtype": "float", "bogus": 1}]})


def test_enforce_orders_columns_and_casts_safely(signature: Signature) -> None:
    frame = pd.DataFrame({"d": [None, 2.5], "c": ["x", "y"], "b": [1.0, 2.0], "a": [1, 2]})
    out = signature.enforce(frame)
    assert list(out.columns) == ["a", "b", "c", "d"]
    assert out["a"].dtype == np.float64
    assert out["b"].dtype == np.int64
    assert out["b"].tolist() == [1, 2]
    assert np.isnan(out["d"].iloc[0])


def test_enforce_reports_every_problem_in_one_error(signature: Signature) -> None:
    frame = pd.DataFrame(
        {
            "a": pd.Series(["abc", 1.0], dtype=object),  # not a number
            "b": [1.5, 2.0],  # fractional part in an integer column
            "c": ["x", None],  # null in a non-nullable column
            # "d" missing
            "zz": [0, 0],  # extra
        }
    )
    with pytest.raises(SchemaError) as caught:
        signature.enforce(frame)
    problems = caught.value.problems
    assert set(problems) == {"a", "b", "c", "d", "zz"}
    assert "abc" in problems["a"]
    assert "1.5" in problems["b"] and "fractional" in problems["b"]
    assert "null" in problems["c"]
    assert "missing" in problems["d"]
    assert "unexpected" in problems["zz"]
    for column in problems:
        assert repr(column) in caught.value.message


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 1e20],  # a float far past int64 would wrap to -2**63
        [1.0, -1e19],
        [1.0, float(2**63)],
        pd.Series([1, 2**70], dtype=object),  # Python integers past 64 bits
        pd.Series([1, -(2**63) - 1], dtype=object),
    ],
)
def test_whole_numbers_outside_int64_are_refused_not_wrapped(values: list[float] | pd.Series) -> None:
    sig = Signature((ColumnSpec("a", "integer"),))
    with pytest.raises(SchemaError) as caught:
        sig.enforce(pd.DataFrame({"a": values}))
    assert "outside the 64-bit integer range" in caught.value.problems["a"]


def test_the_int64_extremes_are_kept_exactly() -> None:
    sig = Signature((ColumnSpec("a", "integer"),))
    out = sig.enforce(pd.DataFrame({"a": pd.Series([-(2**63), 2**63 - 1], dtype=object)}))
    assert out["a"].tolist() == [-(2**63), 2**63 - 1]
    assert sig.enforce(pd.DataFrame({"a": [-(2.0**63), 5.0]}))["a"].tolist() == [-(2**63), 5]


def test_numeric_strings_are_not_cast() -> None:
    sig = Signature((ColumnSpec("a", "float"),))
    with pytest.raises(SchemaError) as caught:
        sig.enforce(pd.DataFrame({"a": ["1.5"]}))
    assert "strings are not converted" in caught.value.problems["a"]


def test_booleans_are_not_numbers() -> None:
    sig = Signature((ColumnSpec("a", "integer"),))
    with pytest.raises(SchemaError, match="'a'"):
        sig.enforce(pd.DataFrame({"a": [True, False]}))


def test_extra_columns_policies(signature: Signature) -> None:
    frame = pd.DataFrame({"a": [1.0], "b": [1], "c": ["x"], "d": [None], "extra": ["e"]})
    with pytest.raises(SchemaError) as caught:
        signature.enforce(frame)
    assert set(caught.value.problems) == {"extra"}
    assert list(signature.enforce(frame, extra="drop").columns) == ["a", "b", "c", "d"]
    kept = signature.enforce(frame, extra="keep")
    assert list(kept.columns) == ["a", "b", "c", "d", "extra"]
    with pytest.raises(InvalidValueError, match="extra"):
        signature.enforce(frame, extra="ignore")  # type: ignore[arg-type]


def test_nullable_integer_column_becomes_float() -> None:
    sig = Signature((ColumnSpec("n", "integer", nullable=True),))
    out = sig.enforce(coerce_input([{"n": 1}, {"n": None}]))
    assert out["n"].dtype == np.float64
    assert out["n"].iloc[0] == 1.0 and np.isnan(out["n"].iloc[1])


def test_ranges_and_categories_only_checked_when_recorded() -> None:
    frame = pd.DataFrame({"x": [0.5, 10.0], "city": ["Oslo", "Paris"]})
    loose = Signature((ColumnSpec("x", "float"), ColumnSpec("city", "string")))
    loose.enforce(frame)
    strict = Signature(
        (ColumnSpec("x", "float", min=0.0, max=5.0), ColumnSpec("city", "string", categories=("Oslo", "Rome")))
    )
    with pytest.raises(SchemaError) as caught:
        strict.enforce(frame)
    assert "outside [0.0, 5.0]" in caught.value.problems["x"]
    assert "'Paris'" in caught.value.problems["city"]


def test_datetime_and_boolean_columns() -> None:
    sig = Signature((ColumnSpec("when", "datetime"), ColumnSpec("flag", "boolean", nullable=True)))
    out = sig.enforce(coerce_input({"when": ["2024-01-02T03:04:05"], "flag": [None]}))
    assert out["when"].iloc[0] == pd.Timestamp("2024-01-02T03:04:05")
    with pytest.raises(SchemaError) as caught:
        sig.enforce(coerce_input({"when": [5], "flag": ["yes"]}))
    assert set(caught.value.problems) == {"when", "flag"}


def test_coerce_input_forms_agree() -> None:
    expected = pd.DataFrame({"x": [1], "y": ["a"]})
    pd.testing.assert_frame_equal(coerce_input([{"x": 1, "y": "a"}]), expected)
    pd.testing.assert_frame_equal(coerce_input({"x": [1], "y": ["a"]}), expected)
    pd.testing.assert_frame_equal(coerce_input({"x": 1, "y": "a"}), expected)
    assert list(coerce_input(pd.DataFrame(np.zeros((1, 2)))).columns) == ["0", "1"]


@pytest.mark.parametrize("bad", [42, "x", [1, 2], [], {}, {"x": [1], "y": 2}, np.zeros((2, 2))])
def test_coerce_input_refuses_other_forms(bad: object) -> None:
    with pytest.raises(InvalidValueError, match=r"DataFrame|dict|list"):
        coerce_input(bad)
