"""Time buckets and segments: the group keys every per-bucket figure (performance, operations) is computed over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from pandas.api.types import is_datetime64_any_dtype

from loopml.errors import InvalidValueError
from loopml.monitoring.frames import require_columns

BUCKET = "bucket"
_ALL = "__all__"


def group_keys(
    frame: pd.DataFrame, *, bucket: str | None, by: str | Sequence[str] | None, time: str, which: str
) -> tuple[pd.DataFrame, list[Any], list[str]]:
    """The frame (with a UTC datetime ``time`` column when bucketing), the groupby keys, and the output key names.

    ``bucket`` is a pandas offset alias ("15min", "1h", "1D", "W"); buckets are labelled as pandas
    ``resample`` labels them (the start of the bucket for fixed frequencies, the end of the week for
    "W"). ``by`` names segment columns. With neither, the whole frame is one group.
    """
    segments = [by] if isinstance(by, str) else list(by or [])
    require_columns(frame, segments, which)
    keys: list[Any] = []
    names: list[str] = []
    if bucket is not None:
        require_columns(frame, [time], which)
        try:
            offset = pd.tseries.frequencies.to_offset(bucket)
        except (ValueError, TypeError) as exc:
            raise InvalidValueError(
                f"bucket must be a pandas offset alias such as '1h' or '1D', got {bucket!r}."
            ) from exc
        frame = frame.assign(**{time: _as_datetime(frame[time], time)})
        keys.append(pd.Grouper(key=time, freq=offset))
        names.append(BUCKET)
    keys.extend(segments)
    names.extend(segments)
    if not keys:
        frame = frame.assign(**{_ALL: 0})
        keys = [_ALL]
    return frame, keys, names


def finish(table: pd.DataFrame, names: list[str], time: str) -> pd.DataFrame:
    """Turn the grouped index into ordinary columns named ``names``, drop empty buckets, number rows from 0."""
    table = table[table["n"] > 0]
    if not names:
        return table.reset_index(drop=True)
    table = table.reset_index()
    table = table.rename(columns={time: BUCKET}) if BUCKET in names else table
    return table.drop(columns=[_ALL], errors="ignore").reset_index(drop=True)


def _as_datetime(series: pd.Series, name: str) -> pd.Series:
    if is_datetime64_any_dtype(series.dtype):
        return series
    try:
        return pd.to_datetime(series, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(f"Column {name!r} must hold datetimes to bucket by time: {exc}") from exc
