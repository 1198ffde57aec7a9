"""The arXiv OAI-PMH parser on recorded responses (arXivRaw from 2015, arXiv format from 2016-2017)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from papertide.ingest.sources import arxiv_oai
from papertide.ingest.sources.base import Skipped, SourceError
from papertide.papers.schemas import PaperIn
from tests.helpers import FIXTURES

OAI = FIXTURES / "arxiv_oai_pmh"


def recorded(name: str) -> bytes:
    return (OAI / name).read_bytes()


def edited(name: str, old: bytes, new: bytes) -> bytes:
    """A recorded response with one piece changed; fails loudly if the piece is not there."""
    raw = recorded(name)
    assert raw.count(old) == 1, f"{old!r} should occur once in {name}"
    return raw.replace(old, new)


def by_id(page: arxiv_oai.OaiPage) -> dict[str, PaperIn]:
    return {paper.id: paper for paper in page.result.records}


def test_arxiv_raw_records_carry_their_version_history() -> None:
    page = arxiv_oai.parse_list_records(
        recorded("ListRecordsResponse.xml"), location="ListRecordsResponse.xml"
    )

    papers = by_id(page)
    assert list(papers) == ["0704.0471", "0704.0716", "0704.0874", "0704.1109", "0704.1114", "0704.1586"]
    assert page.result.skipped == []
    revised = papers["0704.0716"]
    assert revised.title == "Limit distributions and scaling functions"
    assert revised.authors == ["Christoph Richard"]
    assert revised.categories == ["math-ph", "math.MP"]
    assert revised.published_at == datetime(2007, 4, 5, 12, 45, 3, tzinfo=UTC)
    assert revised.updated_at == datetime(2008, 11, 14, 9, 7, 25, tzinfo=UTC)
    assert revised.version == 4
    assert revised.abs_url == "https://arxiv.org/abs/0704.0716"
    assert revised.pdf_url == "https://arxiv.org/pdf/0704.0716"


def test_arxiv_raw_author_string_and_wrapped_text_are_cleaned() -> None:
    page = arxiv_oai.parse_list_records(
        recorded("ListRecordsResponse.xml"), location="ListRecordsResponse.xml"
    )

    paper = by_id(page)["0704.0471"]
    assert paper.authors == ["D.V. Shetty", "S.J. Yennello", "G.A. Souliotis"]
    assert paper.title == (
        "Density dependence of the symmetry energy and the nuclear equation of state: "
        "A Dynamical and Statistical model perspective"
    )
    assert paper.abstract.startswith(
        "The density dependence of the symmetry energy in the equation of state of isospin"
    )
    assert 'extremely " stiff " and " soft " form' in paper.abstract
    assert paper.version == 1
    assert paper.updated_at is None
    assert by_id(page)["0704.1109"].authors == ["Valeria M. Rosa", "Patricio S. letelier"]


def test_list_records_page_gives_its_resumption_token() -> None:
    page = arxiv_oai.parse_list_records(
        recorded("ListRecordsResponse.xml"), location="ListRecordsResponse.xml"
    )

    assert page.resumption_token == "726959|1001"
    assert page.cursor == 0
    assert page.complete_list_size == 58011


def test_empty_resumption_token_ends_the_list_but_keeps_its_counts() -> None:
    raw = edited(
        "ListRecordsResponse.xml",
        b'<resumptionToken cursor="0" completeListSize="58011">726959|1001</resumptionToken>',
        b'<resumptionToken cursor="58000" completeListSize="58011"/>',
    )

    page = arxiv_oai.parse_list_records(raw, location="last page")

    assert page.resumption_token is None
    assert page.cursor == 58000
    assert page.complete_list_size == 58011
    assert len(page.result.records) == 6


def test_arxiv_format_records_join_structured_author_names() -> None:
    page = arxiv_oai.parse_list_records(recorded("arxiv-physics-hep-th.xml"), location="hep-th.xml")

    papers = by_id(page)
    assert list(papers) == ["1412.8323", "1507.07790", "1607.01710"]
    toolbox = papers["1412.8323"]
    assert toolbox.title == "Toolbox for reconstructing quantum theory from rules on information acquisition"
    assert toolbox.authors == ["Philipp A Hoehn"]
    assert toolbox.categories == ["quant-ph", "gr-qc", "hep-th", "math-ph", "math.MP", "physics.hist-ph"]
    assert toolbox.published_at == datetime(2014, 12, 29, tzinfo=UTC)
    assert toolbox.updated_at == datetime(2017, 12, 13, tzinfo=UTC)
    assert toolbox.version is None
    assert papers["1607.01710"].authors[3] == "A. de Souza Dutra"
    assert page.resumption_token is None


def test_get_record_keeps_suffixes_and_drops_name_debris() -> None:
    """hepcrawl's record 4: arXiv split "Keck Array and BICEP2 Collaborations: P. Ade, ..." badly."""
    page = arxiv_oai.parse_list_records(recorded("sample_arxiv_record4.xml"), location="record4.xml")

    [paper] = page.result.records
    assert paper.id == "1603.05976"
    assert paper.authors[:3] == ["Keck Array", "BICEP2 Collaborations", "P. Ade"]
    assert ":" not in paper.authors
    assert "R. W. IV" in paper.authors
    assert len(paper.authors) == 65
    assert paper.updated_at is None


@pytest.mark.parametrize(
    ("name", "code", "text"),
    [
        ("ErrorResponseBadArgument.xml", "badArgument", "illegal argument 'identifier'"),
        ("ErrorResponseBadResumptionToken.xml", "badResumptionToken", "resumptionToken supplied is illegal"),
        ("ErrorResponseBadVerb.xml", "badVerb", "Verb 'wah' not implemented"),
        ("ErrorResponseIdDoesNotExist.xml", "idDoesNotExist", "'oai:arXiv.org:0813.2274' has correct form"),
    ],
)
def test_oai_errors_fail_the_page_naming_code_and_text(name: str, code: str, text: str) -> None:
    with pytest.raises(SourceError) as caught:
        arxiv_oai.parse_list_records(recorded(name), location=name)

    message = str(caught.value)
    assert message.startswith(f"arxiv-oai: {name}:")
    assert code in message
    assert text in message


def test_no_records_match_is_an_empty_page() -> None:
    page = arxiv_oai.parse_list_records(recorded("ErrorResponseNoRecordsMatch.xml"), location="moo")

    assert page.result.records == []
    assert page.result.skipped == []
    assert page.resumption_token is None


def test_deleted_record_is_skipped_and_the_rest_kept() -> None:
    raw = edited(
        "arxiv-physics-hep-th.xml",
        b"<header>\n <identifier>oai:arXiv.org:1507.07790</identifier>",
        b'<header status="deleted">\n <identifier>oai:arXiv.org:1507.07790</identifier>',
    )

    page = arxiv_oai.parse_list_records(raw, location="hep-th.xml")

    assert [paper.id for paper in page.result.records] == ["1412.8323", "1607.01710"]
    assert page.result.skipped == [Skipped("hep-th.xml record 2 (oai:arXiv.org:1507.07790)", "deleted")]


@pytest.mark.parametrize(
    ("name", "old", "new", "location", "reason"),
    [
        (
            "arxiv-physics-hep-th.xml",
            b"<title>Relativistic quantum dynamics of vector bosons in an Aharonov-Bohm\n  potential</title>",
            b"<title>  </title>",
            "page.xml record 2 (oai:arXiv.org:1507.07790)",
            "title: String should have at least 1 character",
        ),
        (
            "arxiv-physics-hep-th.xml",
            b"<created>2015-07-28</created>",
            b"<created>28 July 2015</created>",
            "page.xml record 2 (oai:arXiv.org:1507.07790)",
            "created: unknown date format '28 July 2015'",
        ),
        (
            "arxiv-physics-hep-th.xml",
            b"<id>1507.07790</id>",
            b"",
            "page.xml record 2 (oai:arXiv.org:1507.07790)",
            "id is missing",
        ),
        (
            "ListRecordsResponse.xml",
            b"<date>Thu, 5 Apr 2007 12:45:03 GMT</date>",
            b"<date>2007-04-05?</date>",
            "page.xml record 2 (oai:arXiv.org:0704.0716)",
            "version v1 date: unknown date format '2007-04-05?'",
        ),
    ],
)
def test_bad_record_is_skipped_with_its_location(
    name: str, old: bytes, new: bytes, location: str, reason: str
) -> None:
    page = arxiv_oai.parse_list_records(edited(name, old, new), location="page.xml")

    assert page.result.skipped == [Skipped(location, reason)]
    untouched = arxiv_oai.parse_list_records(recorded(name), location=name)
    assert len(page.result.records) == len(untouched.result.records) - 1


def test_truncated_document_fails_with_its_position() -> None:
    raw = recorded("arxiv-physics-hep-th.xml")[:2500]
    last_line = raw.rsplit(b"\n", 1)[-1]

    with pytest.raises(SourceError) as caught:
        arxiv_oai.parse_list_records(raw, location="cut.xml")

    line, column = raw.count(b"\n") + 1, len(last_line) + 1
    assert (
        str(caught.value)
        == f"arxiv-oai: cut.xml is not well-formed XML (line {line}, column {column}): no element found"
    )


def test_a_document_that_is_not_oai_pmh_fails_clearly() -> None:
    with pytest.raises(
        SourceError, match=r"^arxiv-oai: feed\.xml is not an OAI-PMH response \(root <feed>\)"
    ):
        arxiv_oai.parse_list_records(b'<feed xmlns="http://www.w3.org/2005/Atom"/>', location="feed.xml")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("A. One, B. Two, and C. Three", ["A. One", "B. Two", "C. Three"]),
        ("A. One and B. Two", ["A. One", "B. Two"]),
        ("A. One (MIT), B. Two ((1) CERN, (2) DESY) and C. Three", ["A. One", "B. Two", "C. Three"]),
        ("Alexander Sand", ["Alexander Sand"]),
    ],
)
def test_arxiv_raw_author_strings_split_into_names(text: str, names: list[str]) -> None:
    assert arxiv_oai.split_authors(text) == names
