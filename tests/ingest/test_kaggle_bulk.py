"""The Kaggle snapshot bulk path: COPY + merge gives exactly the rows the per-record upsert gives."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.ingest.service import IngestError, Page, write_page
from papertide.ingest.sources import kaggle
from papertide.ingest.sources.base import ParseResult
from papertide.models import Paper
from papertide.papers.repository import STAGING_COLUMNS
from papertide.papers.schemas import PaperIn
from papertide.search import keyword_index
from papertide.search import service as search_service
from papertide.search.schemas import SearchMode, SearchQuery
from papertide.worker import ingest as ingest_jobs
from papertide.worker import jobs
from tests.factories import paper_rows
from tests.helpers import FIXTURES

SNAPSHOT = FIXTURES / "kaggle_arxiv_snapshot" / "arxiv-metadata-oai-snapshot.first200.jsonl"
# The columns the bulk path writes: they must come out as the per-record path writes them.
COLUMNS = STAGING_COLUMNS


def test_bulk_rows_equal_the_per_record_upsert_rows(session: Session) -> None:
    summary = ingest_jobs.load_snapshot(SNAPSHOT, chunk_size=64)
    by_bulk = paper_rows(session, COLUMNS)
    session.execute(delete(Paper))
    records = [
        r
        for r in kaggle.iter_records(SNAPSHOT.read_text().splitlines(), location="x")
        if isinstance(r, PaperIn)
    ]
    write_page(session, source="kaggle", page=Page(ParseResult(records=records)))
    session.commit()

    assert summary.counts["new"] == 200
    assert len(by_bulk) == 200
    assert paper_rows(session, COLUMNS) == by_bulk


def test_loading_twice_changes_nothing(session: Session) -> None:
    ingest_jobs.load_snapshot(SNAPSHOT)
    first = paper_rows(session, COLUMNS)
    again = ingest_jobs.load_snapshot(SNAPSHOT)

    assert paper_rows(session, COLUMNS) == first
    assert (again.counts["new"], again.counts["updated"], again.counts["unchanged"]) == (0, 0, 200)


def test_awkward_text_round_trips_exactly(session: Session, tmp_path: Path) -> None:
    record = json.loads(SNAPSHOT.read_text().splitlines()[0])
    record |= {
        "id": "2401.00001",
        "title": 'Tabs\there, a back\\slash and "quotes"',
        "authors_parsed": [["O'Brien", 'J. "Jack"', ""], ["Back\\slash", "A.", ""], ["Comma, Jr", "B.", ""]],
    }
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps(record) + "\n")

    ingest_jobs.load_snapshot(path)

    paper = session.get(Paper, "2401.00001")
    assert paper is not None
    assert paper.title == 'Tabs here, a back\\slash and "quotes"'
    assert paper.authors == ['J. "Jack" O\'Brien', "A. Back\\slash", "B. Comma, Jr"]


def test_bad_lines_are_skipped_and_counted_the_rest_loads(
    session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = SNAPSHOT.read_bytes().splitlines()[:3]
    untitled = json.loads(good[2])
    untitled["title"] = ""
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b"\n".join([good[0], b"{not json", b"\xff\xfe broken bytes", good[1], json.dumps(untitled).encode()])
    )

    summary = ingest_jobs.load_snapshot(path)

    assert (summary.counts["new"], summary.counts["skipped"]) == (2, 3)
    assert "skipped mixed.jsonl:2: not JSON" in caplog.text
    assert "skipped mixed.jsonl:3: not UTF-8 text" in caplog.text
    assert "skipped mixed.jsonl:5: title is missing" in caplog.text


def test_filters_by_category_and_date(session: Session) -> None:
    summary = ingest_jobs.load_snapshot(SNAPSHOT, categories={"math"}, since=date(2010, 1, 1))

    categories = session.scalars(select(Paper.categories)).all()
    assert summary.counts["new"] == len(categories) > 0
    assert all(any(c == "math" or c.startswith("math.") for c in cats) for cats in categories)
    assert session.scalar(select(func.min(Paper.updated_at))).date() >= date(2010, 1, 1)  # type: ignore[union-attr]


def test_keyword_index_is_filled_in_after_the_load(session: Session) -> None:
    ingest_jobs.load_snapshot(SNAPSHOT)
    query = SearchQuery(q="diphoton production", mode=SearchMode.KEYWORD)
    index = keyword_index.shared(get_settings())
    page = search_service.search(session, query, encoder=None, keywords=index)
    assert page.hits == [], "the load leaves the keyword index to the worker"

    assert jobs.index_keywords(batch_size=50) == 200

    page = search_service.search(session, query, encoder=None, keywords=index)
    assert page.hits[0].paper.id == "0704.0001"


def test_a_missing_file_fails_clearly(session: Session, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"kaggle: cannot read .*nope\.jsonl"):
        ingest_jobs.load_snapshot(tmp_path / "nope.jsonl")
