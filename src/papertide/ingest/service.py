"""Run one ingestion: parse a source, upsert in batches with a progress bar, record the run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from tqdm import tqdm

from papertide.config import get_settings
from papertide.db import unit_of_work
from papertide.ingest.http import Fetcher
from papertide.ingest.sources import hf_daily, jsonl, sample
from papertide.ingest.sources.base import ParseResult, SourceError
from papertide.models import JobStatus
from papertide.papers import repository as paper_repository
from papertide.papers.schemas import PaperIn
from papertide.runs import record_run

log = logging.getLogger(__name__)
BATCH_SIZE = 500


class IngestError(Exception):
    """The run failed and wrote nothing; the message says which source and where."""


@dataclass
class IngestSummary:
    run_id: int
    status: JobStatus
    counts: dict[str, int]


Page = tuple[ParseResult, Callable[[Session], None] | None]


def run_source(
    source: str,
    parse: Callable[[], ParseResult],
    *,
    params: dict[str, Any] | None = None,
    progress: bool = False,
) -> IngestSummary:
    """Parse, then write every record in one transaction: a failure leaves the database as it was."""

    def one_page() -> Iterator[Page]:
        yield parse(), None

    return run_pages(source, one_page(), params=params, progress=progress)


def run_pages(
    source: str, pages: Iterable[Page], *, params: dict[str, Any] | None = None, progress: bool = False
) -> IngestSummary:
    """Write each page in its own transaction, with its checkpoint: a killed run keeps whole pages only."""
    counts = {"fetched": 0, "new": 0, "updated": 0, "unchanged": 0, "signals": 0, "skipped": 0}
    try:
        with (
            record_run("ingest", source=source, params=params) as run,
            tqdm(desc=f"ingest {source}", unit="paper", disable=not progress) as bar,
        ):
            run.counts = counts
            for result, checkpoint in pages:
                for skipped in result.skipped:
                    log.warning("%s: skipped %s: %s", source, skipped.location, skipped.reason)
                with unit_of_work() as session:
                    page_counts = write_records(session, source, result.records)
                    if checkpoint is not None:
                        checkpoint(session)
                for key, value in page_counts.items():
                    counts[key] += value
                counts["skipped"] += len(result.skipped)
                bar.update(len(result.records))
            run.status = JobStatus.OK if counts["fetched"] or counts["skipped"] else JobStatus.OK_EMPTY
    except SourceError as error:
        raise IngestError(str(error)) from error
    return IngestSummary(run_id=run.id, status=run.status, counts=counts)


def write_records(session: Session, source: str, records: list[PaperIn]) -> dict[str, int]:
    """Upsert records in batches inside the caller's transaction; returns the counts."""
    counts = {"fetched": len(records), "new": 0, "updated": 0, "unchanged": 0, "signals": 0}
    for start in range(0, len(records), BATCH_SIZE):
        result = paper_repository.upsert_papers(session, records[start : start + BATCH_SIZE], source=source)
        counts["new"] += result.new
        counts["updated"] += result.updated
        counts["unchanged"] += result.unchanged
        counts["signals"] += result.signals
    return counts


def ingest_sample(*, path: Path | None = None, progress: bool = False) -> IngestSummary:
    """Load the bundled Hugging Face Daily Papers sample (or another file in its format)."""
    params = {"path": str(path)} if path else {}
    return run_source(sample.NAME, lambda: sample.parse_sample(path), params=params, progress=progress)


def ingest_jsonl(path: Path, *, progress: bool = False) -> IngestSummary:
    """Load papertide's own JSONL format; bad lines are skipped and reported with file:line."""

    def parse() -> ParseResult:
        try:
            with path.open(encoding="utf-8") as lines:
                return jsonl.parse_lines(lines, location=path.name)
        except OSError as error:
            raise SourceError(f"jsonl: cannot read {path}: {error.strerror or error}") from None
        except UnicodeDecodeError as error:
            raise SourceError(
                f"jsonl: {path} is not UTF-8 text ({error.reason} at byte {error.start})"
            ) from None

    return run_source(jsonl.NAME, parse, params={"path": str(path)}, progress=progress)


def ingest_hf_files(paths: Iterable[Path], *, progress: bool = False) -> IngestSummary:
    """Load saved Daily Papers responses; each file's day comes from its name (YYYY-MM-DD.json)."""
    files = sorted(paths)

    def parse() -> ParseResult:
        result = ParseResult()
        for path in files:
            day = _day_from_name(path)
            try:
                items = hf_daily.load_day(path.read_bytes(), location=path.name)
            except OSError as error:
                raise SourceError(f"hf-daily: cannot read {path}: {error.strerror or error}") from None
            observed = hf_daily.recorded_observation_time(day)
            result.extend(hf_daily.parse_day(items, day=day, observed_at=observed, location=path.name))
        return result

    return run_source(hf_daily.NAME, parse, params={"files": [str(p) for p in files]}, progress=progress)


def ingest_hf_days(
    days: Iterable[date], *, fetcher: Fetcher | None = None, progress: bool = False
) -> IngestSummary:
    """Fetch days from the live Daily Papers API, one request and one transaction per day.

    Counts are observed at fetch time, so a re-fetch adds observations and never overwrites history.
    """
    wanted = list(days)
    fetcher = fetcher or Fetcher(source=hf_daily.NAME)
    url = get_settings().hf_daily_url

    def pages() -> Iterator[Page]:
        for day in wanted:
            location = f"daily_papers?date={day.isoformat()}"
            items = hf_daily.load_day(fetcher.get(url, {"date": day.isoformat()}), location=location)
            yield hf_daily.parse_day(items, day=day, observed_at=fetcher.clock.now(), location=location), None

    params = {"days": [d.isoformat() for d in wanted]}
    return run_pages(hf_daily.NAME, pages(), params=params, progress=progress)


def _day_from_name(path: Path) -> date:
    try:
        return date.fromisoformat(path.stem)
    except ValueError:
        raise SourceError(f"hf-daily: cannot tell the day of {path.name}: name it YYYY-MM-DD.json") from None
