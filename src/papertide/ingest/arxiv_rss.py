"""The daily arXiv announcement feed; ids never seen before get their full record from the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from papertide.config import get_settings
from papertide.ingest.arxiv_api import id_pages
from papertide.ingest.http import Fetcher
from papertide.ingest.service import Page
from papertide.ingest.sources import arxiv_rss
from papertide.ingest.sources.base import ParseResult
from papertide.papers.schemas import PaperIn

NAME = arxiv_rss.NAME
KnownIds = Callable[[list[str]], set[str]]


def pages(fetcher: Fetcher, *, categories: Sequence[str], known_ids: KnownIds) -> Iterator[Page]:
    """Today's announcements as one page; `known_ids` says which ids are stored already."""
    joined = "+".join(categories)
    raw = fetcher.get(f"{get_settings().arxiv_rss_url}/{joined}")
    feed = arxiv_rss.parse_feed(raw, location=f"rss {joined}")
    announced = [item.paper.model_copy(update={"announce_type": item.announce_type}) for item in feed.items]
    yield Page(ParseResult(records=_with_details(fetcher, announced, known_ids), skipped=feed.skipped))


def _with_details(fetcher: Fetcher, announced: list[PaperIn], known_ids: KnownIds) -> list[PaperIn]:
    """Swap each unseen paper's feed record for the API's fuller one, keeping the announcement fields."""
    seen = known_ids([p.id for p in announced])
    unseen = [p.id for p in announced if p.id not in seen]
    details: dict[str, PaperIn] = {}
    for page in id_pages(fetcher, unseen):
        details.update({r.id: r for r in page.result.records})
    merged = []
    for paper in announced:
        full = details.get(paper.id)
        if full is not None:
            paper = full.model_copy(
                update={"announced_at": paper.announced_at, "announce_type": paper.announce_type}
            )
        merged.append(paper)
    return merged
