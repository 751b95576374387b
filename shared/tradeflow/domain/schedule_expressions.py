"""EventBridge Scheduler expressions, checked as AWS accepts them (a deployment with an expression AWS
would refuse must be refused when it is made, not fail when its schedules are created)."""

from __future__ import annotations

import re
from datetime import datetime

_RATE = re.compile(r"^rate\((\d{1,6}) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# (name, lowest, highest, extra tokens allowed besides numbers, ranges, lists, steps and *)
_CRON_FIELDS: tuple[tuple[str, int, int, str], ...] = (
    ("minutes", 0, 59, ""),
    ("hours", 0, 23, ""),
    ("day-of-month", 1, 31, r"|\?|L|LW|\d{1,2}W"),
    ("month", 1, 12, rf"|{_MONTHS}"),
    ("day-of-week", 1, 7, rf"|\?|L|\d{{1}}L|\d#[1-5]|{_DAYS}"),
    ("year", 1970, 2199, ""),
)


def validate_schedule(expression: str) -> str:
    """An EventBridge Scheduler expression as AWS accepts it, or ValueError saying what is wrong:
    `rate(1 minute)` / `rate(5 minutes)` (singular unit for 1, plural otherwise), `at(2026-01-05T14:30:00)`
    or `cron(minutes hours day-of-month month day-of-week year)` with `?` in one of the two day fields."""
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ValueError("a rate must be at least 1")
        if (value == 1) == unit.endswith("s"):
            raise ValueError(f"rate({value} {unit}): use a singular unit for 1 and a plural unit otherwise")
        return expression
    at = _AT.match(expression)
    if at:
        try:
            datetime.fromisoformat(at.group(1))
        except ValueError as exc:
            raise ValueError(f"at(...): {at.group(1)} is not a valid date and time") from exc
        return expression
    if expression.startswith("cron(") and expression.endswith(")"):
        _validate_cron(expression[5:-1])
        return expression
    raise ValueError(
        "schedule must be an EventBridge Scheduler expression: rate(5 minutes), "
        "cron(0/5 14-21 ? * MON-FRI *) or at(2026-01-05T14:30:00)"
    )


def _validate_cron(body: str) -> None:
    fields = body.split(" ")
    if len(fields) != 6 or any(not f for f in fields):
        raise ValueError(
            "cron(...) takes 6 fields separated by single spaces: minutes hours day-of-month month day-of-week year"
        )
    for value, (name, low, high, extra) in zip(fields, _CRON_FIELDS, strict=True):
        number = rf"(?:\d{{1,4}}{extra})"
        part = rf"(?:\*|{number}(?:-{number})?)(?:/\d{{1,4}})?"
        if not re.fullmatch(rf"{part}(?:,{part})*", value):
            raise ValueError(f"cron(...): invalid {name} field {value!r}")
        for token in re.findall(r"(?<![/#\d])\d+", value):
            if not low <= int(token) <= high:
                raise ValueError(f"cron(...): {name} value {token} is outside {low}-{high}")
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError("cron(...): exactly one of day-of-month and day-of-week must be '?'")
