"""What every source parser returns: good records plus skipped ones with their location."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pydantic import ValidationError

from papertide.papers.schemas import PaperIn

USER_AGENT = "papertide/0.1 (+https://github.com/papertide/papertide; self-hosted paper discovery)"


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

    def extend(self, other: ParseResult) -> None:
        self.records.extend(other.records)
        self.skipped.extend(other.skipped)


def describe(error: ValidationError) -> str:
    """`title: Field required; abstract: ...` from a pydantic error, short enough for a log line."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


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


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
