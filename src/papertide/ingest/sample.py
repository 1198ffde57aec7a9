"""The bundled sample run: one page, so a failure anywhere writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from papertide.ingest.service import Page
from papertide.ingest.sources import sample

NAME = sample.NAME


def pages(path: Path | None = None) -> Iterator[Page]:
    """The whole sample file (or another file in its format) as one page."""
    yield Page(sample.parse_sample(path))
