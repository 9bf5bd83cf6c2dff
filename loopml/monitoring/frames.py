"""Turning what callers pass (DataFrames, dicts of columns) into DataFrames, with one clear error when it cannot be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from loopml.errors import ColumnNotFoundError, InvalidValueError, did_you_mean


def as_frame(data: Any, which: str, *, allow_empty: bool = False) -> pd.DataFrame:
    """``data`` as a DataFrame; InvalidValueError naming ``which`` side when it is not a table or is empty."""
    if isinstance(data, Mapping) and not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(dict(data))
        except ValueError as exc:
            raise InvalidValueError(f"The {which} data is not a table of equal-length columns: {exc}") from exc
    if not isinstance(data, pd.DataFrame):
        raise InvalidValueError(
            f"The {which} data must be a pandas DataFrame or a dict of columns, got {type(data).__name__}."
        )
    if not allow_empty and (len(data) == 0 or data.shape[1] == 0):
        raise InvalidValueError(f"The {which} data is empty ({len(data)} rows, {data.shape[1]} columns).")
    if data.columns.has_duplicates:
        duplicated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise InvalidValueError(f"The {which} data has duplicate columns: {', '.join(duplicated)}.")
    return data


def require_columns(frame: pd.DataFrame, names: Iterable[Any], which: str) -> None:
    """ColumnNotFoundError for the first of ``names`` that ``frame`` lacks, with the closest existing name."""
    for name in names:
        if name not in frame.columns:
            raise ColumnNotFoundError(
                f"Column {name!r} is not in the {which} data (it has: {_listing(frame.columns)})."
                + did_you_mean(str(name), map(str, frame.columns))
            )


def _listing(columns: Iterable[Any], limit: int = 12) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
