"""The ingest write steps, each inside the caller's transaction (rolled back after each test)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from papertide.ingest import repository
from papertide.ingest.service import IngestCounts, Page, write_page
from papertide.ingest.sources.base import ParseResult, Skipped
from papertide.papers import repository as paper_repository
from papertide.papers.schemas import PaperIn, SignalIn

SEEN = datetime(2026, 11, 1, tzinfo=UTC)


def record(pid: str, abstract: str = "An abstract.", upvotes: float = 0) -> PaperIn:
    signals = [SignalIn(kind="upvotes", value=upvotes, observed_at=SEEN)] if upvotes else []
    return PaperIn(id=pid, title=f"Paper {pid}", abstract=abstract, signals=signals)


def test_a_page_is_written_with_its_counts_and_its_checkpoint(tx_session: Session) -> None:
    page = Page(
        ParseResult(
            records=[record("2611.00001", upvotes=3), record("2611.00002")],
            skipped=[Skipped("p1:3", "no title")],
        ),
        state_key="arxiv-oai:cs",
        state={"token": "abc", "page": 1},
    )

    counts = write_page(tx_session, source="test", page=page)

    assert counts == IngestCounts(fetched=2, new=2, signals=1, skipped=1)
    assert paper_repository.existing_ids(tx_session, ["2611.00001", "2611.00002", "2611.00003"]) == {
        "2611.00001",
        "2611.00002",
    }
    assert repository.get_state(tx_session, "arxiv-oai:cs") == {"token": "abc", "page": 1}


def test_writing_the_same_page_again_changes_nothing_and_a_new_checkpoint_replaces_the_old(
    tx_session: Session,
) -> None:
    first = Page(ParseResult(records=[record("2611.00001")]), state_key="k", state={"page": 1})
    write_page(tx_session, source="test", page=first)

    again = write_page(tx_session, source="test", page=Page(first.result, state_key="k", state={"page": 2}))
    changed = write_page(
        tx_session, source="test", page=Page(ParseResult(records=[record("2611.00001", "New.")]))
    )

    assert again == IngestCounts(fetched=1, unchanged=1)
    assert changed == IngestCounts(fetched=1, updated=1)
    assert repository.get_state(tx_session, "k") == {"page": 2}


def test_counts_add_up_field_by_field() -> None:
    total = IngestCounts(fetched=1, new=1)
    total.add(IngestCounts(fetched=2, unchanged=1, skipped=4))

    assert total.as_dict() == {
        "fetched": 3,
        "new": 1,
        "updated": 0,
        "unchanged": 1,
        "signals": 0,
        "skipped": 4,
    }
