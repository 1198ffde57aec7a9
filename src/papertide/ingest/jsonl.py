"""papertide's own JSONL format: one page, bad lines skipped and reported with file:line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from papertide.ingest.service import Page
from papertide.ingest.sources import jsonl
from papertide.ingest.sources.base import SourceError

NAME = jsonl.NAME


def pages(path: Path) -> Iterator[Page]:
    """The whole file as one page: an unreadable file fails the run before anything is written."""
    try:
        with path.open(encoding="utf-8") as lines:
            result = jsonl.parse_lines(lines, location=path.name)
    except OSError as error:
        raise SourceError(f"jsonl: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise SourceError(f"jsonl: {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    yield Page(result)
