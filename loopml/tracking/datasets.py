"""Canonical content hash, schema and column profile of the data a run used.

A dataset is identified by the sha256 of a *canonical* serialisation of its
content, so the same data gives the same digest in every process, on every
machine and in every run, whatever index it carries or how it was loaded.
Python's ``hash()`` (salted per process) and pickle (version dependent) are
never used for that reason.

Canonical DataFrame serialisation (format ``loopml.dataset.v1``), all integers
little-endian ``int64``, every string length-prefixed UTF-8:

* header: format tag, number of rows, number of columns;
* per column, in column order: the column name, a dtype tag naming the dtype
  *kind* (``int``, ``float``, ``bool``, ``complex``, ``datetime``,
  ``datetime[<tz>]``, ``timedelta``, ``text``, ``category`` or
  ``other[<dtype>]``), then the values:

  - ``int``/``bool``: ``int64``/``uint8`` values (missing filled with 0), then
    a flag byte and, when any value is missing, a ``uint8`` missing mask, so a
    nullable ``Int64`` column without missing values hashes like ``int64``;
  - ``float``/``complex``: ``float64`` values with every NaN (and ``pd.NA``)
    replaced by the one canonical quiet NaN and ``-0.0`` folded into ``0.0``;
  - ``datetime``/``timedelta``: ``int64`` nanoseconds (UTC for tz-aware data),
    NaT being ``int64`` minimum;
  - ``text``/``category``/``other``: all lengths (``-1`` for a missing value,
    so missing differs from the strings ``"None"`` and ``"nan"``), then the
    concatenated UTF-8 of ``str(value)``. Object and string dtypes share the
    ``text`` tag so a CSV read by pandas 2 (object) or 3 (str) hashes alike.

The index never enters the hash. Numpy arrays use their own, simpler scheme
(``loopml.ndarray.v1``: dtype string, shape, C-contiguous little-endian bytes
with NaNs canonicalised), so an array and the DataFrame built from it do *not*
share a digest.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from loopml.entities.datasets import ColumnProfile
from loopml.errors import InvalidValueError

__all__ = ["PreparedDataset", "canonical_digest", "prepare_dataset", "profile_frame"]

_FRAME_FORMAT = b"loopml.dataset.v1\x00"
_ARRAY_FORMAT = b"loopml.ndarray.v1\x00"
_CHUNK = 1024 * 1024
_TEXT_BATCH = 65_536
_TOP_N = 5
_TABULAR_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_ACCEPTED = "a pandas DataFrame or Series, a numpy ndarray, or a file path (str or os.PathLike)"


@dataclass(frozen=True, slots=True)
class PreparedDataset:
    """Everything recorded about a dataset before it is written to a store.

    Attributes:
        digest: sha256 hex of the canonical serialisation (see the module docstring).
        source: ``"pandas"``, ``"numpy"`` or the file's absolute path.
        n_rows: Number of rows (first axis for arrays; 0 for non-tabular files).
        schema: Column name to dtype string, in column order.
        profile: One :class:`ColumnProfile` per column, in column order.
        payload: Bytes to store (parquet, ``.npy`` or the raw file), or None.
        payload_format: ``"parquet"``, ``"npy"``, ``"file"`` or None with no payload.
    """

    digest: str
    source: str
    n_rows: int
    schema: dict[str, str]
    profile: tuple[ColumnProfile, ...]
    payload: bytes | None
    payload_format: str | None


# -- public API ------------------------------------------------------------------


def prepare_dataset(
    data: object, *, ignore_row_order: bool = False, store_data: bool = True
) -> PreparedDataset:
    """Hash, describe and optionally serialise ``data`` so a run can record it.

    Args:
        data: A pandas DataFrame, a pandas Series (a one-column frame), a numpy
            array (1-D: one column ``"0"``; 2-D: columns ``"0"``..``"n-1"``) or
            the path of a file (``.csv`` and ``.parquet`` files are also read
            to fill the schema and profile).
        ignore_row_order: For DataFrames and Series, sort rows into a canonical
            order before hashing so any permutation of the rows gives the same
            digest. Arrays and files are always hashed as they are.
        store_data: When False no payload is produced (only the digest,
            schema and profile are kept).

    Returns:
        The digest, source, row count, schema, profile and payload.

    Raises:
        InvalidValueError: ``data`` is of an unsupported type, names a path that
            does not exist or is not a file, or is a frame with duplicate
            column names.
    """
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        return _prepare_frame(data, ignore_row_order=ignore_row_order, store_data=store_data)
    if isinstance(data, np.ndarray):
        return _prepare_array(data, store_data=store_data)
    if isinstance(data, (str, os.PathLike)):
        return _prepare_file(data, store_data=store_data)
    raise InvalidValueError(f"Cannot record a dataset from a {_type_name(data)}; expected {_ACCEPTED}.")


def canonical_digest(frame: pd.DataFrame, *, ignore_row_order: bool = False) -> str:
    """Return the sha256 hex of ``frame``'s canonical serialisation.

    The digest ignores the index and depends on column names, column order,
    dtype kind and values (see the module docstring for the exact format).

    Args:
        frame: The data to hash. Column names are converted with ``str()``.
        ignore_row_order: Sort rows into a canonical order first, so every
            permutation of the rows hashes the same.

    Returns:
        64 lowercase hex characters.

    Raises:
        InvalidValueError: Two columns have the same name after ``str()``.
    """
    names = _column_names(frame)
    columns = [_encode_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    if ignore_row_order and len(frame) > 1 and columns:
        order = _canonical_row_order(columns)
        columns = [col.take(order) for col in columns]
    hasher = hashlib.sha256(_FRAME_FORMAT)
    hasher.update(np.array([len(frame), len(columns)], dtype="<i8").tobytes())
    for name, col in zip(names, columns, strict=True):
        _update_text(hasher, name)
        _update_text(hasher, col.tag)
        col.feed(hasher)
    return hasher.hexdigest()


def profile_frame(frame: pd.DataFrame) -> tuple[ColumnProfile, ...]:
    """Summarise every column of ``frame`` for display and comparison.

    Numeric (non-boolean) columns get min/max/mean/std (``std`` with ddof=1);
    every other column gets ``top``, up to five ``(str(value), count)`` pairs,
    most frequent first, ties ordered by the value string. All numbers are
    plain Python ints/floats; NaN and infinities become None so the profile
    is JSON-safe.

    Args:
        frame: The data to profile. Column names are converted with ``str()``.

    Returns:
        One :class:`ColumnProfile` per column, in column order.

    Raises:
        InvalidValueError: Two columns have the same name after ``str()``.
    """
    names = _column_names(frame)
    return tuple(_profile_column(name, frame.iloc[:, i]) for i, name in enumerate(names))


# -- per-source preparation ---------------------------------------------------------


def _prepare_frame(frame: pd.DataFrame, *, ignore_row_order: bool, store_data: bool) -> PreparedDataset:
    """Build a :class:`PreparedDataset` for a DataFrame (Series arrive as frames)."""
    names = _column_names(frame)
    if list(frame.columns) != names:
        frame = frame.set_axis(names, axis=1)
    payload: bytes | None = None
    payload_format: str | None = None
    if store_data:
        payload = _parquet_bytes(frame)
        payload_format = "parquet" if payload is not None else None
    return PreparedDataset(
        digest=canonical_digest(frame, ignore_row_order=ignore_row_order),
        source="pandas",
        n_rows=len(frame),
        schema=_schema(frame),
        profile=profile_frame(frame),
        payload=payload,
        payload_format=payload_format,
    )


def _prepare_array(array: np.ndarray, *, store_data: bool) -> PreparedDataset:
    """Build a :class:`PreparedDataset` for a numpy array.

    1-D and 2-D arrays are profiled through a DataFrame view; arrays of three
    or more dimensions keep their digest and payload but get an empty schema
    and profile, since a column view of them would not be meaningful.
    """
    if array.ndim == 0:
        raise InvalidValueError("Cannot record a 0-dimensional numpy array as a dataset; wrap it in a list.")
    digest = _array_digest(array)
    schema: dict[str, str] = {}
    profile: tuple[ColumnProfile, ...] = ()
    if array.ndim <= 2:
        frame = _array_frame(array)
        schema = _schema(frame)
        profile = profile_frame(frame)
    payload: bytes | None = None
    if store_data:
        buf = io.BytesIO()
        try:
            np.save(buf, array, allow_pickle=False)
            payload = buf.getvalue()
        except ValueError:  # object arrays cannot be saved without pickle
            payload = None
    return PreparedDataset(
        digest=digest,
        source="numpy",
        n_rows=int(array.shape[0]),
        schema=schema,
        profile=profile,
        payload=payload,
        payload_format="npy" if payload is not None else None,
    )


def _prepare_file(path_like: str | os.PathLike[Any], *, store_data: bool) -> PreparedDataset:
    """Build a :class:`PreparedDataset` for a file: raw-byte digest, tabular profile."""
    path = Path(os.path.abspath(os.path.expanduser(os.fsdecode(path_like))))
    if not path.exists():
        raise InvalidValueError(f"Dataset path does not exist: {path}")
    if not path.is_file():
        raise InvalidValueError(f"Dataset path is not a regular file: {path}")
    hasher = hashlib.sha256()
    chunks: list[bytes] = []
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
            if store_data:
                chunks.append(chunk)
    n_rows = 0
    schema: dict[str, str] = {}
    profile: tuple[ColumnProfile, ...] = ()
    frame = _read_tabular(path)
    if frame is not None:
        n_rows = len(frame)
        schema = _schema(frame)
        profile = profile_frame(frame)
    return PreparedDataset(
        digest=hasher.hexdigest(),
        source=str(path),
        n_rows=n_rows,
        schema=schema,
        profile=profile,
        payload=b"".join(chunks) if store_data else None,
        payload_format="file" if store_data else None,
    )


def _read_tabular(path: Path) -> pd.DataFrame | None:
    """Read a ``.csv``/``.parquet`` file with pandas, or None for other files.

    A file pandas cannot parse is still recorded (by its bytes), just without
    a schema or profile, rather than failing the run.
    """
    kind = _TABULAR_SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "csv":
            frame = pd.read_csv(path)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            return None
        names = _column_names(frame)
    except Exception:
        return None
    return frame.set_axis(names, axis=1)


# -- helpers: names, schema, payload ---------------------------------------------------


def _type_name(value: object) -> str:
    """Fully qualified type name for error messages (``pandas.DataFrame`` style)."""
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _column_names(frame: pd.DataFrame) -> list[str]:
    """Column names as strings; duplicates are rejected because they are ambiguous."""
    names = [str(c) for c in frame.columns]
    counts = Counter(names)
    dups = sorted(n for n, c in counts.items() if c > 1)
    if dups:
        listed = ", ".join(repr(n) for n in dups)
        raise InvalidValueError(
            f"DataFrame has duplicate column names (after str()): {listed}; "
            "rename the columns so each name is unique."
        )
    return names


def _schema(frame: pd.DataFrame) -> dict[str, str]:
    """Column name -> dtype string, in column order."""
    return {str(name): str(dtype) for name, dtype in zip(frame.columns, frame.dtypes, strict=True)}


def _parquet_bytes(frame: pd.DataFrame) -> bytes | None:
    """Parquet serialisation without the index, or None when pyarrow cannot encode it."""
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=False)
    except Exception:  # mixed object columns, unsupported extension types, ...
        return None
    return buf.getvalue()


def _array_frame(array: np.ndarray) -> pd.DataFrame:
    """A DataFrame view of a 1-D/2-D array with string column names ``"0"``.."n-1"."""
    if not array.dtype.isnative:  # pandas hash tables reject non-native byte order
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype.names:  # structured array: one column per field
        frame = pd.DataFrame(array.reshape(-1) if array.ndim == 1 else array.ravel())
        return frame.set_axis([str(c) for c in frame.columns], axis=1)
    if array.ndim == 1:
        return pd.DataFrame({"0": array})
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


# -- canonical encoding ------------------------------------------------------------------


def _update_text(hasher: Any, text: str) -> None:
    """Feed a length-prefixed UTF-8 string into ``hasher``."""
    raw = text.encode("utf-8", "surrogatepass")
    hasher.update(len(raw).to_bytes(8, "little", signed=True))
    hasher.update(raw)


def _canonical_floats(values: np.ndarray) -> np.ndarray:
    """float64 copy with every NaN set to the canonical quiet NaN and -0.0 folded to 0.0."""
    with np.errstate(invalid="ignore"):  # signalling NaNs warn on arithmetic
        out = np.asarray(values, dtype="<f8") + 0.0  # new array; -0.0 + 0.0 == +0.0
    out[np.isnan(out)] = np.nan
    return out


@dataclass(slots=True)
class _FixedColumn:
    """A column encoded as fixed-width little-endian values plus an optional missing mask."""

    tag: str
    values: np.ndarray
    mask: np.ndarray | None  # None: the kind has no separate mask (float NaN, NaT)

    def take(self, order: np.ndarray) -> _FixedColumn:
        """The same column with its rows in ``order``."""
        return _FixedColumn(self.tag, self.values[order], None if self.mask is None else self.mask[order])

    def sort_keys(self) -> list[np.ndarray]:
        """Sort keys, most significant first, giving a total order on the encoded rows."""
        rows = self.values.reshape(self.values.shape[0], -1)
        bits = rows.view(f"<u{rows.dtype.itemsize}")  # total order on the canonical bytes
        keys = [bits[:, j] for j in range(bits.shape[1])]
        return keys if self.mask is None else [self.mask, *keys]

    def feed(self, hasher: Any) -> None:
        """Write the values, then the missing flag/mask, into ``hasher``."""
        hasher.update(np.ascontiguousarray(self.values).tobytes())
        if self.mask is None:
            return
        if self.mask.any():
            hasher.update(b"\x01")
            hasher.update(self.mask.astype(np.uint8).tobytes())
        else:
            hasher.update(b"\x00")


@dataclass(slots=True)
class _TextColumn:
    """A column encoded as UTF-8 strings with ``-1`` lengths marking missing values."""

    tag: str
    encoded: list[bytes]
    lengths: np.ndarray

    def take(self, order: np.ndarray) -> _TextColumn:
        """The same column with its rows in ``order``."""
        return _TextColumn(self.tag, [self.encoded[i] for i in order], self.lengths[order])

    def sort_keys(self) -> list[np.ndarray]:
        """Sort keys: the length (-1 marks missing), then a 64-bit hash of the bytes."""
        hashed = pd.util.hash_array(np.array(self.encoded, dtype=object))
        return [self.lengths, hashed]

    def feed(self, hasher: Any) -> None:
        """Write all lengths, then the concatenated bytes, into ``hasher``."""
        hasher.update(self.lengths.astype("<i8").tobytes())
        for batch in _batches(self.encoded, _TEXT_BATCH):
            hasher.update(b"".join(batch))


def _batches(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    """Yield consecutive slices of ``items`` so huge columns are hashed in bounded memory."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text_column(tag: str, values: np.ndarray) -> _TextColumn:
    """Encode an object array as UTF-8 of ``str(v)``; missing values get length -1."""
    missing = np.asarray(pd.isna(values), dtype=bool).reshape(-1)
    encoded = [
        b"" if miss else str(v).encode("utf-8", "surrogatepass")
        for v, miss in zip(values.tolist(), missing.tolist(), strict=True)
    ]
    lengths = np.fromiter((len(b) for b in encoded), dtype="<i8", count=len(encoded))
    lengths[missing] = -1
    return _TextColumn(tag, encoded, lengths)


def _encode_column(series: pd.Series) -> _FixedColumn | _TextColumn:
    """Canonical encoding of one column, chosen by its dtype kind (see module docstring)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _text_column("category", series.to_numpy(dtype=object))
    if ptypes.is_bool_dtype(dtype):
        mask = series.isna().to_numpy(dtype=bool)
        values = series.to_numpy(dtype=np.uint8, na_value=0)
        return _FixedColumn("bool", np.ascontiguousarray(values, dtype=np.uint8), mask)
    if ptypes.is_integer_dtype(dtype):
        mask = series.isna().to_numpy(dtype=bool)
        raw = np.asarray((series.fillna(0) if mask.any() else series).to_numpy())
        if raw.dtype == np.uint64 and raw.size and raw.max() > np.iinfo(np.int64).max:
            return _FixedColumn("uint64", raw.astype("<u8"), mask)
        return _FixedColumn("int", raw.astype("<i8"), mask)
    if ptypes.is_float_dtype(dtype):
        floats = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return _FixedColumn("float", _canonical_floats(floats), None)
    if ptypes.is_complex_dtype(dtype):
        pairs = series.to_numpy(dtype=np.complex128).view(np.float64)
        return _FixedColumn("complex", _canonical_floats(pairs).reshape(-1, 2), None)
    if ptypes.is_datetime64_any_dtype(dtype):
        tz = getattr(dtype, "tz", None)
        if tz is None and isinstance(dtype, pd.ArrowDtype):
            tz = getattr(dtype.pyarrow_dtype, "tz", None)
        tag = "datetime" if tz is None else f"datetime[{tz}]"
        try:
            naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if tz is not None else series
            return _FixedColumn(tag, naive.astype("datetime64[ns]").to_numpy().view("<i8"), None)
        except (OverflowError, ValueError):  # outside the nanosecond range (years < 1677 or > 2262)
            return _text_column(f"{tag}:text", series.to_numpy(dtype=object))
    if ptypes.is_timedelta64_dtype(dtype):
        try:
            return _FixedColumn("timedelta", series.astype("timedelta64[ns]").to_numpy().view("<i8"), None)
        except (OverflowError, ValueError):
            return _text_column("timedelta:text", series.to_numpy(dtype=object))
    if ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype):
        return _text_column("text", series.to_numpy(dtype=object))
    return _text_column(f"other[{dtype}]", series.to_numpy(dtype=object))


def _canonical_row_order(columns: Sequence[_FixedColumn | _TextColumn]) -> np.ndarray:
    """Permutation sorting rows by their canonical values, first column most significant.

    Rows with equal keys in every column are identical after encoding, so their
    relative order cannot change the digest; this makes the digest independent
    of the input row order.
    """
    keys: list[np.ndarray] = []
    for col in columns:
        keys.extend(col.sort_keys())
    return np.lexsort(keys[::-1])  # lexsort treats the last key as primary


def _array_digest(array: np.ndarray) -> str:
    """sha256 of dtype string, shape and canonical C-contiguous little-endian bytes.

    Byte order is normalised to little-endian so the digest does not depend on
    the machine; float and complex NaNs are canonicalised and -0.0 folded to
    0.0. Object arrays hash the length-prefixed ``str()`` of each element.
    """
    dtype = array.dtype
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and not np.little_endian):
        dtype = dtype.newbyteorder("<")
    hasher = hashlib.sha256(_ARRAY_FORMAT)
    _update_text(hasher, dtype.str if dtype.names is None else str(dtype.descr))
    hasher.update(np.array(array.shape, dtype="<i8").tobytes())
    if dtype.kind == "O":
        _text_column("text", np.asarray(array, dtype=object).reshape(-1)).feed(hasher)
        return hasher.hexdigest()
    if dtype.hasobject:
        raise InvalidValueError("Cannot hash a structured numpy array with object fields; convert it first.")
    data = np.array(array, dtype=dtype, order="C", copy=True)
    if dtype.kind in "fc":
        parts = data.view(data.real.dtype) if dtype.kind == "c" else data
        with np.errstate(invalid="ignore"):  # signalling NaNs warn on arithmetic
            parts += 0.0  # fold -0.0 into +0.0 in place
        parts[np.isnan(parts)] = np.nan
    hasher.update(data.tobytes())
    return hasher.hexdigest()


# -- profile -----------------------------------------------------------------------------


def _json_float(value: Any) -> float | None:
    """Plain float, or None for missing/NaN/infinite values (JSON has no NaN or inf)."""
    if value is None or value is pd.NA:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out + 0.0 if math.isfinite(out) else None  # + 0.0 folds -0.0 into 0.0


def _profile_column(name: str, series: pd.Series) -> ColumnProfile:
    """Profile one column: numeric stats for numbers, top values for everything else."""
    dtype = series.dtype
    n_missing = int(series.isna().sum())
    try:
        n_unique: int | None = int(series.nunique(dropna=True))
    except TypeError:  # unhashable values such as lists
        n_unique = int(series.dropna().map(repr).nunique())
    is_numeric = (
        ptypes.is_numeric_dtype(dtype)
        and not ptypes.is_bool_dtype(dtype)
        and not ptypes.is_complex_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    )
    if is_numeric:
        present = series.dropna()
        if present.empty:
            return ColumnProfile(name=name, dtype=str(dtype), n_missing=n_missing, n_unique=n_unique)
        with np.errstate(invalid="ignore", over="ignore"):  # inf values make std NaN -> None
            return ColumnProfile(
                name=name,
                dtype=str(dtype),
                n_missing=n_missing,
                n_unique=n_unique,
                min=_json_float(present.min()),
                max=_json_float(present.max()),
                mean=_json_float(present.mean()),
                std=_json_float(present.std(ddof=1)) if len(present) >= 2 else None,
            )
    return ColumnProfile(
        name=name, dtype=str(dtype), n_missing=n_missing, n_unique=n_unique, top=_top_values(series)
    )


def _top_values(series: pd.Series) -> tuple[tuple[str, int], ...]:
    """Up to five ``(str(value), count)`` pairs, most frequent first, ties by value string."""
    present = series.dropna()
    try:
        counts = present.value_counts(dropna=True, sort=False)
    except TypeError:  # unhashable values: count their string forms instead
        counts = present.map(str).value_counts(sort=False)
    merged: Counter[str] = Counter()
    for value, count in zip(counts.index.tolist(), counts.tolist(), strict=True):
        if count > 0:  # categoricals list unused categories with a zero count
            merged[str(value)] += int(count)
    ranked = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:_TOP_N])
