"""Five-field cron expressions (minute hour day-of-month month day-of-week), matched minute by minute.

Supports ``*``, numbers, ranges ``a-b``, lists ``a,b`` and steps ``*/n`` or
``a-b/n``; day-of-week 0 or 7 is Sunday. When both day fields are restricted
a day matches either, as in classic cron. That covers what schedules of
retraining jobs use; names (``MON``, ``JAN``) and ``@daily`` are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loopml.errors import InvalidValueError

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(x) for x in body.split("-", 1))
            else:
                start = end = int(body)
        except ValueError:
            raise InvalidValueError(f"Bad cron {name} field {text!r}: use numbers, '*', 'a-b', 'a,b' or '/n'.") from None
        if step < 1 or not low <= start <= end <= high:
            raise InvalidValueError(f"Bad cron {name} field {text!r}: values run from {low} to {high}.")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; ``matches(moment)`` and ``fires_between(after, until)``."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split() if isinstance(expression, str) else []
        if len(parts) != 5:
            raise InvalidValueError(f"A cron schedule has 5 fields (minute hour day month weekday), got {expression!r}.")
        fields = [_parse_field(p, name, low, high) for p, (name, low, high) in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in fields[4])
        return cls(expression, *fields[:4], weekdays, parts[2] == "*", parts[4] == "*")

    def matches(self, moment: datetime) -> bool:
        if moment.minute not in self.minutes or moment.hour not in self.hours or moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def fires_between(self, after_ms: int, until_ms: int) -> int | None:
        """The latest minute (ms) in ``(after_ms, until_ms]`` the schedule fires at, or None (looks back 1 day at most)."""
        until = datetime.fromtimestamp(until_ms / 1000, tz=UTC).replace(second=0, microsecond=0)
        floor = max(after_ms, until_ms - 86_400_000)
        moment = until
        while moment.timestamp() * 1000 > floor:
            if self.matches(moment):
                return int(moment.timestamp() * 1000)
            moment -= timedelta(minutes=1)
        return None
