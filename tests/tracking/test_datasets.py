"""Tests for loopml.tracking.datasets: canonical digest, schema, profile and payload."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import loopml.tracking.datasets as datasets_module
from loopml.errors import InvalidValueError
from loopml.tracking.datasets import PreparedDataset, canonical_digest, prepare_dataset, profile_frame

REPO_ROOT = Path(datasets_module.__file__).resolve().parents[2]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "score": [0.5, np.nan, 2.25, -1.0],
            "label": ["cat", "dog", None, "cat"],
            "flag": [True, False, True, True],
            "when": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-04-01"]),
        }
    )


# -- digest stability -----------------------------------------------------------------


def test_same_data_same_digest() -> None:
    assert canonical_digest(_frame()) == canonical_digest(_frame())
    assert prepare_dataset(_frame()).digest == canonical_digest(_frame())


def test_digest_is_independent_of_index() -> None:
    base = _frame()
    reindexed = base.copy()
    reindexed.index = pd.Index(["a", "b", "c", "d"], name="key")
    shifted = base.set_axis(range(100, 104), axis=0)
    assert canonical_digest(reindexed) == canonical_digest(base)
    assert canonical_digest(shifted) == canonical_digest(base)
    assert canonical_digest(base.iloc[1:].reset_index(drop=True)) == canonical_digest(base.iloc[1:])


def test_digest_is_stable_across_processes() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.tracking.test_datasets import _frame;"
        "from loopml.tracking.datasets import canonical_digest;"
        "print(canonical_digest(_frame()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    assert out.stdout.strip() == canonical_digest(_frame())


def test_digest_is_a_sha256_hex() -> None:
    digest = canonical_digest(_frame())
    assert len(digest) == 64
    int(digest, 16)


def test_nullable_int_without_missing_hashes_like_int64() -> None:
    plain = pd.DataFrame({"a": [1, 2, 3]})
    nullable = pd.DataFrame({"a": pd.array([1, 2, 3], dtype="Int64")})
    narrow = pd.DataFrame({"a": np.array([1, 2, 3], dtype=np.int8)})
    assert canonical_digest(plain) == canonical_digest(nullable) == canonical_digest(narrow)


def test_object_and_string_dtypes_hash_alike() -> None:
    as_object = pd.DataFrame({"s": pd.Series(["a", None, "c"], dtype=object)})
    as_string = pd.DataFrame({"s": pd.Series(["a", None, "c"], dtype="string")})
    assert canonical_digest(as_object) == canonical_digest(as_string)


def test_nan_bit_patterns_in_frames_hash_equal() -> None:
    other_nan = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    assert np.isnan(other_nan)
    a = pd.DataFrame({"x": [1.0, np.nan]})
    b = pd.DataFrame({"x": [1.0, other_nan]})
    c = pd.DataFrame({"x": pd.array([1.0, None], dtype="Float64")})
    assert canonical_digest(a) == canonical_digest(b) == canonical_digest(c)


# -- digest sensitivity -------------------------------------------------------------------


def test_one_changed_value_changes_digest() -> None:
    base = _frame()
    for column, value in [("id", 99), ("score", 0.75), ("label", "cow"), ("flag", False)]:
        changed = base.copy()
        changed.loc[0, column] = value
        assert canonical_digest(changed) != canonical_digest(base), column
    later = base.copy()
    later.loc[0, "when"] = pd.Timestamp("2024-01-02")
    assert canonical_digest(later) != canonical_digest(base)


def test_column_rename_changes_digest() -> None:
    base = _frame()
    assert canonical_digest(base.rename(columns={"id": "ID"})) != canonical_digest(base)


def test_column_order_changes_digest() -> None:
    base = _frame()
    assert canonical_digest(base[list(reversed(base.columns))]) != canonical_digest(base)


def test_int_vs_float_changes_digest() -> None:
    ints = pd.DataFrame({"a": [1, 2, 3]})
    floats = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    assert canonical_digest(ints) != canonical_digest(floats)


def test_nan_none_and_nan_string_are_all_distinct() -> None:
    float_nan = pd.DataFrame({"a": [np.nan]})
    object_none = pd.DataFrame({"a": pd.Series([None], dtype=object)})
    object_nan_string = pd.DataFrame({"a": pd.Series(["nan"], dtype=object)})
    object_none_string = pd.DataFrame({"a": pd.Series(["None"], dtype=object)})
    digests = {canonical_digest(f) for f in (float_nan, object_none, object_nan_string, object_none_string)}
    assert len(digests) == 4


def test_missing_nullable_int_differs_from_zero() -> None:
    zero = pd.DataFrame({"a": pd.array([0, 1], dtype="Int64")})
    missing = pd.DataFrame({"a": pd.array([None, 1], dtype="Int64")})
    assert canonical_digest(zero) != canonical_digest(missing)


def test_length_prefix_prevents_string_boundary_collisions() -> None:
    a = pd.DataFrame({"s": ["ab", "c"]})
    b = pd.DataFrame({"s": ["a", "bc"]})
    assert canonical_digest(a) != canonical_digest(b)


def test_row_order_matters_by_default() -> None:
    base = _frame()
    permuted = base.iloc[[2, 0, 3, 1]]
    assert canonical_digest(permuted) != canonical_digest(base)


def test_ignore_row_order_makes_permutations_equal() -> None:
    base = pd.concat([_frame(), _frame().iloc[[0]]], ignore_index=True)  # includes a duplicate row
    expected = canonical_digest(base, ignore_row_order=True)
    rng = np.random.default_rng(7)
    for _ in range(10):
        order = rng.permutation(len(base))
        assert canonical_digest(base.iloc[order], ignore_row_order=True) == expected
    assert prepare_dataset(base.iloc[::-1], ignore_row_order=True).digest == expected


def test_ignore_row_order_still_detects_value_changes() -> None:
    base = _frame()
    changed = base.copy()
    changed.loc[1, "id"] = 7
    assert canonical_digest(changed, ignore_row_order=True) != canonical_digest(base, ignore_row_order=True)


def test_ignore_row_order_distinguishes_row_pairings() -> None:
    a = pd.DataFrame({"x": [1, 2], "y": ["p", "q"]})
    b = pd.DataFrame({"x": [1, 2], "y": ["q", "p"]})
    assert canonical_digest(a, ignore_row_order=True) != canonical_digest(b, ignore_row_order=True)


# -- prepare_dataset: frames and series ---------------------------------------------------------


def test_prepare_frame_fields_and_parquet_payload() -> None:
    frame = _frame()
    prepared = prepare_dataset(frame)
    assert isinstance(prepared, PreparedDataset)
    assert prepared.source == "pandas"
    assert prepared.n_rows == 4
    assert list(prepared.schema) == ["id", "score", "label", "flag", "when"]
    assert prepared.schema["id"] == "int64"
    assert prepared.payload_format == "parquet"
    assert prepared.payload is not None
    restored = pd.read_parquet(io.BytesIO(prepared.payload))
    assert canonical_digest(restored) == prepared.digest


def test_store_data_false_has_no_payload() -> None:
    prepared = prepare_dataset(_frame(), store_data=False)
    assert prepared.payload is None
    assert prepared.payload_format is None
    assert prepared.digest == canonical_digest(_frame())


def test_unparquetable_frame_falls_back_to_no_payload() -> None:
    frame = pd.DataFrame({"mixed": pd.Series([1, "a", 2.5, b"x"], dtype=object)})
    prepared = prepare_dataset(frame)
    assert prepared.payload is None
    assert prepared.payload_format is None
    assert len(prepared.digest) == 64


def test_series_is_a_one_column_frame() -> None:
    named = prepare_dataset(pd.Series([1, 2, 3], name="y"))
    assert named.schema == {"y": "int64"}
    assert named.digest == canonical_digest(pd.DataFrame({"y": [1, 2, 3]}))
    unnamed = prepare_dataset(pd.Series([1.0, 2.0]))
    assert list(unnamed.schema) == ["0"]


def test_non_string_column_names_are_stringified() -> None:
    frame = pd.DataFrame([[1, 2]], columns=[0, 1])
    prepared = prepare_dataset(frame)
    assert list(prepared.schema) == ["0", "1"]
    assert prepared.digest == canonical_digest(pd.DataFrame([[1, 2]], columns=["0", "1"]))


def test_duplicate_columns_are_rejected() -> None:
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    with pytest.raises(InvalidValueError, match=r"duplicate column names.*'a'"):
        prepare_dataset(frame)
    clash = pd.DataFrame([[1, 2]], columns=[1, "1"])
    with pytest.raises(InvalidValueError, match="'1'"):
        canonical_digest(clash)


def test_empty_frame() -> None:
    prepared = prepare_dataset(pd.DataFrame({"a": pd.Series([], dtype="int64")}))
    assert prepared.n_rows == 0
    assert prepared.profile[0].min is None
    assert prepared.profile[0].std is None


# -- numpy arrays -------------------------------------------------------------------------------


def test_numpy_1d_and_2d_schema() -> None:
    one = prepare_dataset(np.array([1.0, 2.0, 3.0]))
    assert one.source == "numpy"
    assert one.n_rows == 3
    assert one.schema == {"0": "float64"}
    two = prepare_dataset(np.arange(6, dtype=np.int32).reshape(3, 2))
    assert two.schema == {"0": "int32", "1": "int32"}
    assert [p.name for p in two.profile] == ["0", "1"]
    assert two.profile[1].max == 5.0


def test_numpy_digest_stable_and_sensitive() -> None:
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert prepare_dataset(a).digest == prepare_dataset(a.copy()).digest
    assert prepare_dataset(np.asfortranarray(a)).digest == prepare_dataset(a).digest
    assert prepare_dataset(a.astype(">f8")).digest == prepare_dataset(a).digest
    assert prepare_dataset(a.reshape(4, 3)).digest != prepare_dataset(a).digest
    assert prepare_dataset(a.astype(np.float32)).digest != prepare_dataset(a).digest
    changed = a.copy()
    changed[1, 1] = 100.0
    assert prepare_dataset(changed).digest != prepare_dataset(a).digest


def test_numpy_nan_bit_patterns_hash_equal() -> None:
    payloads = [0x7FF8000000000000, 0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001]
    arrays = [np.array([1.0, 2.0, 0.0], dtype=np.float64) for _ in payloads]
    for arr, bits in zip(arrays, payloads, strict=True):
        arr.view(np.uint64)[1] = bits
        assert np.isnan(arr[1])
    assert len({prepare_dataset(arr).digest for arr in arrays}) == 1
    assert prepare_dataset(np.array([1.0, 3.0, 0.0])).digest != prepare_dataset(arrays[0]).digest


def test_numpy_payload_is_npy() -> None:
    a = np.arange(5)
    prepared = prepare_dataset(a)
    assert prepared.payload_format == "npy"
    assert prepared.payload is not None
    np.testing.assert_array_equal(np.load(io.BytesIO(prepared.payload)), a)
    assert prepare_dataset(a, store_data=False).payload is None


def test_numpy_higher_dimensions_have_no_profile() -> None:
    prepared = prepare_dataset(np.zeros((2, 3, 4)))
    assert prepared.n_rows == 2
    assert prepared.schema == {}
    assert prepared.profile == ()


def test_numpy_zero_dimensional_is_rejected() -> None:
    with pytest.raises(InvalidValueError, match="0-dimensional"):
        prepare_dataset(np.array(3.0))


# -- files ----------------------------------------------------------------------------------------


def test_file_digest_equals_sha256_of_bytes(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    prepared = prepare_dataset(path)
    assert prepared.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prepared.source == str(path.resolve())
    assert prepared.n_rows == 0
    assert prepared.schema == {}
    assert prepared.profile == ()
    assert prepared.payload == path.read_bytes()
    assert prepared.payload_format == "file"
    assert prepare_dataset(str(path), store_data=False).payload is None


def test_csv_file_schema_and_profile(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("x,y,label\n1,2.5,a\n2,,b\n3,4.5,a\n")
    prepared = prepare_dataset(path)
    assert prepared.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prepared.n_rows == 3
    assert list(prepared.schema) == ["x", "y", "label"]
    assert prepared.schema["x"] == "int64"
    by_name = {p.name: p for p in prepared.profile}
    assert by_name["x"].min == 1.0
    assert by_name["x"].max == 3.0
    assert by_name["y"].n_missing == 1
    assert by_name["y"].mean == pytest.approx(3.5)
    assert by_name["label"].top == (("a", 2), ("b", 1))


def test_parquet_file_schema(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    _frame().to_parquet(path, index=False)
    prepared = prepare_dataset(path)
    assert prepared.n_rows == 4
    assert list(prepared.schema) == ["id", "score", "label", "flag", "when"]
    assert prepared.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_relative_path_source_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text("hello")
    monkeypatch.chdir(tmp_path)
    assert prepare_dataset("a.txt").source == str(tmp_path.resolve() / "a.txt")


# -- bad inputs -------------------------------------------------------------------------------------


def test_unsupported_type_is_rejected() -> None:
    with pytest.raises(InvalidValueError) as info:
        prepare_dataset({"a": [1, 2]})
    message = str(info.value)
    assert "dict" in message
    assert "DataFrame" in message
    assert "ndarray" in message
    assert "path" in message


def test_missing_path_is_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InvalidValueError, match="does not exist") as info:
        prepare_dataset(missing)
    assert str(missing) in str(info.value)


def test_directory_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="not a regular file"):
        prepare_dataset(tmp_path)


# -- profile -------------------------------------------------------------------------------------------


def test_profile_numbers_agree_with_pandas() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"f": rng.normal(size=500), "i": rng.integers(-50, 50, size=500)})
    frame.loc[[3, 10, 99], "f"] = np.nan
    for profile in profile_frame(frame):
        column = frame[profile.name]
        assert profile.n_missing == int(column.isna().sum())
        assert profile.n_unique == int(column.nunique())
        assert profile.min == pytest.approx(float(column.min()))
        assert profile.max == pytest.approx(float(column.max()))
        assert profile.mean == pytest.approx(float(column.mean()))
        assert profile.std == pytest.approx(float(column.std()))
        assert profile.top == ()


def test_profile_is_json_safe() -> None:
    frame = pd.DataFrame(
        {
            "all_nan": [np.nan, np.nan],
            "one": [1.0, np.nan],
            "inf": [np.inf, 1.0],
            "cat": pd.Categorical(["a", None]),
            "nint": pd.array([1, None], dtype="Int64"),
        }
    )
    profiles = profile_frame(frame)
    text = json.dumps([p.to_dict() for p in profiles], allow_nan=False)
    assert "NaN" not in text
    by_name = {p.name: p for p in profiles}
    assert by_name["all_nan"].min is None
    assert by_name["all_nan"].mean is None
    assert by_name["one"].std is None  # fewer than two values
    assert by_name["one"].mean == 1.0
    assert by_name["nint"].n_missing == 1
    for profile in profiles:
        for value in (profile.min, profile.max, profile.mean, profile.std):
            assert value is None or type(value) is float
        assert type(profile.n_missing) is int


def test_top_categories_order_and_limit() -> None:
    values = ["b"] * 3 + ["a"] * 3 + ["c"] * 5 + ["d", "e", "f", "g"] + [None]
    (profile,) = profile_frame(pd.DataFrame({"s": values}))
    assert profile.top == (("c", 5), ("a", 3), ("b", 3), ("d", 1), ("e", 1))
    assert profile.n_missing == 1
    assert profile.n_unique == 7
    assert profile.min is None


def test_boolean_and_categorical_profiles_use_top() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "cat": pd.Categorical(["x", "y", "x"], categories=["x", "y", "unused"]),
        }
    )
    flag, cat = profile_frame(frame)
    assert flag.top == (("True", 2), ("False", 1))
    assert flag.mean is None
    assert cat.top == (("x", 2), ("y", 1))
    assert all(isinstance(v, str) and type(c) is int for v, c in cat.top)
