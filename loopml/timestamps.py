"""Times as loopml stores them: whole milliseconds since the Unix epoch, UTC.

One place for the clock and for reading the times users pass (a datetime, an
ISO string or a number of milliseconds), so every domain agrees on both.
"""

from __future__ import annotations

import time
from datetime import datetime

from loopml.errors import InvalidValueError


def now_ms() -> int:
    """The current time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def to_ms(moment: datetime | int | float | str | None) -> int | None:
    """Milliseconds since the epoch from a datetime, an ISO string or a number of ms (None stays None)."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return int(moment.timestamp() * 1000)
    if isinstance(moment, str):
        try:
            return int(datetime.fromisoformat(moment).timestamp() * 1000)
        except ValueError as exc:
            raise InvalidValueError(f"Not an ISO date or time: {moment!r} (e.g. 2026-11-23T09:00).") from exc
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        return int(moment)
    raise InvalidValueError(f"Expected a datetime, an ISO string or milliseconds, got {type(moment).__name__}.")
