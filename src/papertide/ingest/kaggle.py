"""The Kaggle arXiv snapshot (JSON lines, 2.8M records): parsed in parallel, loaded chunk by chunk.

The per-record upsert costs a round trip and a statement per batch of 500; here each chunk of
records goes to Postgres as one binary COPY and one INSERT ... SELECT ... ON CONFLICT
(ingest.service.write_chunk). Parsing (Python) and the merge (Postgres) are the two costs left:
parser processes read the file while the caller's process merges, one on each core of a small machine.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from datetime import date
from itertools import islice
from pathlib import Path
from queue import Empty
from typing import Any

from papertide.ingest.service import BulkChunk
from papertide.ingest.sources import kaggle
from papertide.ingest.sources.base import Skipped, SourceError
from papertide.papers.repository import staging_row
from papertide.papers.schemas import PaperIn

NAME = kaggle.NAME
CHUNK_SIZE = 20_000


def parser_count() -> int:
    """Parser processes: on two cores, two parsers plus Postgres measured fastest (docs/benchmarks.md)."""
    return max(1, min(4, (os.cpu_count() or 2)))


def chunks(
    path: Path,
    *,
    categories: set[str] | None = None,
    since: date | None = None,
    chunk_size: int = CHUNK_SIZE,
    parsers: int | None = None,
) -> Iterator[BulkChunk]:
    """Parsed chunks of the file, as parser processes finish them (not in file order).

    Parsers take turns at the file's blocks of `chunk_size` lines. At most two parsed chunks per
    parser wait in the queue, so memory stays bounded however fast the parsers are.
    """
    workers = parsers or parser_count()
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue(maxsize=2 * workers)
    processes = [
        context.Process(
            target=_parse_blocks, args=(path, categories, since, chunk_size, k, workers, queue), daemon=True
        )
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        finished = 0
        while finished < workers:
            chunk = _next_chunk(queue, processes)
            if chunk is None:
                finished += 1
            else:
                yield chunk
    finally:
        for process in processes:
            process.kill()
            process.join()


def _next_chunk(queue: Any, processes: list[Any]) -> BulkChunk | None:
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
) -> BulkChunk:
    skipped: list[Skipped] = []
    lines = _decode(block, path, first_line, skipped)
    rows = []
    for item in kaggle.iter_records(
        lines, location=path.name, categories=categories, since=since, first_line=first_line
    ):
        if isinstance(item, PaperIn):
            rows.append(staging_row(item))
        else:
            skipped.append(item)
    return BulkChunk(source=NAME, rows=rows, skipped=skipped, bytes_read=sum(map(len, block)))


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
