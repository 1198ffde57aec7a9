"""Ingestion runs at the edge: each step (a page, a bulk chunk) in its own transaction, with a run record.

A killed run keeps the pages it committed, and their checkpoints: the next run resumes after them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from tqdm import tqdm

from papertide.config import get_settings
from papertide.db import unit_of_work
from papertide.ingest import arxiv_api, arxiv_oai, arxiv_rss, hf_daily, jsonl, kaggle
from papertide.ingest import repository as ingest_repository
from papertide.ingest import sample as sample_run
from papertide.ingest import service as ingest_service
from papertide.ingest.http import Fetcher, arxiv_fetcher
from papertide.ingest.service import BulkChunk, IngestCounts, IngestError, IngestSummary, Page
from papertide.ingest.sources.base import SourceError
from papertide.papers import repository as paper_repository
from papertide.runs.service import record_run, status_of

Step = TypeVar("Step")
# A run "did something" when it fetched or skipped records; a weekend's empty feed is ok_empty.
INGEST_WORK = ("fetched", "skipped")


def run_steps(
    source: str,
    steps: Iterable[Step],
    write: Callable[[Session, Step], IngestCounts],
    *,
    params: dict[str, Any] | None = None,
    bar: tqdm[Any] | None = None,
    advance: Callable[[Step], int] = lambda _step: 1,
) -> IngestSummary:
    """Write each step in its own transaction and record the run; a source error fails it with the reason."""
    counts = IngestCounts()
    iterator = iter(steps)
    progress = bar if bar is not None else tqdm(disable=True)
    try:
        with record_run("ingest", source=source, params=params, work=INGEST_WORK) as run, progress:
            run.counts = counts.as_dict()
            for step in iterator:
                with unit_of_work() as session:
                    counts.add(write(session, step))
                run.counts = counts.as_dict()
                progress.update(advance(step))
                progress.set_postfix(new=counts.new, skipped=counts.skipped)
    except SourceError as error:
        raise IngestError(str(error)) from error
    finally:
        # A generator of steps may hold processes or connections (the Kaggle parsers): stop it now.
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    return IngestSummary(run_id=run.id, status=status_of(run), counts=counts.as_dict())


def run_pages(
    source: str, pages: Iterable[Page], *, params: dict[str, Any] | None = None, progress: bool = False
) -> IngestSummary:
    """A paged run: records upserted through the one merge path, checkpoints saved with their page."""

    def write(session: Session, page: Page) -> IngestCounts:
        return ingest_service.write_page(session, source=source, page=page)

    bar = tqdm(desc=f"ingest {source}", unit="paper", disable=not progress)
    return run_steps(source, pages, write, params=params, bar=bar, advance=lambda p: len(p.result.records))


def ingest_sample(*, path: Path | None = None, progress: bool = False) -> IngestSummary:
    """Load the bundled Hugging Face Daily Papers sample (or another file in its format)."""
    params = {"path": str(path)} if path else {}
    return run_pages(sample_run.NAME, sample_run.pages(path), params=params, progress=progress)


def ingest_jsonl(path: Path, *, progress: bool = False) -> IngestSummary:
    """Load papertide's own JSONL format; bad lines are skipped and reported with file:line."""
    return run_pages(jsonl.NAME, jsonl.pages(path), params={"path": str(path)}, progress=progress)


def ingest_hf_files(paths: Iterable[Path], *, progress: bool = False) -> IngestSummary:
    """Load saved Daily Papers responses; each file's day comes from its name (YYYY-MM-DD.json)."""
    files = sorted(paths)
    params = {"files": [str(p) for p in files]}
    return run_pages(hf_daily.NAME, hf_daily.file_pages(files), params=params, progress=progress)


def ingest_hf_days(
    days: Iterable[date], *, fetcher: Fetcher | None = None, progress: bool = False
) -> IngestSummary:
    """Fetch days from the live Daily Papers API, one request and one transaction per day."""
    wanted = list(days)
    pages = hf_daily.day_pages(wanted, fetcher=fetcher or Fetcher(source=hf_daily.NAME))
    params = {"days": [d.isoformat() for d in wanted]}
    return run_pages(hf_daily.NAME, pages, params=params, progress=progress)


def harvest_oai(
    *, set_spec: str, from_date: date | None = None, fetcher: Fetcher | None = None, progress: bool = False
) -> IngestSummary:
    """ListRecords for a set; resumes from a saved resumptionToken if the last run stopped midway."""
    with unit_of_work() as session:
        state = ingest_repository.get_state(session, arxiv_oai.state_key(set_spec))
    params = {
        "set": set_spec,
        "from": arxiv_oai.start_from(state, from_date),
        "resumed": bool(state.get("token")),
    }
    pages = arxiv_oai.pages(
        fetcher or arxiv_fetcher(arxiv_oai.NAME), set_spec=set_spec, state=state, from_date=from_date
    )
    return run_pages(arxiv_oai.NAME, pages, params=params, progress=progress)


def query_api(
    *,
    query: str | None = None,
    ids: Sequence[str] | None = None,
    max_results: int | None = None,
    fetcher: Fetcher | None = None,
    progress: bool = False,
) -> IngestSummary:
    """A search_query, paged 100 at a time, or an id_list in batches of 100."""
    fetcher = fetcher or arxiv_fetcher(arxiv_api.NAME)
    if ids:
        pages = arxiv_api.id_pages(fetcher, list(ids))
        params: dict[str, Any] = {"ids": list(ids)}
    elif query:
        pages = arxiv_api.query_pages(fetcher, query, max_results)
        params = {"query": query, "max_results": max_results}
    else:
        raise ValueError("give a query or ids")
    return run_pages(arxiv_api.NAME, pages, params=params, progress=progress)


def fetch_rss(
    *, categories: Sequence[str], fetcher: Fetcher | None = None, progress: bool = False
) -> IngestSummary:
    """Today's announcements; ids never seen before get their full record from the API."""
    pages = arxiv_rss.pages(
        fetcher or arxiv_fetcher(arxiv_rss.NAME), categories=categories, known_ids=_known_ids
    )
    return run_pages(arxiv_rss.NAME, pages, params={"categories": list(categories)}, progress=progress)


def _known_ids(ids: list[str]) -> set[str]:
    with unit_of_work() as session:
        return paper_repository.existing_ids(session, ids)


def load_snapshot(
    path: Path,
    *,
    categories: set[str] | None = None,
    since: date | None = None,
    progress: bool = False,
    chunk_size: int = kaggle.CHUNK_SIZE,
    parsers: int | None = None,
) -> IngestSummary:
    """Stream the Kaggle snapshot and load it chunk by chunk (each chunk its own transaction)."""
    if not path.is_file():
        raise IngestError(f"kaggle: cannot read {path}: no such file")
    params = {
        "path": str(path),
        "categories": sorted(categories or []),
        "since": since.isoformat() if since else None,
    }
    chunks = kaggle.chunks(path, categories=categories, since=since, chunk_size=chunk_size, parsers=parsers)
    # Bytes read against the file size: a rate and an ETA even for a 4.5 GB file.
    bar = tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc="kaggle snapshot", disable=not progress
    )

    def write(session: Session, chunk: BulkChunk) -> IngestCounts:
        return ingest_service.write_chunk(session, chunk=chunk)

    return run_steps(kaggle.NAME, chunks, write, params=params, bar=bar, advance=lambda c: c.bytes_read)


def ingest_hf_daily_today() -> IngestSummary:
    """Today's and yesterday's Daily Papers: yesterday's page keeps collecting upvotes for a while."""
    today = datetime.now(UTC).date()
    return ingest_hf_days([today - timedelta(days=1), today])


def ingest_arxiv_oai() -> IngestSummary:
    """An incremental OAI-PMH harvest of the configured set (from where the last one ended)."""
    return harvest_oai(set_spec=get_settings().arxiv_oai_set)


def ingest_arxiv_rss() -> IngestSummary:
    """Today's announcements in the configured categories."""
    categories = [c.strip() for c in get_settings().arxiv_rss_categories.split(",") if c.strip()]
    return fetch_rss(categories=categories)
