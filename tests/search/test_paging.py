"""Paging a search as a reader clicks Next: every page slices one ordering, in every mode and sort,
so no paper shows twice, none is skipped, and the count stays the same from page to page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from papertide.models import PaperScore
from papertide.search import service as search_service
from papertide.search.schemas import MatchSource, SearchMode, SearchPage, SearchQuery, SearchSort
from papertide.worker import jobs
from tests.factories import FakeEncoder, make_paper
from tests.helpers import keyword_index_now

PAPERS = 260  # more than the fused lists hold (search_service.CANDIDATES per list)


def run(session: Session, q: str, encoder: Any, **fields: Any) -> SearchPage:
    query = SearchQuery.model_validate({"q": q, **fields})
    return search_service.search(session, query, encoder=encoder, keywords=keyword_index_now())


@pytest.fixture
def many(database: str, session: Session, fake_encoder: FakeEncoder) -> FakeEncoder:
    """260 papers that all hold "alpha", with BM25 and the (fake) embedding ordering them
    differently, published at scattered times; every fifth one trending this week."""
    for n in range(PAPERS):
        words = ["alpha"] * (n % 7 + 1) + ["beta"] * (n % 5) + [f"filler{n % 13}"] * (n % 11)
        make_paper(
            session,
            id=f"2602.{n:05d}",
            title=f"Study {n % 17} of gamma" if n % 3 else f"Alpha study {n}",
            abstract=" ".join(words) + ".",
            published_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=7 * ((n * 37) % PAPERS)),
        )
    session.flush()
    for n in range(0, PAPERS, 5):
        session.add(
            PaperScore(
                paper_id=f"2602.{n:05d}",
                period="week",
                score=float((n * 13) % 97),
                components={},
                as_of=datetime(2025, 3, 1, tzinfo=UTC),
            )
        )
    session.commit()
    jobs.embed(encoder=fake_encoder)
    return fake_encoder


def walk(session: Session, encoder: Any, q: str = "alpha beta", **fields: Any) -> list[SearchPage]:
    """Every page from the first, following has_next as the Next link does."""
    pages = [run(session, q, encoder, page=1, limit=20, **fields)]
    while pages[-1].has_next and len(pages) < 60:
        pages.append(run(session, q, encoder, page=len(pages) + 1, limit=20, **fields))
    return pages


def ids_of(pages: list[SearchPage]) -> list[str]:
    return [hit.paper.id for page in pages for hit in page.hits]


@pytest.mark.parametrize("sort", list(SearchSort))
def test_hybrid_pages_show_every_match_once_under_one_count(
    session: Session, many: FakeEncoder, sort: SearchSort
) -> None:
    pages = walk(session, many, mode=SearchMode.HYBRID, sort=sort)
    seen = ids_of(pages)

    assert len(seen) == len(set(seen)), "a paper showed on two pages"
    assert len(set(seen)) == PAPERS, "every paper holds 'alpha': each is a match and must show"
    assert {page.total for page in pages} == {PAPERS}
    if sort == SearchSort.NEWEST:
        dates = [hit.paper.published_at for page in pages for hit in page.hits if hit.paper.published_at]
        assert len(dates) == PAPERS
        assert dates == sorted(dates, reverse=True)
    if sort == SearchSort.TRENDING:
        trending = [pid for pid in seen if int(pid.split(".")[1]) % 5 == 0]
        assert seen[: len(trending)] == trending, "this week's trending matches come first, on every page"


def test_hybrid_labels_matches_beyond_the_fused_lists_as_word_matches(
    session: Session, many: FakeEncoder
) -> None:
    last = walk(session, many, mode=SearchMode.HYBRID)[-1]

    assert last.hits
    assert all(hit.source in (MatchSource.WORDS, MatchSource.BOTH) for hit in last.hits)


def test_semantic_count_does_not_change_with_the_page(session: Session, many: FakeEncoder) -> None:
    first = run(session, "alpha beta", many, mode=SearchMode.SEMANTIC, page=1)
    sixth = run(session, "alpha beta", many, mode=SearchMode.SEMANTIC, page=6)

    assert first.total_is_estimate
    assert first.total == sixth.total == search_service.MEANING_DEPTH
    assert sixth.hits, "260 papers are embedded: page 6 has some"
    pages = walk(session, many, mode=SearchMode.SEMANTIC)
    assert len(ids_of(pages)) == len(set(ids_of(pages))) == PAPERS
    assert pages[-1].total == PAPERS
    assert not pages[-1].total_is_estimate


def test_a_minus_word_keeps_the_semantic_count_an_estimate(session: Session, many: FakeEncoder) -> None:
    page = run(session, "alpha beta -gamma", many, mode=SearchMode.SEMANTIC)

    assert page.total_is_estimate, "the nearest were thinned by -gamma, not exhausted"
    assert all("gamma" not in hit.paper.title.lower() for hit in page.hits)


@pytest.fixture
def named(database: str, session: Session, fake_encoder: FakeEncoder) -> FakeEncoder:
    for n, author in enumerate(("Jürgen Müller", "Seán O'Brien", "Jean-Pierre Serre"), start=1):
        make_paper(
            session,
            id=f"2603.{n:05d}",
            title="Speech synthesis",
            abstract="Speech synthesis.",
            authors=[author],
        )
    session.commit()
    jobs.embed(encoder=fake_encoder)
    return fake_encoder


@pytest.mark.parametrize(
    ("author", "paper"),
    [
        ("Muller", "2603.00001"),
        ("O'Brien", "2603.00002"),
        ("Sean O'Brien", "2603.00002"),
        ("Jean-Pierre Serre", "2603.00003"),
    ],
)
def test_an_author_filter_finds_the_same_papers_in_every_mode(
    session: Session, named: FakeEncoder, author: str, paper: str
) -> None:
    found = {
        mode: [
            hit.paper.id for hit in run(session, "speech", named, mode=mode, filters={"author": author}).hits
        ]
        for mode in SearchMode
    }

    assert found == {mode: [paper] for mode in SearchMode}
