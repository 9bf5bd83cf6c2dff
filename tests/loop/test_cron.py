"""Cron expressions: parsing (with errors that say what is wrong) and when a schedule fires."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from loopml.errors import InvalidValueError
from loopml.loop.cron import Cron
from loopml.loop.policy import Policy
from tests.loop import library

DAY_MS = 86_400_000
BERLIN = ZoneInfo("Europe/Berlin")


def ms(*args: int, tz: tzinfo = UTC, fold: int = 0) -> int:
    return int(datetime(*args, tzinfo=tz, fold=fold).timestamp() * 1000)


def firings(cron: Cron, after_ms: int, until_ms: int) -> list[int]:
    """Every firing in ``(after_ms, until_ms]``, in order."""
    found: list[int] = []
    moment = cron.next_after(after_ms)
    while moment is not None and moment <= until_ms:
        found.append(moment)
        moment = cron.next_after(moment)
    return found


def minutes_of_an_hour(expression: str) -> list[int]:
    hour = ms(2025, 1, 6, 10)
    return [(t - hour) // 60_000 for t in firings(Cron.parse(expression), hour - 1, hour + 59 * 60_000)]


def test_fields_and_their_errors():
    assert firings(Cron.parse("0 0 * * 7"), ms(2025, 1, 1), ms(2025, 1, 14)) == [ms(2025, 1, 5), ms(2025, 1, 12)]
    assert minutes_of_an_hour("1-10/3 * * * *") == [1, 4, 7, 10]
    assert minutes_of_an_hour("5/20 * * * *") == [5, 25, 45]  # "a/n": from a, every n
    assert minutes_of_an_hour("5,50 * * * *") == [5, 50]
    with pytest.raises(InvalidValueError, match="step"):
        Cron.parse("*/0 * * * *")
    with pytest.raises(InvalidValueError, match="a <= b"):
        Cron.parse("5-1 * * * *")
    with pytest.raises(InvalidValueError, match="0 to 59"):
        Cron.parse("60 * * * *")
    with pytest.raises(InvalidValueError, match="never fires"):
        Cron.parse("0 0 30 2 *")
    assert Cron.parse("0 0 29 2 *").fires_between(ms(2024, 1, 1), ms(2024, 3, 1)) == ms(2024, 2, 29)


def test_a_missed_weekly_run_fires_once_however_long_the_agent_was_down():
    monday_3am = ms(2025, 1, 6, 3)
    weekly = Cron.parse("0 3 * * 1")
    # down from Sunday to Wednesday: the Monday run is caught up
    assert weekly.fires_between(monday_3am - DAY_MS, monday_3am + 2 * DAY_MS) == monday_3am
    # down for a year: one firing, the latest
    assert weekly.fires_between(monday_3am - 365 * DAY_MS, monday_3am + 2 * DAY_MS) == monday_3am
    assert weekly.fires_between(monday_3am, monday_3am + 2 * DAY_MS) is None  # already fired at the cursor
    every_minute = Cron.parse("* * * * *")
    assert every_minute.fires_between(monday_3am - 7 * DAY_MS, monday_3am + 30_000) == monday_3am


def test_names_and_macros():
    jan_1 = ms(2025, 1, 1)  # a Wednesday
    assert Cron.parse("0 6 * * MON").next_after(jan_1) == ms(2025, 1, 6, 6)
    assert Cron.parse("0 6 * * mon-fri").next_after(jan_1) == ms(2025, 1, 1, 6)
    assert Cron.parse("0 0 1 FEB,jul *").next_after(jan_1) == ms(2025, 2, 1)
    assert Cron.parse("0 0 L * *").next_after(jan_1) == ms(2025, 1, 31)  # the last day of the month
    expected = {
        "@hourly": ms(2025, 1, 1, 1),
        "@daily": ms(2025, 1, 2),
        "@midnight": ms(2025, 1, 2),
        "@weekly": ms(2025, 1, 5),  # Sunday
        "@monthly": ms(2025, 2, 1),
        "@yearly": ms(2026, 1, 1),
        "@annually": ms(2026, 1, 1),
        " @DAILY ": ms(2025, 1, 2),
    }
    for macro, first in expected.items():
        assert Cron.parse(macro).next_after(jan_1) == first, macro
    for bad in ("@fortnightly", "0 0 * * * *", "@daily 0", "", "0 0 * * FUNDAY"):
        with pytest.raises(InvalidValueError, match="cron"):
            Cron.parse(bad)
    with pytest.raises(InvalidValueError, match="SUN-SAT"):
        Cron.parse("0 6 * * MONDAY")


def test_monday_six_in_berlin_across_the_daylight_saving_changes():
    weekly = Cron.parse("0 6 * * MON", timezone="Europe/Berlin")
    # 2025: clocks go forward on Sunday 30 March, back on Sunday 26 October; 06:00 local moves in UTC
    march = firings(weekly, ms(2025, 3, 20), ms(2025, 4, 8))
    assert march == [ms(2025, 3, 24, 5), ms(2025, 3, 31, 4), ms(2025, 4, 7, 4)]
    october = firings(weekly, ms(2025, 10, 16), ms(2025, 11, 4))
    assert october == [ms(2025, 10, 20, 4), ms(2025, 10, 27, 5), ms(2025, 11, 3, 5)]
    assert all(datetime.fromtimestamp(t / 1000, BERLIN).hour == 6 for t in march + october)
    # an agent down over the change catches the Monday up once, at 06:00 Berlin time
    assert weekly.fires_between(ms(2025, 3, 29), ms(2025, 4, 2)) == ms(2025, 3, 31, 6, tz=BERLIN)
    assert weekly.fires_between(ms(2025, 3, 31, 6, tz=BERLIN), ms(2025, 4, 2)) is None


def test_times_in_the_skipped_and_the_repeated_hour_fire_once():
    nightly = Cron.parse("30 2 * * *", timezone="Europe/Berlin")
    # 30 March: 02:00 jumps to 03:00, so 02:30 never happens: it runs once, at 03:00
    spring = firings(nightly, ms(2025, 3, 29, 12), ms(2025, 3, 31, 12))
    assert spring == [ms(2025, 3, 30, 3, tz=BERLIN), ms(2025, 3, 31, 2, 30, tz=BERLIN)]
    assert nightly.fires_between(ms(2025, 3, 29, 12), ms(2025, 3, 30, 12)) == ms(2025, 3, 30, 1)  # 03:00 CEST
    # 26 October: 03:00 goes back to 02:00, so 02:30 happens twice: it runs once, the first time
    autumn = firings(nightly, ms(2025, 10, 25, 12), ms(2025, 10, 27, 12))
    assert autumn == [ms(2025, 10, 26, 2, 30, tz=BERLIN), ms(2025, 10, 27, 2, 30, tz=BERLIN)]
    second_time = ms(2025, 10, 26, 2, 30, tz=BERLIN, fold=1)
    assert nightly.fires_between(ms(2025, 10, 26, 2, 30, tz=BERLIN), second_time + 3600_000) is None
    # every hour follows real time: the repeated hour runs twice, the skipped one not at all
    hourly = Cron.parse("0 * * * *", timezone="Europe/Berlin")
    assert len(firings(hourly, ms(2025, 10, 25, 22), ms(2025, 10, 26, 22))) == 24
    assert len(firings(hourly, ms(2025, 3, 29, 23), ms(2025, 3, 30, 22))) == 23


def test_time_zones_are_checked_by_name():
    assert Cron.parse("0 6 * * *", timezone="UTC").next_after(0) == 6 * 3600_000
    assert Cron.parse("0 6 * * *", timezone="America/New_York").next_after(0) == 11 * 3600_000
    with pytest.raises(InvalidValueError, match=r"'Europe/Berln'.*Did you mean 'Europe/Berlin'"):
        Cron.parse("0 6 * * MON", timezone="Europe/Berln")
    for bad in ("CEST+2", "../../etc/passwd", ""):
        with pytest.raises(InvalidValueError, match="time zone"):
            Cron.parse("0 6 * * MON", timezone=bad)


def test_a_policy_schedule_in_a_time_zone():
    weekly = Policy("m", library.retrain, schedule="0 6 * * MON", timezone="Europe/Berlin")
    assert Cron.parse(weekly.schedule, weekly.timezone).next_after(ms(2025, 3, 25)) == ms(2025, 3, 31, 4)
    with pytest.raises(InvalidValueError, match="Europe/Paaris"):
        Policy("m", library.retrain, schedule="0 6 * * MON", timezone="Europe/Paaris")
    with pytest.raises(InvalidValueError, match="no schedule"):
        Policy("m", library.retrain, monitor="drift", timezone="Europe/Berlin")
