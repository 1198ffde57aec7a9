"""arXiv OAI-PMH harvests: ListRecords page by page, each page saved with its resumptionToken."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from papertide.config import get_settings
from papertide.ingest.http import Fetcher
from papertide.ingest.service import Page
from papertide.ingest.sources import arxiv_oai

NAME = arxiv_oai.NAME


def state_key(set_spec: str) -> str:
    return f"arxiv-oai:{set_spec}"


def start_from(state: dict[str, Any], from_date: date | None) -> str | None:
    """The `from` date to ask for: the caller's, the interrupted harvest's, or where the last one began."""
    return from_date.isoformat() if from_date else state.get("from") or state.get("next_from")


def pages(
    fetcher: Fetcher, *, set_spec: str, state: dict[str, Any], from_date: date | None
) -> Iterator[Page]:
    """Each page with the checkpoint that resumes after it; a saved token resumes a stopped harvest."""
    url = get_settings().arxiv_oai_url
    first_from = start_from(state, from_date)
    token = state.get("token")
    harvest_started = state.get("started") or date.today().isoformat()
    number = state.get("page", 0)
    while True:
        if token:
            query: dict[str, str | int] = {"verb": "ListRecords", "resumptionToken": token}
        else:
            query = {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": set_spec}
            if first_from:
                query["from"] = first_from
        number += 1
        page = arxiv_oai.parse_list_records(fetcher.get(url, query), location=f"{set_spec} page {number}")
        token = page.resumption_token or None
        if token:
            checkpoint = {
                "token": token,
                "from": first_from,
                "started": harvest_started,
                "page": number,
                "cursor": page.cursor,
                "complete_list_size": page.complete_list_size,
            }
        else:
            # Done: the next run asks only for what changed since this harvest began.
            checkpoint = {"next_from": harvest_started}
        yield Page(page.result, state_key=state_key(set_spec), state=checkpoint)
        if not token:
            return
