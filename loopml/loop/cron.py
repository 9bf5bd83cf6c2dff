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

_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the most each month has (leap years)
_LOOKBACK_MS = 5 * 366 * 86_400_000  # Feb 29 comes round every 4 years
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
                start = int(body)
                end = high if step_text else start  # "a/n": from a to the top, every n (as croniter reads it)
        except ValueError:
            raise InvalidValueError(f"Bad cron {name} field {text!r}: use numbers, '*', 'a-b', 'a,b' or '/n'.") from None
        if step < 1:
            raise InvalidValueError(f"Bad cron {name} field {text!r}: a step '/n' must be 1 or more.")
        if not low <= start <= end <= high:
            raise InvalidValueError(
                f"Bad cron {name} field {text!r}: values run from {low} to {high}, and a range 'a-b' needs a <= b."
            )
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
        cron = cls(expression, *fields[:4], weekdays, parts[2] == "*", parts[4] == "*")
        if cron.any_weekday and not any(day <= _MONTH_DAYS[month - 1] for month in cron.months for day in cron.days):
            raise InvalidValueError(f"The cron schedule {expression!r} never fires: no month it names has that day.")
        return cron

    def matches(self, moment: datetime) -> bool:
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        return self._day_matches(moment)

    def _day_matches(self, moment: datetime) -> bool:
        if moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def fires_between(self, after_ms: int, until_ms: int) -> int | None:
        """The latest minute (ms) in ``(after_ms, until_ms]`` the schedule fires at, or None.

        However long the gap (an agent that was down for a week), this is one
        firing, so missed runs are caught up once. The search walks back day by
        day, then through that day's times, and looks back about 5 years at most.
        """
        until = datetime.fromtimestamp(until_ms / 1000, tz=UTC).replace(second=0, microsecond=0)
        floor = max(after_ms, until_ms - _LOOKBACK_MS)
        times = sorted(((h, m) for h in self.hours for m in self.minutes), reverse=True)
        day = until.replace(hour=0, minute=0)
        while (day.timestamp() + 86_400) * 1000 > floor:
            if self._day_matches(day):
                for hour, minute in times:
                    moment = day.replace(hour=hour, minute=minute)
                    moment_ms = int(moment.timestamp() * 1000)
                    if moment_ms <= floor:
                        return None  # every earlier time is at or before the floor too
                    if moment <= until:
                        return moment_ms
            day -= timedelta(days=1)
        return None
