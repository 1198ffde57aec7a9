"""Bulk loading for big files (the Kaggle arXiv snapshot): stream, COPY into a staging table, merge.

The per-record upsert costs a round trip and a statement per batch of 500; here each chunk of
records goes to Postgres as one binary COPY and one INSERT ... SELECT ... ON CONFLICT, which the
server runs in a single pass. Parsing (Python) and the merge (Postgres) are the two costs left,
one on each core of a small machine.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from itertools import islice
from pathlib import Path
from queue import Empty
from typing import Any

from sqlalchemy import column, literal, select, table, text
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session
from tqdm import tqdm

from papertide.db import unit_of_work
from papertide.ingest.service import IngestError, IngestSummary
from papertide.ingest.sources import kaggle
from papertide.ingest.sources.base import Skipped, SourceError
from papertide.models import JobStatus, Paper
from papertide.papers.repository import merge_into_paper
from papertide.papers.schemas import PaperIn
from papertide.runs import record_run

log = logging.getLogger(__name__)
CHUNK_SIZE = 20_000

_COLUMNS = (
    "id",
    "title",
    "abstract",
    "authors",
    "categories",
    "published_at",
    "updated_at",
    "version",
    "abs_url",
    "pdf_url",
    "text_hash",
)
_TYPES = (
    "text",
    "text",
    "text",
    "text[]",
    "text[]",
    "timestamptz",
    "timestamptz",
    "int4",
    "text",
    "text",
    "text",
)
_CREATE_STAGING = text(
    "CREATE TEMP TABLE IF NOT EXISTS paper_staging ("
    + ", ".join(f"{c} {t}" for c, t in zip(_COLUMNS, _TYPES, strict=True))
    + ") ON COMMIT DELETE ROWS"
)
_STAGING = table("paper_staging", *(column(name) for name in _COLUMNS))


def _merge_statement(source: str) -> Any:
    """INSERT INTO paper ... SELECT from staging, under papers.repository's merge rules."""
    staged = (
        select(*(_STAGING.c[name] for name in _COLUMNS), literal(source).label("source"))
        .ext(distinct_on(_STAGING.c.id))
        .order_by(_STAGING.c.id)
    )
    return merge_into_paper(insert(Paper).from_select([*_COLUMNS, "source"], staged))


Row = tuple[Any, ...]


def paper_row(r: PaperIn) -> Row:
    """A record as the staging table's columns, in order."""
    return (
        r.id,
        r.title,
        r.abstract,
        r.authors,
        r.categories,
        r.published_at,
        r.updated_at,
        r.version,
        r.abs_url,
        r.pdf_url,
        r.text_hash,
    )


def copy_and_merge(session: Session, rows: list[Row], *, source: str) -> tuple[int, int]:
    """COPY `rows` (binary) into the staging table and merge them into paper; returns (new, updated)."""
    session.execute(_CREATE_STAGING)
    raw: Any = session.connection().connection.driver_connection
    statement = f"COPY paper_staging ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(_TYPES)
        for row in rows:
            copy.write_row(row)
    touched = session.execute(_merge_statement(source)).all()
    new = sum(1 for row in touched if row.inserted)
    return new, len(touched) - new


@dataclass
class _Chunk:
    rows: list[Row]
    skipped: list[Skipped]
    bytes_read: int
    new: int = 0
    updated: int = 0


def parser_count() -> int:
    """Parser processes: on two cores, two parsers plus Postgres measured fastest (docs/benchmarks.md)."""
    return max(1, min(4, (os.cpu_count() or 2)))


def load_snapshot(
    path: Path,
    *,
    categories: set[str] | None = None,
    since: date | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
    parsers: int | None = None,
) -> IngestSummary:
    """Stream the snapshot and load it chunk by chunk (each chunk its own transaction).

    Parser processes read the file and take turns at its blocks of `chunk_size` lines, while this
    process COPYs and merges what they send: parsing (Python) and merging (Postgres) run side by
    side. At most two parsed chunks per parser wait in the queue, so memory stays bounded.
    """
    if not path.is_file():
        raise IngestError(f"kaggle: cannot read {path}: no such file")
    params = {
        "path": str(path),
        "categories": sorted(categories or []),
        "since": since.isoformat() if since else None,
    }
    try:
        return _load(path, params, categories, since, progress, chunk_size, parsers or parser_count())
    except SourceError as error:
        raise IngestError(str(error)) from error


def _load(
    path: Path,
    params: dict[str, Any],
    categories: set[str] | None,
    since: date | None,
    progress: bool,
    chunk_size: int,
    workers: int,
) -> IngestSummary:
    counts = {"fetched": 0, "new": 0, "updated": 0, "unchanged": 0, "signals": 0, "skipped": 0}
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue(maxsize=2 * workers)
    processes = [
        context.Process(
            target=_parse_blocks, args=(path, categories, since, chunk_size, k, workers, queue), daemon=True
        )
        for k in range(workers)
    ]
    with record_run("ingest", source=kaggle.NAME, params=params) as run, _progress(path, progress) as bar:
        run.counts = counts
        for process in processes:
            process.start()
        try:
            finished = 0
            while finished < workers:
                chunk = _next_chunk(queue, processes)
                if chunk is None:
                    finished += 1
                    continue
                _merge(chunk)
                _count(counts, chunk)
                bar.update(chunk.bytes_read)
                bar.set_postfix(new=counts["new"], skipped=counts["skipped"])
        finally:
            for process in processes:
                process.kill()
                process.join()
        run.status = JobStatus.OK if counts["fetched"] or counts["skipped"] else JobStatus.OK_EMPTY
    return IngestSummary(run_id=run.id, status=run.status, counts=counts)


def _merge(chunk: _Chunk) -> None:
    for skipped in chunk.skipped:
        log.warning("kaggle: skipped %s: %s", skipped.location, skipped.reason)
    with unit_of_work() as session:
        # The full-text vector is left to the worker (migration 0004): it would triple the cost.
        session.execute(text("SET LOCAL papertide.defer_search_vector = 'on'"))
        chunk.new, chunk.updated = copy_and_merge(session, chunk.rows, source=kaggle.NAME)


def _count(counts: dict[str, int], chunk: _Chunk) -> None:
    counts["fetched"] += len(chunk.rows)
    counts["new"] += chunk.new
    counts["updated"] += chunk.updated
    counts["unchanged"] += len({row[0] for row in chunk.rows}) - chunk.new - chunk.updated
    counts["skipped"] += len(chunk.skipped)


def _next_chunk(queue: Any, processes: list[Any]) -> _Chunk | None:
    """The next parsed chunk (None: one parser finished); a parser's failure or death fails the run."""
    while True:
        try:
            item = queue.get(timeout=1.0)
        except Empty:
            for process in processes:
                if not process.is_alive() and process.exitcode not in (0, None):
                    raise SourceError(
                        f"kaggle: a parser process died (exit code {process.exitcode})"
                    ) from None
            continue
        if isinstance(item, str):
            raise SourceError(item)
        return item  # type: ignore[no-any-return]


def _parse_blocks(
    path: Path,
    categories: set[str] | None,
    since: date | None,
    chunk_size: int,
    worker: int,
    workers: int,
    queue: Any,
) -> None:
    """Child process: parse every `workers`-th block of lines; None marks the end, a str an error.

    Each parser reads the whole file and skips the blocks of the others: reading is cheap next to
    parsing, and no process has to hand out lines.
    """
    try:
        with path.open("rb") as handle:
            for index, block in enumerate(iter(lambda: list(islice(handle, chunk_size)), [])):
                if index % workers == worker:
                    queue.put(_parse_block(block, path, index * chunk_size + 1, categories, since))
        queue.put(None)
    except Exception as error:  # the parent turns this into a failed run with the reason
        queue.put(f"kaggle: reading {path} failed: {type(error).__name__}: {error}")


def _parse_block(
    block: list[bytes], path: Path, first_line: int, categories: set[str] | None, since: date | None
) -> _Chunk:
    skipped: list[Skipped] = []
    lines = _decode(block, path, first_line, skipped)
    rows = []
    for item in kaggle.iter_records(
        lines, location=path.name, categories=categories, since=since, first_line=first_line
    ):
        if isinstance(item, PaperIn):
            rows.append(paper_row(item))
        else:
            skipped.append(item)
    return _Chunk(rows=rows, skipped=skipped, bytes_read=sum(map(len, block)))


def _progress(path: Path, enabled: bool) -> tqdm[Any]:
    """Bytes read against the file size: a rate and an ETA even for a 4.5 GB file."""
    return tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc="kaggle snapshot", disable=not enabled
    )


def _decode(block: list[bytes], path: Path, first_line: int, skipped: list[Skipped]) -> Iterator[str]:
    """Decoded lines; a line that is not UTF-8 is recorded as skipped and passed on blank."""
    for number, raw in enumerate(block, start=first_line):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            skipped.append(
                Skipped(f"{path.name}:{number}", f"not UTF-8 text ({error.reason} at byte {error.start})")
            )
            yield ""
