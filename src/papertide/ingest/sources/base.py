"""What every source parser shares: the result (good records plus skipped ones with their location),
skipping a bad record, and reading the names and dates that several sources write the same way."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from papertide.papers.dates import email_date
from papertide.papers.schemas import PaperIn

USER_AGENT = "papertide/0.1 (+https://github.com/papertide/papertide; self-hosted paper discovery)"

# `A, B and C`, `A, B, and C` (arXiv's author strings in RSS, arXivRaw and the Kaggle snapshot).
_AUTHOR_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")

Item = TypeVar("Item")
Parsed = TypeVar("Parsed")


class SourceError(Exception):
    """A whole document could not be read; the message names the source and the position."""


@dataclass
class Skipped:
    location: str
    reason: str


@dataclass
class ParseResult:
    records: list[PaperIn] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @classmethod
    def collect(cls, results: Iterable[PaperIn | Skipped]) -> ParseResult:
        """The records and the skipped ones from `parse_each`, each in document order."""
        records, skipped = split_skipped(results)
        return cls(records, skipped)

    def extend(self, other: ParseResult) -> None:
        self.records.extend(other.records)
        self.skipped.extend(other.skipped)


def parse_each(
    items: Iterable[Item],
    parse_one: Callable[[Item], Parsed | None],
    *,
    location_of: Callable[[int, Item], str],
    errors: tuple[type[Exception], ...] = (ValueError,),
    start: int = 1,
) -> Iterator[Parsed | Skipped]:
    """Parse items lazily; one that raises `errors` becomes a Skipped, and a None result is left out.

    `location_of(number, item)` names a bad item (numbers count from `start`); it is called only for
    bad items, so a source of millions of lines pays nothing for it.
    """
    for number, item in enumerate(items, start=start):
        try:
            parsed = parse_one(item)
        except errors as error:
            yield Skipped(location_of(number, item), _reason(error))
            continue
        if parsed is not None:
            yield parsed


def split_skipped(results: Iterable[Parsed | Skipped]) -> tuple[list[Parsed], list[Skipped]]:
    """The parsed items and the skipped ones, each in document order."""
    parsed: list[Parsed] = []
    skipped: list[Skipped] = []
    for result in results:
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            parsed.append(result)
    return parsed, skipped


def describe(error: ValidationError) -> str:
    """`title: Field required; abstract: ...` from a pydantic error, short enough for a log line."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _reason(error: Exception) -> str:
    # pydantic's own message spans several lines with links; the short form fits a log line.
    return describe(error) if isinstance(error, ValidationError) else str(error)


def json_line(line: str) -> Any:
    """The line's JSON value; ValueError `not JSON: <why> at column <n>` when it is not JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error.msg} at column {error.colno}") from None


def split_names(text: str) -> list[str]:
    """`Ada Lovelace, Alan Turing and Grace Hopper` -> three names; empty pieces are dropped."""
    # Empty pieces come from doubled separators: `Kandala,  Deepti` has a double space.
    return [name for part in _AUTHOR_SEPARATOR.split(text) if (name := " ".join(part.split()))]


def parse_datetime(value: object, *, where: str) -> datetime | None:
    """ISO 8601 (with `Z`) or a plain date, as an aware UTC datetime; None for empty values."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a date string, got {type(value).__name__}")
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{where}: unknown date format {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_rfc822(value: object, *, where: str) -> datetime:
    """An RFC 822 date (`Thu, 24 Sep 2026 00:00:00 -0400`) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a date string, got {type(value).__name__}")
    try:
        return email_date(value, utc=True)
    except ValueError:
        raise ValueError(f"{where}: unknown date format {value!r}") from None


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
