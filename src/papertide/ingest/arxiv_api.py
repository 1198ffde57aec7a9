"""arXiv API runs: a search_query paged 100 at a time, or an id_list in batches of 100."""

from __future__ import annotations

from collections.abc import Iterator

from papertide.config import get_settings
from papertide.ingest.http import Fetcher
from papertide.ingest.service import Page
from papertide.ingest.sources import arxiv_api
from papertide.ingest.sources.base import ParseResult

NAME = arxiv_api.NAME
PAGE_SIZE = 100
ID_BATCH = 100


def query_pages(fetcher: Fetcher, query: str, max_results: int | None) -> Iterator[Page]:
    """Pages of a search_query until it runs out (or `max_results`)."""
    url = get_settings().arxiv_api_url
    start = 0
    while max_results is None or start < max_results:
        size = PAGE_SIZE if max_results is None else min(PAGE_SIZE, max_results - start)
        raw = fetcher.get(url, {"search_query": query, "start": start, "max_results": size})
        page = arxiv_api.parse_feed(raw, location=f"search_query={query} start={start}")
        yield Page(page.result)
        start += size
        fetched = len(page.result.records) + len(page.result.skipped)
        if fetched == 0 or start >= page.total_results:
            return


def id_pages(fetcher: Fetcher, ids: list[str]) -> Iterator[Page]:
    """Full records for a list of ids, a page per 100."""
    for start in range(0, len(ids), ID_BATCH):
        yield Page(fetch_ids(fetcher, ids[start : start + ID_BATCH]))


def fetch_ids(fetcher: Fetcher, ids: list[str]) -> ParseResult:
    """Full metadata for up to 100 ids in one API request."""
    raw = fetcher.get(get_settings().arxiv_api_url, {"id_list": ",".join(ids), "max_results": len(ids)})
    return arxiv_api.parse_feed(raw, location=f"id_list={ids[0]}..({len(ids)} ids)").result
