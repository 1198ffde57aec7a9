"""The arXiv API parser on recorded Atom feeds (arxiv.py's 2026 recordings and its 2016 files)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from papertide.ingest.sources import arxiv_api
from papertide.ingest.sources.base import Skipped, SourceError
from papertide.papers.schemas import PaperIn
from tests.helpers import FIXTURES

API = FIXTURES / "arxiv_api"
TESTING_PAGE_1 = "q_testing_s0_m10_bc5a6c384fe9.json"


def recorded(name: str) -> bytes:
    """The bytes arXiv sent. The recorder (arxiv.py) stored them decoded as Latin-1, so encoding the
    body back to Latin-1 restores the UTF-8 original; `body.encode()` would double-encode `í` as `Ã­`."""
    if name.endswith(".xml"):
        return (API / name).read_bytes()
    body: str = json.loads((API / name).read_text(encoding="utf-8"))["body"]
    return body.encode("latin-1")


def edited(name: str, old: bytes, new: bytes) -> bytes:
    """A recorded response with one piece changed; fails loudly if the piece is not there."""
    raw = recorded(name)
    assert raw.count(old) == 1, f"{old!r} should occur once in {name}"
    return raw.replace(old, new)


def only_paper(name: str) -> PaperIn:
    page = arxiv_api.parse_feed(recorded(name), location=name)
    assert page.result.skipped == []
    [paper] = page.result.records
    return paper


@pytest.mark.parametrize(
    ("name", "start", "first_id"),
    [
        (TESTING_PAGE_1, 0, "2202.12139"),
        ("q_testing_s10_m10_34e56e15aaac.json", 10, "2403.16981"),
    ],
)
def test_search_pages_give_their_paging_numbers(name: str, start: int, first_id: str) -> None:
    page = arxiv_api.parse_feed(recorded(name), location=name)

    assert (page.total_results, page.start_index, page.items_per_page) == (214881, start, 10)
    assert len(page.result.records) == 10
    assert page.result.skipped == []
    assert page.result.records[0].id == first_id


def test_revised_paper_keeps_version_dates_and_primary_category_first() -> None:
    page = arxiv_api.parse_feed(recorded(TESTING_PAGE_1), location=TESTING_PAGE_1)

    paper = page.result.records[2]
    assert paper.id == "2005.14124"
    assert paper.version == 2
    assert paper.title == "Active Fuzzing for Testing and Securing Cyber-Physical Systems"
    assert paper.authors == ["Yuqi Chen", "Bohan Xuan", "Christopher M. Poskitt", "Jun Sun", "Fan Zhang"]
    assert paper.categories == ["cs.SE", "cs.CR", "cs.LG"]
    assert paper.published_at == datetime(2020, 5, 28, 16, 19, 50, tzinfo=UTC)
    assert paper.updated_at == datetime(2020, 7, 16, 8, 15, 48, tzinfo=UTC)
    assert paper.abs_url == "https://arxiv.org/abs/2005.14124"
    assert paper.pdf_url == "https://arxiv.org/pdf/2005.14124"
    assert paper.abstract.startswith(
        "Cyber-physical systems (CPSs) in critical infrastructure face a pervasive threat"
    )


def test_non_ascii_author_names_survive() -> None:
    page = arxiv_api.parse_feed(recorded(TESTING_PAGE_1), location=TESTING_PAGE_1)

    paper = page.result.records[1]
    assert paper.id == "2405.13786"
    assert paper.authors == ["Aurora Ramírez", "Mario Berrios", "José Raúl Romero", "Robert Feldt"]


def test_old_style_ids_lose_only_their_version() -> None:
    astro = only_paper("id_astro-ph_0601001_s0_m100_3150dca9dc76.json")
    quant = only_paper("id_quant-ph_0201082v1_s0_m100_86989fe779ef.json")

    assert (astro.id, astro.version) == ("astro-ph/0601001", 1)
    assert astro.abs_url == "https://arxiv.org/abs/astro-ph/0601001"
    assert astro.authors == ["Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski"]
    assert astro.abstract.startswith("We derive the frequencies of hot Jupiters")
    assert "following Gould & Morgan (2003)" in astro.abstract
    assert (quant.id, quant.version) == ("quant-ph/0201082", 1)
    assert quant.categories == ["quant-ph", "cs.PL"]
    assert quant.published_at == datetime(2002, 1, 18, 15, 8, 5, tzinfo=UTC)
    assert quant.pdf_url == "https://arxiv.org/pdf/quant-ph/0201082"


def test_a_title_of_zero_is_still_a_title() -> None:
    paper = only_paper("id_2104.12255v1_s0_m100_6ae69987ffe1.json")

    assert (paper.id, paper.version, paper.title) == ("2104.12255", 1, "0")
    assert paper.authors == ["Quan Thoi Minh Nguyen"]


def test_legacy_2016_feed_with_inline_opensearch_namespaces() -> None:
    name = "search_au_del_maestro_AND_ti_checkerboard.xml"
    page = arxiv_api.parse_feed(recorded(name), location=name)

    assert (page.total_results, page.start_index, page.items_per_page) == (1, 0, 10)
    [paper] = page.result.records
    assert (paper.id, paper.version) == ("cond-mat/0603029", 1)
    assert paper.title == (
        "From stripe to checkerboard order on the square lattice in the presence of quenched disorder"
    )
    assert paper.categories == ["cond-mat.str-el", "cond-mat.supr-con"]
    assert paper.authors[0] == "Adrian Del Maestro"
    assert paper.pdf_url == "https://arxiv.org/pdf/cond-mat/0603029"


def test_primary_category_comes_first_wherever_it_is_listed() -> None:
    raw = edited(
        "id_quant-ph_0201082v1_s0_m100_86989fe779ef.json",
        b'<arxiv:primary_category term="quant-ph"/>',
        b'<arxiv:primary_category term="cs.PL"/>',
    )

    [paper] = arxiv_api.parse_feed(raw, location="feed").result.records

    assert paper.categories == ["cs.PL", "quant-ph"]


def test_error_entry_fails_the_page_with_arxivs_message() -> None:
    with pytest.raises(SourceError) as caught:
        arxiv_api.parse_feed(recorded("id_abc_s0_m100_b79c8dcf6bc3.json"), location="id_list=abc")

    assert str(caught.value) == "arxiv-api: id_list=abc: arXiv reported an error: incorrect id format for abc"


def test_no_results_is_an_empty_page() -> None:
    page = arxiv_api.parse_feed(
        recorded("id_0000.0000_s0_m100_8b51d9633a68.json"), location="id_list=0000.0000"
    )

    assert (page.total_results, page.start_index, page.items_per_page) == (0, 0, 100)
    assert page.result.records == []
    assert page.result.skipped == []


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            b"<title>Quantum Computers and Quantum Computer Languages: Quantum Assembly Language and Quantum C Language</title>",
            b"<title/>",
            "title: String should have at least 1 character",
        ),
        (
            b"<published>2002-01-18T15:08:05Z</published>",
            b"<published>Jan 18, 2002</published>",
            "published: unknown date format 'Jan 18, 2002'",
        ),
    ],
)
def test_bad_entry_is_skipped_with_its_location(old: bytes, new: bytes, reason: str) -> None:
    raw = edited("id_quant-ph_0201082v1_s0_m100_86989fe779ef.json", old, new)

    page = arxiv_api.parse_feed(raw, location="feed")

    assert page.result.records == []
    assert page.result.skipped == [Skipped("feed entry 1 (http://arxiv.org/abs/quant-ph/0201082v1)", reason)]


def test_truncated_feed_fails_with_its_position() -> None:
    raw = recorded(TESTING_PAGE_1)[:5000]
    last_line = raw.rsplit(b"\n", 1)[-1]

    with pytest.raises(SourceError) as caught:
        arxiv_api.parse_feed(raw, location="cut.xml")

    line, column = raw.count(b"\n") + 1, len(last_line) + 1
    assert (
        str(caught.value)
        == f"arxiv-api: cut.xml is not well-formed XML (line {line}, column {column}): no element found"
    )


def test_a_feed_without_paging_numbers_fails_clearly() -> None:
    with pytest.raises(SourceError, match=r"^arxiv-api: page has no usable opensearch:totalResults"):
        arxiv_api.parse_feed(b'<feed xmlns="http://www.w3.org/2005/Atom"/>', location="page")
