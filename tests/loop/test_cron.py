"""Cron expressions: parsing (with errors that say what is wrong) and when a schedule fires."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loopml.errors import InvalidValueError
from loopml.loop.cron import Cron

DAY_MS = 86_400_000


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_fields_and_their_errors():
    assert Cron.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert sorted(Cron.parse("1-10/3 * * * *").minutes) == [1, 4, 7, 10]
    assert sorted(Cron.parse("5/20 * * * *").minutes) == [5, 25, 45]  # "a/n": from a, every n
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
