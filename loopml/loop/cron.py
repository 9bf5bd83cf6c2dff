"""Cron schedules (minute hour day-of-month month day-of-week) in a time zone, read by ``cronsim``.

The library reads the fields: numbers, ``*``, ranges ``a-b``, lists ``a,b``,
steps ``*/n``, ``a/n`` and ``a-b/n``, the names ``JAN``-``DEC`` and
``SUN``-``SAT`` (day of week 0 or 7 is Sunday), ``L`` (last day of the
month), ``LW``, ``5L`` and ``1#2``. When both day fields are restricted a day
matches either, as in Debian's cron. We add the macros ``@hourly``,
``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
(``@annually``), refuse the six-field form with seconds, and turn the
library's terse errors into ones that say what each field accepts.

A schedule runs in UTC unless given an IANA zone (``timezone="Europe/Berlin"``).
Across daylight-saving changes it behaves as Debian's cron and cronsim do:
a job at a fixed time that falls into the skipped hour runs once, when the
clock jumps forward (02:30 becomes 03:00), and one in the repeated hour runs
once, the first time round; ``*`` hours (``0 * * * *``) follow real time, so
the repeated hour fires twice and the skipped one not at all.

Why cronsim and not croniter: both are kept up (croniter by Pallets-Eco since
its maintainer stepped back in 2024), but croniter 7.0 fires ``30 2 * * *``
twice on the night the clocks go back, and it needs python-dateutil and ships
no type hints; cronsim has no dependencies, ships ``py.typed``, is what
Healthchecks.io checks cron schedules with, and lacks only the ``@`` macros,
which are five fixed strings below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from loopml.errors import InvalidValueError, did_you_mean

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# cronsim names the field it refuses ("Bad day-of-week"); what each accepts, for our message
_FIELDS = {
    "minute": (0, "from 0 to 59"),
    "hour": (1, "from 0 to 23"),
    "day-of-month": (2, "from 1 to 31 (or L, LW)"),
    "month": (3, "from 1 to 12 or JAN-DEC"),
    "day-of-week": (4, "from 0 to 7 (0 and 7 are Sunday) or SUN-SAT (or 5L, 1#2)"),
}


def zone(name: str | None) -> tzinfo:
    """The IANA time zone ``name`` (UTC for None); InvalidValueError naming it when there is no such zone."""
    if name is None or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        hint = did_you_mean(name, available_timezones()) if isinstance(name, str) else ""
        raise InvalidValueError(
            f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'.{hint}"
        ) from None


def _refusal(expression: str, fields: list[str], error: CronSimError) -> InvalidValueError:
    field_name = str(error).removeprefix("Bad ")
    if field_name not in _FIELDS:  # "Wrong number of fields" cannot happen: we pass exactly five
        return InvalidValueError(f"Bad cron schedule {expression!r}: {error}.")
    index, values = _FIELDS[field_name]
    if field_name == "day-of-month":
        try:
            CronSim(f"0 0 {fields[2]} * *", datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError:
            pass
        else:  # the day is fine on its own: no month named has it (Feb 30)
            return InvalidValueError(f"The cron schedule {expression!r} never fires: no month it names has that day.")
    return InvalidValueError(
        f"Bad cron {field_name.replace('-', ' ')} field {fields[index]!r}: use values {values}, '*', "
        "ranges 'a-b' with a <= b, lists 'a,b' and steps '/n' of 1 or more."
    )


@dataclass(frozen=True)
class Cron:
    """A parsed cron schedule in a time zone: ``fires_between(after, until)`` and ``next_after(after)``.

    Example:
        >>> Cron.parse("0 6 * * MON", timezone="Europe/Berlin").next_after(0)  # Monday 5 January 1970, 05:00 UTC
        363600000
    """

    expression: str
    timezone: str | None = None

    @classmethod
    def parse(cls, expression: str, timezone: str | None = None) -> Cron:
        """Check ``expression`` (five fields or an ``@`` macro) and ``timezone`` (an IANA name, None for UTC).

        Raises InvalidValueError saying which field is wrong and what it accepts, or naming the unknown zone.
        """
        cron = cls(" ".join(expression.split()) if isinstance(expression, str) else expression, timezone)
        zone(timezone)
        cron._sim(datetime(2000, 1, 1, tzinfo=UTC))
        return cron

    def _sim(self, start: datetime, *, reverse: bool = False) -> CronSim:
        text = MACROS.get(self.expression.lower(), self.expression) if isinstance(self.expression, str) else ""
        fields = text.split()
        if len(fields) != 5:
            raise InvalidValueError(
                "A cron schedule has 5 fields (minute hour day month weekday) or is one of "
                f"{', '.join(MACROS)}; got {self.expression!r}."
            )
        try:
            return CronSim(text, start, reverse=reverse)
        except CronSimError as exc:
            raise _refusal(self.expression, fields, exc) from None

    def _moment(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone(self.timezone))

    def fires_between(self, after_ms: int, until_ms: int) -> int | None:
        """The latest minute (ms) in ``(after_ms, until_ms]`` the schedule fires at, or None.

        However long the gap (an agent that was down for a week), this is one
        firing, so missed runs are caught up once.
        """
        until = self._moment(until_ms).replace(second=0, microsecond=0)
        # reverse iteration starts one second back, so start one second on to include ``until`` itself
        try:
            fired = next(self._sim(until + timedelta(seconds=1), reverse=True))
        except StopIteration:  # nothing in the last 50 years
            return None
        fired_ms = int(fired.timestamp() * 1000)
        return fired_ms if after_ms < fired_ms <= until_ms else None

    def next_after(self, after_ms: int) -> int | None:
        """The first minute (ms) after ``after_ms`` the schedule fires at, or None if not within 50 years."""
        try:
            return int(next(self._sim(self._moment(after_ms))).timestamp() * 1000)
        except StopIteration:
            return None
