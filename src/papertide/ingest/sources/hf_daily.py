"""Hugging Face Daily Papers: `GET /api/daily_papers?date=YYYY-MM-DD`, one JSON array per day."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from papertide.ingest.sources.base import ParseResult, SourceError, day_start, parse_datetime, parse_each
from papertide.papers.ids import canonical_id
from papertide.papers.schemas import PaperIn, SignalIn

NAME = "hf-daily"


def load_day(raw: bytes | str, *, location: str) -> list[Any]:
    """Decode one day's document; anything but a JSON array fails with its location."""
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"{NAME}: {location} is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from None
    if not isinstance(items, list):
        raise SourceError(f"{NAME}: {location} should be a JSON array of papers, got {type(items).__name__}")
    return items


def parse_day(items: list[Any], *, day: date, observed_at: datetime, location: str) -> ParseResult:
    """Turn one day's items into records; a bad item is skipped with its index as location."""
    records = parse_each(
        items,
        lambda item: parse_item(item, day=day, observed_at=observed_at),
        location_of=lambda index, _: f"{location}[{index}]",
        # An item of the wrong shape (a list, a string where an object belongs) fails on `.get`.
        errors=(ValueError, TypeError, AttributeError),
        start=0,
    )
    return ParseResult.collect(records)


def parse_item(item: dict[str, Any], *, day: date, observed_at: datetime) -> PaperIn:
    """One Daily Papers item. The schema drifts across years, so every field but the id is optional."""
    paper = item.get("paper") or {}
    raw_id = paper.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise ValueError("paper.id is missing")
    paper_id, version = canonical_id(raw_id)
    listed = parse_datetime(paper.get("submittedOnDailyAt"), where="paper.submittedOnDailyAt")
    return PaperIn(
        id=paper_id,
        version=version,
        title=paper.get("title") or item.get("title") or "",
        abstract=paper.get("summary") or item.get("summary") or "",
        authors=[a["name"] for a in paper.get("authors") or [] if isinstance(a, dict) and a.get("name")],
        published_at=parse_datetime(paper.get("publishedAt"), where="paper.publishedAt"),
        announced_at=listed or day_start(day),
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        code_url=paper.get("githubRepo") or None,
        project_url=paper.get("projectPage") or None,
        signals=_signals(paper, item, observed_at),
    )


def _signals(paper: dict[str, Any], item: dict[str, Any], observed_at: datetime) -> list[SignalIn]:
    counts = {
        "upvotes": paper.get("upvotes"),
        "github_stars": paper.get("githubStars"),
        "comments": item.get("numComments"),
    }
    return [
        SignalIn(kind=kind, value=value, observed_at=observed_at)
        for kind, value in counts.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]


def recorded_observation_time(day: date) -> datetime:
    """Recorded days were fetched the same morning (SOURCES.md): we date their counts at noon UTC."""
    return day_start(day) + timedelta(hours=12)
