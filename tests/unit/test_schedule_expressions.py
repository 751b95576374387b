"""EventBridge Scheduler expressions as the local scheduler reads them: rate (epoch-aligned), at(),
and AWS's 6-field cron() (with `?`, AWS day-of-week numbering, MON-FRI, `#`, `L` and the year)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradeflow.local.scheduler import ExpressionError, next_fire


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


MONDAY = utc(2026, 1, 5, 14, 30)  # 2026-01-05 is a Monday


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("rate(1 minute)", MONDAY, utc(2026, 1, 5, 14, 31)),  # strictly after a grid point
        ("rate(1 minute)", utc(2026, 1, 5, 14, 30, 59, 999999), utc(2026, 1, 5, 14, 31)),
        ("rate(5 minutes)", utc(2026, 1, 5, 14, 32, 10), utc(2026, 1, 5, 14, 35)),
        ("rate(7 minutes)", MONDAY, utc(2026, 1, 5, 14, 36)),  # 7-minute grid from 1970-01-01T00:00
        ("rate(1 hour)", MONDAY, utc(2026, 1, 5, 15, 0)),
        ("rate(2 hours)", utc(2026, 1, 5, 13, 10), utc(2026, 1, 5, 14, 0)),
        ("rate(5 hours)", MONDAY, utc(2026, 1, 5, 18, 0)),  # 1970-01-01 + k*5h: ... 13:00, 18:00 on this day
        ("rate(1 day)", MONDAY, utc(2026, 1, 6)),
        ("rate(7 days)", MONDAY, utc(2026, 1, 8)),  # the epoch was a Thursday
        ("  rate(3 days) ", MONDAY, utc(2026, 1, 7)),  # day 20460 since the epoch
    ],
)
def test_rate_fires_on_the_epoch_aligned_grid(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire(expression, after) == expected
    assert next_fire(expression, expected - timedelta(microseconds=1)) == expected


def test_rate_sequence_is_evenly_spaced() -> None:
    fires = [MONDAY]
    for _ in range(5):
        nxt = next_fire("rate(15 minutes)", fires[-1])
        assert nxt is not None
        fires.append(nxt)
    assert fires[1:] == [utc(2026, 1, 5, 14, 45), utc(2026, 1, 5, 15), *(utc(2026, 1, 5, 15, m) for m in (15, 30, 45))]


def test_at_fires_once_then_never() -> None:
    assert next_fire("at(2026-01-05T15:00:00)", MONDAY) == utc(2026, 1, 5, 15)
    assert next_fire("at(2026-01-05T15:00:00)", utc(2026, 1, 5, 15)) is None  # strictly after
    assert next_fire("at(2026-01-05T15:00:00)", utc(2026, 1, 6)) is None


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 12 * * ? *)", MONDAY, utc(2026, 1, 6, 12)),
        ("cron(0 15 * * ? *)", MONDAY, utc(2026, 1, 5, 15)),
        ("cron(0/15 * * * ? *)", MONDAY, utc(2026, 1, 5, 14, 45)),
        ("cron(0 9 1 * ? *)", MONDAY, utc(2026, 2, 1, 9)),  # day of month, any weekday
        # weekdays by name: after Friday's run comes Monday's
        ("cron(30 14 ? * MON-FRI *)", utc(2026, 1, 9, 15), utc(2026, 1, 12, 14, 30)),
        ("cron(30 14 ? * MON-FRI *)", MONDAY, utc(2026, 1, 6, 14, 30)),
        # AWS numbers days 1-7 from Sunday
        ("cron(0 9 ? * 1 *)", MONDAY, utc(2026, 1, 11, 9)),  # SUN
        ("cron(0 9 ? * 7 *)", MONDAY, utc(2026, 1, 10, 9)),  # SAT
        ("cron(0 9 ? * 2 *)", MONDAY, utc(2026, 1, 12, 9)),  # MON (today's 09:00 has passed)
        ("cron(0 9 ? * 2-6 *)", utc(2026, 1, 9, 10), utc(2026, 1, 12, 9)),  # MON-FRI by number
        ("cron(0 9 ? * 1,7 *)", MONDAY, utc(2026, 1, 10, 9)),  # weekends
        # the n-th weekday of the month and the last one
        ("cron(0 12 ? * 6#3 *)", MONDAY, utc(2026, 1, 16, 12)),  # third Friday
        ("cron(0 12 ? * 2#1 *)", MONDAY, utc(2026, 2, 2, 12)),  # first Monday: January's (the 5th) 12:00 has passed
        ("cron(0 12 ? * 6L *)", MONDAY, utc(2026, 1, 30, 12)),  # last Friday
        # the year field
        ("cron(0 12 1 1 ? 2030)", MONDAY, utc(2030, 1, 1, 12)),
        ("cron(0 12 ? * MON 2027-2028)", MONDAY, utc(2027, 1, 4, 12)),
    ],
)
def test_cron_with_aws_syntax(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire(expression, after) == expected


def test_first_monday_is_today_when_its_time_is_still_ahead() -> None:
    assert next_fire("cron(0 12 ? * 2#1 *)", utc(2026, 1, 5, 11)) == utc(2026, 1, 5, 12)


def test_cron_that_only_matches_past_years_never_fires_again() -> None:
    assert next_fire("cron(0 12 1 1 ? 2020)", MONDAY) is None


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "every 5 minutes",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "rate(x minutes)",
        "rate(-1 minutes)",
        "at(tomorrow)",
        "at(2026-13-01T00:00:00)",
        "cron(0 12 * * ?)",  # 5 fields: AWS needs the year
        "cron(0 12 * * ? * *)",
        "cron(61 * * * ? *)",
        "cron(0 25 * * ? *)",
        "cron(0 12 ? * 8 *)",  # AWS days of the week are 1-7
        "cron(0 12 ? * 0 *)",
        "cron(0 12 ? * FUNDAY *)",
    ],
)
def test_invalid_expressions_raise_expression_error(expression: str) -> None:
    with pytest.raises(ExpressionError):
        next_fire(expression, MONDAY)
