"""The Kaggle arXiv snapshot, parsed from its first 200 recorded lines (tests/fixtures/kaggle_arxiv_snapshot/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from papertide.ingest.sources.base import Skipped
from papertide.ingest.sources.kaggle import iter_records, parse_record
from papertide.papers.schemas import PaperIn
from tests.helpers import FIXTURES

SNAPSHOT = FIXTURES / "kaggle_arxiv_snapshot" / "arxiv-metadata-oai-snapshot.first200.jsonl"


def _lines() -> list[str]:
    return SNAPSHOT.read_text(encoding="utf-8").splitlines()


def _record(paper_id: str) -> dict[str, Any]:
    """The raw JSON object of one recorded paper."""
    for line in _lines():
        data: dict[str, Any] = json.loads(line)
        if data["id"] == paper_id:
            return data
    raise AssertionError(f"{paper_id} is not in the recording")


def _papers(**filters: Any) -> dict[str, PaperIn]:
    with SNAPSHOT.open(encoding="utf-8") as lines:
        results = list(iter_records(lines, location=SNAPSHOT.name, **filters))
    assert not [r for r in results if isinstance(r, Skipped)]
    return {paper.id: paper for paper in results if isinstance(paper, PaperIn)}


def test_every_recorded_line_is_a_paper() -> None:
    papers = _papers()

    assert len(papers) == 200
    assert min(papers) == "0704.0001"
    assert max(papers) == "0704.0200"


def test_first_paper_field_by_field() -> None:
    paper = _papers()["0704.0001"]

    assert (
        paper.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    # From authors_parsed: accents decoded, unlike the authors string's `Bal\'azs`.
    assert paper.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert paper.categories == ["hep-ph"]
    assert paper.published_at == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert paper.version == 2
    assert paper.updated_at == datetime(2008, 11, 26, tzinfo=UTC)
    assert paper.announced_at is None
    assert paper.abstract.startswith(
        "A fully differential calculation in perturbative quantum chromodynamics is presented"
    )
    assert paper.abstract.endswith("can be obtained with judicious selection of events.")
    assert "\n" not in paper.abstract
    assert paper.abs_url == "https://arxiv.org/abs/0704.0001"
    assert paper.pdf_url == "https://arxiv.org/pdf/0704.0001"


def test_second_paper_is_cross_listed_and_submitted_before_its_id_month() -> None:
    paper = _papers()["0704.0002"]

    assert paper.title == "Sparsity-certifying Graph Decompositions"
    assert paper.authors == ["Ileana Streinu", "Louis Theran"]
    assert paper.categories == ["math.CO", "cs.CG"]
    assert paper.published_at == datetime(2007, 3, 31, 2, 26, 18, tzinfo=UTC)
    assert paper.version == 2
    assert paper.updated_at == datetime(2008, 12, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("paper_id", "authors"),
    [
        # `["Evans", "Neal J.", "II"]`: the suffix goes last.
        (
            "0704.0009",
            [
                "Paul Harvey",
                "Bruno Merin",
                "Tracy L. Huard",
                "Luisa M. Rebull",
                "Nicholas Chapman",
                "Neal J. Evans II",
                "Philip C. Myers",
            ],
        ),
        # `["The BABAR Collaboration", "", ""]`: no forenames.
        ("0704.0020", ["The BABAR Collaboration", "B. Aubert"]),
        # `["Iliev", "Bozhidar Z.", "", "Institute for Nuclear Research ..."]`: a 4th element is the affiliation.
        ("0704.0066", ["Bozhidar Z. Iliev"]),
    ],
)
def test_authors_parsed_shapes(paper_id: str, authors: list[str]) -> None:
    assert _papers()[paper_id].authors == authors


def test_authors_string_is_the_fallback() -> None:
    data = _record("0704.0002")
    del data["authors_parsed"]

    assert parse_record(data).authors == ["Ileana Streinu", "Louis Theran"]


def test_parse_record_matches_the_streamed_paper() -> None:
    assert parse_record(_record("0704.0001")) == _papers()["0704.0001"]


def test_old_style_ids_are_kept_whole() -> None:
    data = _record("0704.0001") | {"id": "hep-th/9901001"}

    paper = parse_record(data)

    assert paper.id == "hep-th/9901001"
    assert paper.abs_url == "https://arxiv.org/abs/hep-th/9901001"


def test_category_prefix_keeps_the_subcategories() -> None:
    expected = {
        json.loads(line)["id"]
        for line in _lines()
        if any(c.startswith("cs.") for c in json.loads(line)["categories"].split())
    }

    papers = _papers(categories={"cs"})

    assert set(papers) == expected
    assert "0704.0002" in papers  # math.CO cs.CG
    assert "0704.0001" not in papers  # hep-ph
    assert len(papers) == 8


def test_category_filter_is_exact_below_the_archive() -> None:
    assert set(_papers(categories={"cs.CG"})) == {"0704.0002"}
    # `hep` is an archive prefix of `hep-ph` but not followed by a dot: nothing matches.
    assert _papers(categories={"hep"}) == {}
    assert len(_papers(categories={"hep-ph", "cs.CG"})) == 23


def test_since_keeps_records_updated_on_or_after_the_day() -> None:
    expected = {
        json.loads(line)["id"] for line in _lines() if json.loads(line)["update_date"] >= "2009-01-01"
    }

    papers = _papers(since=date(2009, 1, 1))

    assert set(papers) == expected
    assert "0704.0001" not in papers  # updated 2008-11-26
    assert 0 < len(papers) < 200
    assert "0704.0001" in _papers(since=date(2008, 11, 26))


def test_since_falls_back_to_the_first_version_without_update_date() -> None:
    line = json.dumps(_record("0704.0001") | {"update_date": None})

    assert list(iter_records([line], location="f", since=date(2007, 4, 3))) == []
    [paper] = iter_records([line], location="f", since=date(2007, 4, 2))
    assert isinstance(paper, PaperIn)
    assert paper.updated_at is None


def test_bad_lines_are_skipped_with_file_and_line() -> None:
    good = json.dumps(_record("0704.0001"))
    lines = [
        good,
        '{"id": "0704.0002", "title": ',
        "   ",
        "[1, 2]",
        json.dumps(_record("0704.0002") | {"title": ""}),
        json.dumps({k: v for k, v in _record("0704.0003").items() if k != "abstract"}),
        good,
    ]

    results = list(iter_records(lines, location="snapshot.jsonl"))

    assert [r.id for r in results if isinstance(r, PaperIn)] == ["0704.0001", "0704.0001"]
    assert [r for r in results if isinstance(r, Skipped)] == [
        Skipped("snapshot.jsonl:2", "not JSON: Expecting value at column 30"),
        Skipped("snapshot.jsonl:4", "expected a JSON object, got list"),
        Skipped("snapshot.jsonl:5", "title is missing"),
        Skipped("snapshot.jsonl:6", "abstract is missing"),
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"versions": [{"version": "v1", "created": "2007-04-02 19:18:42"}]},
            "versions[0].created: unknown date format '2007-04-02 19:18:42'",
        ),
        (
            {"versions": [{"version": "v1", "created": "Mon, 31 Apr 2007 19:18:42 GMT"}]},
            "versions[0].created: unknown date format 'Mon, 31 Apr 2007 19:18:42 GMT'",
        ),
        ({"update_date": "26/11/2008"}, "update_date: unknown date format '26/11/2008'"),
        (
            {"versions": [{"version": "two", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}]},
            "versions[-1].version: expected 'v<number>', got 'two'",
        ),
    ],
)
def test_unknown_date_or_version_format_is_skipped_with_the_field(
    change: dict[str, Any], reason: str
) -> None:
    line = json.dumps(_record("0704.0001") | change)

    assert list(iter_records(["", line], location="snapshot.jsonl")) == [Skipped("snapshot.jsonl:2", reason)]


def test_filtered_out_bad_records_are_not_reported() -> None:
    line = json.dumps(_record("0704.0001") | {"update_date": "26/11/2008"})  # hep-ph

    assert list(iter_records([line], location="f", categories={"cs"})) == []


def test_lines_are_read_lazily() -> None:
    def lines() -> Iterator[str]:
        yield json.dumps(_record("0704.0001"))
        raise AssertionError("iter_records read past the first record")

    first = next(iter_records(lines(), location="f"))

    assert isinstance(first, PaperIn)
    assert first.id == "0704.0001"
