"""Keyword search as a searcher sees it: BM25 order, phrases, -minus, filters, sorts, pages, counts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from papertide.search import query_syntax
from papertide.search import service as search_service
from papertide.search.schemas import DateField, SearchFilters, SearchMode, SearchQuery, SearchSort
from tests.factories import make_paper
from tests.helpers import keyword_index_now


def ids(session: Session, q: str = "", **fields: Any) -> list[str]:
    return [hit.paper.id for hit in run(session, q, **fields).hits]


def run(session: Session, q: str = "", **fields: Any) -> Any:
    query = SearchQuery.model_validate({"q": q, "mode": SearchMode.KEYWORD, **fields})
    return search_service.search(session, query, encoder=None, keywords=keyword_index_now())


def filler(session: Session, count: int, abstract: str) -> None:
    for _ in range(count):
        make_paper(session, abstract=abstract)


def test_a_rare_telling_word_outranks_a_common_one(database: str, session: Session) -> None:
    # "model" is in every abstract, "photosynthesis" in one: BM25's inverse document frequency puts
    # the paper with the rare word first, although others say "model" three times.
    filler(session, 30, "A model, a model and a model of learning.")
    make_paper(session, id="2601.77777", abstract="A photosynthesis study with one simple setup.")
    make_paper(session, id="2601.77778", abstract="A model of photosynthesis in leaves.")
    session.commit()

    found = ids(session, "photosynthesis model")

    assert found[:2] == ["2601.77778", "2601.77777"]  # both words, then the rare one alone
    assert len(found) == 20  # then papers with "model" only: any word matches, BM25 ranks


def test_title_words_weigh_more_than_abstract_words(database: str, session: Session) -> None:
    filler(session, 10, "Unrelated text about graphs.")
    make_paper(session, id="2601.10001", title="Notes", abstract="We also touch on diffusion briefly.")
    make_paper(session, id="2601.10002", title="Diffusion", abstract="We also touch on it briefly here.")
    session.commit()

    assert ids(session, "diffusion") == ["2601.10002", "2601.10001"]


def test_word_forms_match_and_stop_words_alone_match_nothing(database: str, session: Session) -> None:
    make_paper(session, id="2601.20001", abstract="Training language models with feedback.")
    session.commit()

    assert ids(session, "model trained") == ["2601.20001"]
    assert ids(session, "the of and") == []


def test_a_quoted_phrase_must_appear_in_order_and_minus_excludes(database: str, session: Session) -> None:
    make_paper(session, id="2601.30001", abstract="Neural radiance fields for scenes.")
    make_paper(session, id="2601.30002", abstract="Radiance of neural tissue.")
    make_paper(session, id="2601.30003", abstract="Neural radiance fields: a survey.")
    session.commit()

    assert sorted(ids(session, '"neural radiance"')) == ["2601.30001", "2601.30003"]
    assert ids(session, '"neural radiance" -survey') == ["2601.30001"]
    assert ids(session, 'neural -"radiance fields"') == ["2601.30002"]


def test_a_quoted_phrase_with_an_underscored_word_matches_as_the_text_is_split(
    database: str, session: Session
) -> None:
    make_paper(session, id="2601.30011", abstract="We study snake_case naming in code.")
    make_paper(session, id="2601.30012", abstract="Naming a snake in case studies.")
    session.commit()

    assert ids(session, '"snake_case naming"') == ["2601.30011"]


@pytest.mark.parametrize(
    "q", ['title:x OR (y^5) AND "unclosed', "*:* -", "\\'; DROP TABLE paper; --", "a" * 300, '"""', "-"]
)
def test_query_syntax_from_the_searcher_is_never_an_operator(database: str, session: Session, q: str) -> None:
    make_paper(session, abstract="Ordinary text.")
    session.commit()

    if query_syntax.parse(q).empty:  # "*:* -", '"""', "-": no word at all, refused with a reason
        with pytest.raises(ValueError, match="no word to search for"):
            run(session, q)
    else:
        run(session, q)  # no error: every piece is a word, a phrase or an exclusion


def test_filters_narrow_by_category_code_author_and_dates(database: str, session: Session) -> None:
    def paper(pid: str, **fields: Any) -> None:
        make_paper(session, id=pid, abstract="Graph learning methods.", **fields)

    paper("2601.40001", categories=["cs.LG"], authors=["Jürgen Müller"])
    paper("2601.40002", categories=["cs.CL", "cs.LG"], code_url="https://github.com/x/y")
    paper("2601.40003", categories=["math.CO"], published_at=datetime(2025, 5, 1, tzinfo=UTC))
    paper("2601.40004", announced_at=datetime(2026, 3, 1, tzinfo=UTC))
    session.commit()

    assert sorted(ids(session, "graph", filters={"categories": ["cs.CL", "math.CO"]})) == [
        "2601.40002",
        "2601.40003",
    ]
    # An archive takes in its subject classes (cs is cs.LG and cs.CL); a whole category only itself.
    in_cs = ["2601.40001", "2601.40002", "2601.40004"]  # the last: make_paper's cs.LG
    assert sorted(ids(session, "graph", filters={"categories": ["cs"]})) == in_cs
    assert ids(session, "graph", filters={"categories": ["math"]}) == ["2601.40003"]
    assert ids(session, "graph", filters={"categories": ["ma"]}) == []
    assert ids(session, "graph", filters={"has_code": True}) == ["2601.40002"]
    assert ids(session, "graph", filters={"author": "Muller"}) == ["2601.40001"]
    assert ids(session, "", filters={"author": "jürgen müller"}) == ["2601.40001"]  # an author alone
    assert ids(session, "graph", filters={"date_to": date(2025, 12, 31)}) == ["2601.40003"]
    listed = {"date_field": DateField.LISTED, "date_from": date(2026, 3, 1), "date_to": date(2026, 3, 1)}
    assert ids(session, "graph", filters=listed) == ["2601.40004"]


def test_newest_first_and_pages_walk_through_the_honest_count(database: str, session: Session) -> None:
    for day in range(1, 26):
        make_paper(session, abstract="Sparse attention.", published_at=datetime(2026, 1, day, tzinfo=UTC))
    filler(session, 5, "Nothing to see.")
    session.commit()

    first = run(session, "attention", sort=SearchSort.NEWEST, limit=10)
    pages = [first] + [run(session, "attention", sort=SearchSort.NEWEST, limit=10, page=n) for n in (2, 3)]
    seen = [hit.paper for page in pages for hit in page.hits]

    assert first.total == 25
    assert not first.total_is_estimate
    assert [p.published_at for p in seen] == sorted((p.published_at for p in seen), reverse=True)
    assert len({p.id for p in seen}) == 25  # no paper twice, none missing
    assert [page.has_next for page in pages] == [True, True, False]


def test_sort_by_trend_puts_this_weeks_trending_matches_first(sample_database: str, session: Session) -> None:
    by_relevance = ids(session, "language models", limit=50)
    by_trend = run(session, "language models", sort=SearchSort.TRENDING, limit=50)
    trending = [hit for hit in by_trend.hits if hit.score > 0]

    assert trending, "the sample has trending matches for 'language models'"
    assert [hit.score for hit in trending] == sorted((hit.score for hit in trending), reverse=True)
    assert {hit.paper.id for hit in by_trend.hits[: len(trending)]} == {hit.paper.id for hit in trending}
    assert by_trend.total == run(session, "language models").total
    assert by_relevance != [hit.paper.id for hit in by_trend.hits]


def test_a_subject_class_in_lowercase_finds_what_arxivs_spelling_finds(
    database: str, session: Session
) -> None:
    make_paper(session, id="2601.30021", abstract="Parsing.", categories=["cs.CL"])
    make_paper(session, id="2601.30022", abstract="Parsing.", categories=["cond-mat.str-el"])
    session.commit()

    assert ids(session, "parsing", filters={"categories": ["cs.cl"]}) == ["2601.30021"]
    assert ids(session, "parsing", filters={"categories": ["cond-mat.str-el"]}) == ["2601.30022"]


def test_hostile_filters_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="not an arXiv category"):
        SearchFilters.model_validate({"categories": ["cs.CL; DROP"]})
    with pytest.raises(ValueError, match="start date is after the end date"):
        SearchFilters.model_validate({"date_from": "2026-02-01", "date_to": "2026-01-01"})
    with pytest.raises(ValueError, match="query is empty"):
        SearchQuery.model_validate({"q": "   "})
    for nothing in ("-speech", '-"speech synthesis"', "🎉", "\\ ^ :", "\u200b"):
        with pytest.raises(ValueError, match="no word to search for"):
            SearchQuery.model_validate({"q": nothing})
    assert SearchQuery.model_validate({"q": "-speech", "filters": {"author": "Müller"}}).q == "-speech"
