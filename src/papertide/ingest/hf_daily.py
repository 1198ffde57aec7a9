"""Hugging Face Daily Papers runs: saved responses (one page) or live days (a page per day)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

from papertide.config import get_settings
from papertide.ingest.http import Fetcher
from papertide.ingest.service import Page
from papertide.ingest.sources import hf_daily
from papertide.ingest.sources.base import ParseResult, SourceError

NAME = hf_daily.NAME


def file_pages(paths: Iterable[Path]) -> Iterator[Page]:
    """Saved responses named YYYY-MM-DD.json, as one page: one bad file writes nothing."""
    result = ParseResult()
    for path in sorted(paths):
        day = _day_from_name(path)
        try:
            items = hf_daily.load_day(path.read_bytes(), location=path.name)
        except OSError as error:
            raise SourceError(f"hf-daily: cannot read {path}: {error.strerror or error}") from None
        observed = hf_daily.recorded_observation_time(day)
        result.extend(hf_daily.parse_day(items, day=day, observed_at=observed, location=path.name))
    yield Page(result)


def day_pages(days: Iterable[date], *, fetcher: Fetcher) -> Iterator[Page]:
    """One request and one page per day. Counts are observed at fetch time, so history is never overwritten."""
    url = get_settings().hf_daily_url
    for day in days:
        location = f"daily_papers?date={day.isoformat()}"
        items = hf_daily.load_day(fetcher.get(url, {"date": day.isoformat()}), location=location)
        yield Page(hf_daily.parse_day(items, day=day, observed_at=fetcher.clock.now(), location=location))


def _day_from_name(path: Path) -> date:
    try:
        return date.fromisoformat(path.stem)
    except ValueError:
        raise SourceError(f"hf-daily: cannot tell the day of {path.name}: name it YYYY-MM-DD.json") from None
