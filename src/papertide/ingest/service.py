"""The write steps of every ingestion run: one page of records, or one bulk chunk, in the caller's session.

Runs are driven from the edge (papertide.worker.ingest), which opens one transaction per step,
so a killed run keeps whole pages only and resumes from the last page's checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from papertide.ingest import repository
from papertide.ingest.sources.base import ParseResult, Skipped
from papertide.models import JobStatus
from papertide.papers import repository as paper_repository
from papertide.papers.schemas import PaperIn

log = logging.getLogger(__name__)
BATCH_SIZE = 500


class IngestError(Exception):
    """The run failed; the message says which source and where. Pages already written stay."""


@dataclass
class IngestCounts:
    """What one run (or one step of it) did; every source reports the same counts."""

    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    signals: int = 0
    skipped: int = 0

    def add(self, other: IngestCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class IngestSummary:
    run_id: int
    status: JobStatus
    counts: dict[str, int]


@dataclass
class Page:
    """One step of a run: parsed records, and the checkpoint to save with them (if the source has one)."""

    result: ParseResult
    state_key: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class BulkChunk:
    """One block of a bulk file, parsed into staging rows (papers.repository.STAGING_COLUMNS)."""

    source: str
    rows: list[tuple[Any, ...]]
    skipped: list[Skipped]
    bytes_read: int


def write_page(session: Session, *, source: str, page: Page) -> IngestCounts:
    """Upsert a page's records in batches, and its checkpoint, inside the caller's transaction."""
    report_skipped(source, page.result.skipped)
    records = page.result.records
    counts = IngestCounts(fetched=len(records), skipped=len(page.result.skipped))
    for start in range(0, len(records), BATCH_SIZE):
        counts.add(_upsert(session, records[start : start + BATCH_SIZE], source=source))
    if page.state_key is not None:
        repository.save_state(session, page.state_key, page.state)
    return counts


def _upsert(session: Session, records: list[PaperIn], *, source: str) -> IngestCounts:
    result = paper_repository.upsert_papers(session, records, source=source)
    return IngestCounts(
        new=result.new, updated=result.updated, unchanged=result.unchanged, signals=result.signals
    )


def write_chunk(session: Session, *, chunk: BulkChunk) -> IngestCounts:
    """COPY and merge one bulk chunk inside the caller's transaction; the keyword index follows later
    (a trigger queues the new and changed papers for the worker, migration 0012)."""
    report_skipped(chunk.source, chunk.skipped)
    new, updated = paper_repository.copy_and_merge(session, chunk.rows, source=chunk.source)
    distinct = len({row[0] for row in chunk.rows})
    return IngestCounts(
        fetched=len(chunk.rows),
        new=new,
        updated=updated,
        unchanged=distinct - new - updated,
        skipped=len(chunk.skipped),
    )


def report_skipped(source: str, skipped: list[Skipped]) -> None:
    for item in skipped:
        log.warning("%s: skipped %s: %s", source, item.location, item.reason)
