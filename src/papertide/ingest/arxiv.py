"""arXiv runs: OAI-PMH harvests (checkpointed per page), API queries, and the daily RSS feed.

Every request goes through one Fetcher keyed "arxiv", so all of them share the Postgres-held
schedule of one request every 3 seconds, whichever process sends them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.db import unit_of_work
from papertide.ingest import service
from papertide.ingest.http import Fetcher
from papertide.ingest.sources import arxiv_api, arxiv_oai, arxiv_rss
from papertide.ingest.sources.base import ParseResult
from papertide.models import Paper, SourceState

ARXIV_LIMIT_KEY = "arxiv"
API_PAGE_SIZE = 100
ID_BATCH = 100


def arxiv_fetcher(source: str) -> Fetcher:
    return Fetcher(source=source, limit_key=ARXIV_LIMIT_KEY)


# --- OAI-PMH -------------------------------------------------------------------------------------


def oai_state_key(set_spec: str) -> str:
    return f"arxiv-oai:{set_spec}"


def load_state(key: str) -> dict[str, Any]:
    with unit_of_work() as session:
        row = session.get(SourceState, key)
        return dict(row.state) if row else {}


def save_state(session: Session, key: str, state: dict[str, Any]) -> None:
    row = session.get(SourceState, key)
    if row is None:
        session.add(SourceState(source=key, state=state))
    else:
        row.state = state


def harvest_oai(
    *, set_spec: str, from_date: date | None = None, fetcher: Fetcher | None = None, progress: bool = False
) -> service.IngestSummary:
    """ListRecords for a set; resumes from a saved resumptionToken if the last run stopped midway."""
    fetcher = fetcher or arxiv_fetcher(arxiv_oai.NAME)
    key = oai_state_key(set_spec)
    state = load_state(key)
    start_from = from_date.isoformat() if from_date else state.get("from") or state.get("next_from")
    params = {"set": set_spec, "from": start_from, "resumed": bool(state.get("token"))}
    pages = _oai_pages(fetcher, key=key, set_spec=set_spec, start_from=start_from, state=state)
    return service.run_pages(arxiv_oai.NAME, pages, params=params, progress=progress)


def _oai_pages(
    fetcher: Fetcher, *, key: str, set_spec: str, start_from: str | None, state: dict[str, Any]
) -> Iterator[service.Page]:
    url = get_settings().arxiv_oai_url
    token = state.get("token")
    harvest_started = state.get("started") or date.today().isoformat()
    number = state.get("page", 0)
    while True:
        if token:
            query: dict[str, str | int] = {"verb": "ListRecords", "resumptionToken": token}
        else:
            query = {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": set_spec}
            if start_from:
                query["from"] = start_from
        number += 1
        page = arxiv_oai.parse_list_records(fetcher.get(url, query), location=f"{set_spec} page {number}")
        token = page.resumption_token or None
        if token:
            checkpoint = {
                "token": token,
                "from": start_from,
                "started": harvest_started,
                "page": number,
                "cursor": page.cursor,
                "complete_list_size": page.complete_list_size,
            }
        else:
            # Done: the next run asks only for what changed since this harvest began.
            checkpoint = {"next_from": harvest_started}
        yield page.result, partial(save_state, key=key, state=checkpoint)
        if not token:
            return


# --- API -----------------------------------------------------------------------------------------


def query_api(
    *,
    query: str | None = None,
    ids: Sequence[str] | None = None,
    max_results: int | None = None,
    fetcher: Fetcher | None = None,
    progress: bool = False,
) -> service.IngestSummary:
    """A search_query, paged 100 at a time, or an id_list in batches of 100."""
    fetcher = fetcher or arxiv_fetcher(arxiv_api.NAME)
    if ids:
        pages = _id_pages(fetcher, list(ids))
        params: dict[str, Any] = {"ids": list(ids)}
    elif query:
        pages = _query_pages(fetcher, query, max_results)
        params = {"query": query, "max_results": max_results}
    else:
        raise ValueError("give a query or ids")
    return service.run_pages(arxiv_api.NAME, pages, params=params, progress=progress)


def _query_pages(fetcher: Fetcher, query: str, max_results: int | None) -> Iterator[service.Page]:
    url = get_settings().arxiv_api_url
    start = 0
    while max_results is None or start < max_results:
        size = API_PAGE_SIZE if max_results is None else min(API_PAGE_SIZE, max_results - start)
        raw = fetcher.get(url, {"search_query": query, "start": start, "max_results": size})
        page = arxiv_api.parse_feed(raw, location=f"search_query={query} start={start}")
        yield page.result, None
        start += size
        fetched = len(page.result.records) + len(page.result.skipped)
        if fetched == 0 or start >= page.total_results:
            return


def _id_pages(fetcher: Fetcher, ids: list[str]) -> Iterator[service.Page]:
    for start in range(0, len(ids), ID_BATCH):
        yield fetch_ids(fetcher, ids[start : start + ID_BATCH]), None


def fetch_ids(fetcher: Fetcher, ids: list[str]) -> ParseResult:
    """Full metadata for up to 100 ids in one API request."""
    raw = fetcher.get(get_settings().arxiv_api_url, {"id_list": ",".join(ids), "max_results": len(ids)})
    return arxiv_api.parse_feed(raw, location=f"id_list={ids[0]}..({len(ids)} ids)").result


# --- RSS -----------------------------------------------------------------------------------------


def fetch_rss(
    *, categories: Sequence[str], fetcher: Fetcher | None = None, progress: bool = False
) -> service.IngestSummary:
    """Today's announcements; ids never seen before get their full record from the API."""
    fetcher = fetcher or arxiv_fetcher(arxiv_rss.NAME)
    joined = "+".join(categories)

    def parse() -> ParseResult:
        raw = fetcher.get(f"{get_settings().arxiv_rss_url}/{joined}")
        feed = arxiv_rss.parse_feed(raw, location=f"rss {joined}")
        announced = [
            item.paper.model_copy(update={"announce_type": item.announce_type}) for item in feed.items
        ]
        return ParseResult(records=_with_details(fetcher, announced), skipped=feed.skipped)

    return service.run_source(
        arxiv_rss.NAME, parse, params={"categories": list(categories)}, progress=progress
    )


def _with_details(fetcher: Fetcher, announced: list[Any]) -> list[Any]:
    """Swap each unseen paper's feed record for the API's fuller one, keeping the announcement fields."""
    with unit_of_work() as session:
        seen = set(session.scalars(select(Paper.id).where(Paper.id.in_([p.id for p in announced]))))
    unseen = [p.id for p in announced if p.id not in seen]
    details = {}
    for start in range(0, len(unseen), ID_BATCH):
        details.update({r.id: r for r in fetch_ids(fetcher, unseen[start : start + ID_BATCH]).records})
    merged = []
    for paper in announced:
        full = details.get(paper.id)
        if full is not None:
            paper = full.model_copy(
                update={"announced_at": paper.announced_at, "announce_type": paper.announce_type}
            )
        merged.append(paper)
    return merged
