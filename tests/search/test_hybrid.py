"""Hybrid and semantic search: the whole keyword list fused with meaning, each hit saying how it matched."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.search.schemas import MatchSource, SearchMode, SearchQuery, SearchSort
from papertide.worker import jobs
from tests.factories import FakeEncoder, make_paper
from tests.helpers import keyword_index_now


def run(session: Session, q: str, encoder: Any, **fields: Any) -> Any:
    query = SearchQuery.model_validate({"q": q, **fields})
    return search_service.search(session, query, encoder=encoder, keywords=keyword_index_now())


@pytest.fixture
def corpus(database: str, session: Session, fake_encoder: FakeEncoder) -> FakeEncoder:
    # The fake encoder embeds a bag of words: papers sharing words with the query are near it.
    make_paper(session, id="2601.00001", title="Speech", abstract="Speech synthesis with diffusion.")
    make_paper(
        session, id="2601.00002", title="Voices", abstract="Synthesis of voices.", code_url="https://x.org"
    )
    make_paper(session, id="2601.00003", title="Graphs", abstract="Graph neural networks.")
    for n in range(4, 30):
        make_paper(session, id=f"2601.{n:05d}", title=f"Other {n}", abstract=f"Unrelated matter number {n}.")
    session.commit()
    jobs.embed(encoder=fake_encoder)
    return fake_encoder


def test_each_hit_says_whether_words_meaning_or_both_found_it(session: Session, corpus: FakeEncoder) -> None:
    page = run(session, "speech synthesis", corpus, mode=SearchMode.HYBRID, limit=30)
    matched = {hit.paper.id: hit.matched for hit in page.hits}

    assert page.hits[0].paper.id == "2601.00001"  # both words, and nearest in meaning
    assert matched["2601.00001"] == MatchSource.BOTH
    assert matched["2601.00003"] == MatchSource.MEANING  # no word in common: only the semantic list has it
    assert page.total_is_estimate  # the meaning side has no edge


def test_hybrid_fuses_the_any_word_matches_too(session: Session, corpus: FakeEncoder) -> None:
    # "voices" has no paper with every word of the query; the one with some of them still leads.
    page = run(session, "synthesis of voices nowhere", corpus, mode=SearchMode.HYBRID)

    assert page.hits[0].paper.id == "2601.00002"
    assert page.hits[0].keyword_rank == 1


def test_semantic_mode_with_a_filter_ranks_only_papers_that_pass(
    session: Session, corpus: FakeEncoder
) -> None:
    page = run(session, "speech synthesis", corpus, mode=SearchMode.SEMANTIC, filters={"has_code": True})

    assert [hit.paper.id for hit in page.hits] == ["2601.00002"]
    assert page.total == 1
    assert not page.total_is_estimate


def test_an_archive_filter_takes_in_its_subject_classes_in_semantic_mode(
    session: Session, corpus: FakeEncoder
) -> None:
    make_paper(session, id="2601.00090", title="Speech", abstract="Speech synthesis.", categories=["eess.AS"])
    make_paper(session, id="2601.00091", title="Speech", abstract="Speech synthesis.", categories=["math.CO"])
    session.commit()
    jobs.embed(encoder=corpus)

    def found(*categories: str) -> set[str]:
        query = {"categories": list(categories)}
        return {
            h.paper.id for h in run(session, "speech", corpus, mode=SearchMode.SEMANTIC, filters=query).hits
        }

    assert found("eess") == {"2601.00090"}, "eess is every eess.* paper"
    assert found("math", "eess.AS") == {"2601.00090", "2601.00091"}
    assert "2601.00090" not in found("cs"), "cs takes in cs.LG, not eess.AS"
    assert "2601.00001" in found("cs")
    assert found("ees") == set(), "an archive is a whole name, not a prefix of one"


def test_exclusions_hold_for_meaning_too(session: Session, corpus: FakeEncoder) -> None:
    page = run(session, "speech synthesis -diffusion", corpus, mode=SearchMode.HYBRID, limit=30)

    assert "2601.00001" not in [hit.paper.id for hit in page.hits]


def test_a_failing_keyword_index_fails_hybrid_search_as_it_fails_keyword_search(
    session: Session, corpus: FakeEncoder
) -> None:
    # Hybrid asks the index on another thread while the model embeds the query: its failure must
    # still reach the caller (the page turns it into "search is unavailable"), not vanish there.
    index = keyword_index_now()

    class Damaged(type(index)):  # type: ignore[misc]
        def __init__(self) -> None:
            self.__dict__.update(index.__dict__)

        def search(self, *args: object, **kwargs: object) -> Any:
            raise KeywordIndexUnavailable("the keyword index could not be searched: damaged segment")

    query = SearchQuery.model_validate({"q": "speech synthesis", "mode": SearchMode.HYBRID})
    with pytest.raises(KeywordIndexUnavailable, match="damaged segment"):
        search_service.search(session, query, encoder=corpus, keywords=Damaged())


def test_hybrid_says_which_hits_the_words_match_and_which_only_the_meaning(
    session: Session, corpus: FakeEncoder
) -> None:
    # "synthesis" is in two abstracts, "graph" in one: each of those says words (or both); every
    # other hit was found by meaning alone.
    page = run(session, "synthesis graph", corpus, mode=SearchMode.HYBRID, limit=30)
    by_words = {hit.paper.id for hit in page.hits if hit.matched in (MatchSource.WORDS, MatchSource.BOTH)}

    assert by_words == {"2601.00001", "2601.00002", "2601.00003"}
    assert all(hit.matched == MatchSource.MEANING for hit in page.hits if hit.paper.id not in by_words)


def test_pages_of_hybrid_results_never_repeat_a_paper(session: Session, corpus: FakeEncoder) -> None:
    pages = [run(session, "synthesis matter", corpus, limit=5, page=n) for n in (1, 2, 3)]
    seen = [hit.paper.id for page in pages for hit in page.hits]

    assert len(seen) == 15
    assert len(set(seen)) == 15


def test_newest_first_in_hybrid_orders_by_publication(session: Session, corpus: FakeEncoder) -> None:
    page = run(session, "synthesis matter", corpus, sort=SearchSort.NEWEST, limit=30)
    dates = [hit.paper.published_at for hit in page.hits]

    assert dates == sorted(dates, reverse=True)


def test_a_title_finds_its_paper_on_the_sample(
    sample_database: str, session: Session, real_encoder: Any
) -> None:
    # Known-item search: keyword mode puts the paper first; hybrid keeps it near the top although
    # the sample embeds only its newest 64 papers (the semantic list cannot vote for the others).
    from papertide.models import Paper

    for paper in session.query(Paper).order_by(Paper.id).limit(200).all()[::40]:
        keyword = run(session, paper.title[:300], None, mode=SearchMode.KEYWORD, limit=1)
        hybrid = run(session, paper.title[:300], real_encoder, mode=SearchMode.HYBRID, limit=5)
        assert keyword.hits[0].paper.id == paper.id, paper.title
        assert paper.id in [hit.paper.id for hit in hybrid.hits], paper.title


def test_page_two_of_a_search_reuses_the_query_vector_of_page_one(
    session: Session, corpus: FakeEncoder
) -> None:
    asked: list[list[str]] = []

    class Counting(FakeEncoder):
        def encode(self, texts: list[str]) -> Any:
            asked.append(texts)
            return super().encode(texts)

    encoder = Counting()
    first = run(session, "synthesis matter", encoder, mode=SearchMode.SEMANTIC, limit=5, page=1)
    second = run(session, "synthesis matter", encoder, mode=SearchMode.SEMANTIC, limit=5, page=2)
    other = run(session, "graph networks", encoder, mode=SearchMode.SEMANTIC, limit=5)

    assert asked == [["synthesis matter"], ["graph networks"]]
    assert not {h.paper.id for h in first.hits} & {h.paper.id for h in second.hits}
    assert other.hits[0].paper.id == "2601.00003"
