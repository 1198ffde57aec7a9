"""Dates as papertide reads them from outside: a day as every date filter takes it (`YYYY-MM-DD`
and nothing else), and a date as mail, HTTP and RSS write it (`email_date`).

Pydantic's lax date also reads a number as seconds since 1970 (`date=0` was 1 January 1970) and a
midnight timestamp as its day: a client that sends either has made a mistake, and is told so with
a 422 rather than answered for a day it did not mean."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated

from pydantic import BeforeValidator

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_day(value: object) -> object:
    """`value` if it is a date or a `YYYY-MM-DD` string (pydantic then checks the day exists);
    ValueError for anything else."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    raise ValueError(f"a day is written YYYY-MM-DD, like 2026-11-28; got {str(value)[:40]!r}")


IsoDate = Annotated[date, BeforeValidator(iso_day)]


def email_date(value: str, *, utc: bool = False) -> datetime:
    """An RFC 5322 date (`Thu, 24 Sep 2026 00:00:00 -0400`: mail, HTTP headers, RSS) as written, naive
    for `-0000`; with `utc`, aware and in UTC (`-0000` read as UTC, as RFC 5322 means it).

    ValueError for anything that cannot be read, a year or an offset too large to hold included:
    email.utils raises OverflowError for those (a 20-digit year; 9999 at -0100 once in UTC), which
    every caller missed, and If-Modified-Since with one was a 500."""
    try:
        parsed = parsedate_to_datetime(value)
        if utc:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return parsed
    except (TypeError, OverflowError) as error:
        raise ValueError(f"not a date: {value[:80]!r}") from error
