"""The trending API's `date`, `week` and `month`: a calendar span (UTC) to list the papers of.

As Hugging Face's /api/daily_papers takes them: `date=2026-08-21`, `week=2026-W34` (ISO 8601
week, Monday to Sunday), `month=2026-08`. A value that names no real span (2026-02-30, 2026-W54,
2026-13, or 2026-W53 in a year of 52 weeks) is a 422 naming the parameter, never a 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from fastapi.exceptions import RequestValidationError

# Published in OpenAPI as the parameters' patterns; [0-9], not \d, which matches any script's digits.
WEEK_PATTERN = "^[1-9][0-9]{3}-W(0[1-9]|[1-4][0-9]|5[0-3])$"
MONTH_PATTERN = "^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"
_WEEK = re.compile(r"^([0-9]{4})-W([0-9]{2})$")
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ListedWindow:
    """Papers listed in [start, end): one day, ISO week or month."""

    name: str  # the parameter given: date, week or month
    value: str  # as given
    start: datetime
    end: datetime

    @property
    def period(self) -> str:
        """The span's length as the trending tabs name it: day, week or month."""
        return "day" if self.name == "date" else self.name


def parse(*, day: date | None, week: str | None, month: str | None) -> ListedWindow | None:
    """The span asked for, or None when none was; a 422 naming the parameter if it is not a real span."""
    given = {
        name: value for name, value in (("date", day), ("week", week), ("month", month)) if value is not None
    }
    if len(given) > 1:
        raise _invalid(sorted(given)[-1], "give at most one of date, week and month")
    if not given:
        return None
    name, value = given.popitem()
    try:
        first, days = _span(name, value)
    except ValueError as error:
        raise _invalid(name, str(error)) from None
    return ListedWindow(name=name, value=str(value), start=_midnight(first), end=_after(first, days))


def _span(name: str, value: date | str) -> tuple[date, int]:
    """The first day of the span and its length in days."""
    if isinstance(value, date):
        return value, 1
    if name == "week":
        match = _WEEK.match(value)
        if not match:
            raise ValueError("must be an ISO week as YYYY-Www")
        return date.fromisocalendar(int(match[1]), int(match[2]), 1), 7
    match = _MONTH.match(value)
    if not match:
        raise ValueError("must be a month as YYYY-MM")
    first = date(int(match[1]), int(match[2]), 1)
    following = (first.month % 12 + 1, first.year + first.month // 12)
    days = 31 if following[1] > date.max.year else (date(following[1], following[0], 1) - first).days
    return first, days


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _after(first: date, days: int) -> datetime:
    """Midnight after the span; the end of time for the last days Python can count (year 9999)."""
    try:
        return _midnight(first + timedelta(days=days))
    except OverflowError:
        return _END_OF_TIME


def _invalid(name: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": message}])
