"""A day as every date filter takes it: `YYYY-MM-DD` and nothing else.

Pydantic's lax date also reads a number as seconds since 1970 (`date=0` was 1 January 1970) and a
midnight timestamp as its day: a client that sends either has made a mistake, and is told so with
a 422 rather than answered for a day it did not mean."""

from __future__ import annotations

import re
from datetime import date, datetime
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
