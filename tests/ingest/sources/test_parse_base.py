"""What every parser shares: skipping a bad record with its location, author strings, dates, JSON lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from papertide.ingest.sources.base import (
    ParseResult,
    Skipped,
    json_line,
    parse_each,
    parse_rfc822,
    split_names,
    split_skipped,
)
from papertide.papers.schemas import PaperIn


class _Year(BaseModel):
    year: int


def _year(text: str) -> int | None:
    """A tiny record parser: None for a blank item, pydantic's error for a word, ValueError for a negative."""
    if not text:
        return None
    year = _Year.model_validate({"year": text}).year
    if year < 0:
        raise ValueError("year is negative")
    return year


def test_bad_items_become_skipped_with_their_location_and_reason() -> None:
    results = parse_each(
        ["2026", "", "soon", "-1", "1999"], _year, location_of=lambda n, item: f"f:{n} ({item})"
    )

    assert split_skipped(results) == (
        [2026, 1999],
        [
            Skipped(
                "f:3 (soon)", "year: Input should be a valid integer, unable to parse string as an integer"
            ),
            Skipped("f:4 (-1)", "year is negative"),
        ],
    )


def test_numbers_count_from_start_and_location_is_named_only_for_bad_items() -> None:
    named: list[int] = []

    def location_of(number: int, _: str) -> str:
        named.append(number)
        return f"[{number}]"

    results = list(parse_each(["1", "x", "2"], _year, location_of=location_of, start=0))

    assert [r for r in results if isinstance(r, Skipped)] == [
        Skipped("[1]", "year: Input should be a valid integer, unable to parse string as an integer")
    ]
    assert named == [1]


def test_errors_not_listed_are_not_swallowed() -> None:
    def boom(_: str) -> int:
        raise KeyError("a bug, not a bad record")

    with pytest.raises(KeyError):
        list(parse_each(["1"], boom, location_of=lambda n, _: str(n)))


def test_items_are_parsed_lazily() -> None:
    results = parse_each(iter(["1", "2"]), _year, location_of=lambda n, _: str(n))

    assert next(results) == 1


def test_parse_result_collects_records_and_skipped_in_order() -> None:
    paper = PaperIn(id="2609.26811", title="A title", abstract="An abstract.")
    skipped = Skipped("f:2", "title is missing")

    assert ParseResult.collect([paper, skipped, paper]) == ParseResult([paper, paper], [skipped])


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Ada Lovelace, Alan Turing and Grace Hopper", ["Ada Lovelace", "Alan Turing", "Grace Hopper"]),
        ("Ada Lovelace, Alan Turing, and Grace Hopper", ["Ada Lovelace", "Alan Turing", "Grace Hopper"]),
        ("Ada Lovelace and Alan Turing", ["Ada Lovelace", "Alan Turing"]),
        ("Fabien Polly", ["Fabien Polly"]),
        ("Sandra Anderson, Roland Andersen", ["Sandra Anderson", "Roland Andersen"]),
        ("Ratna Kandala,  Deepti, ", ["Ratna Kandala", "Deepti"]),
        ("", []),
    ],
)
def test_split_names(text: str, names: list[str]) -> None:
    assert split_names(text) == names


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 24 Sep 2026 00:00:00 -0400", datetime(2026, 9, 24, 4, 0, tzinfo=UTC)),
        ("Tue, 3 Apr 2007 22:04:11 GMT", datetime(2007, 4, 3, 22, 4, 11, tzinfo=UTC)),
        ("Tue, 3 Apr 2007 22:04:11 -0000", datetime(2007, 4, 3, 22, 4, 11, tzinfo=UTC)),
    ],
)
def test_rfc822_dates_become_utc(value: str, expected: datetime) -> None:
    parsed = parse_rfc822(value, where="date")

    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "date: unknown date format 'yesterday'"),
        (7, "date: expected a date string, got int"),
        (  # the year overflows the parser's C long
            "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
            "date: unknown date format 'Mon, 01 Jan 99999999999999999999 00:00:00 GMT'",
        ),
        (  # a date the parser reads, past year 9999 in UTC
            "Fri, 31 Dec 9999 23:59:59 -0100",
            "date: unknown date format 'Fri, 31 Dec 9999 23:59:59 -0100'",
        ),
    ],
)
def test_unreadable_rfc822_dates_name_the_field(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_rfc822(value, where="date")


def test_json_line_names_the_column_of_bad_json() -> None:
    assert json_line('{"id": 1}') == {"id": 1}
    with pytest.raises(ValueError, match=r"^not JSON: Expecting value at column 8$"):
        json_line('{"id": }')
