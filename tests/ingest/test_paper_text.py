"""A paper's text from a source is hostile: every title, abstract and author name is kept as one line
of visible text, and a record too long to be a paper is refused by name, never stored and mailed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from papertide.ingest.sources import hf_daily
from papertide.papers.schemas import MAX_ABSTRACT, MAX_AUTHOR, MAX_AUTHORS, MAX_TITLE, PaperIn
from papertide.templating import shortened

INJECTED = "Ada Lovelace\n\n   Manage your digest: https://evil.example/manage\r\n   Unsubscribe: x"


def paper(**fields: object) -> PaperIn:
    return PaperIn.model_validate(
        {"id": "2611.01234", "title": "A title", "abstract": "An abstract.", **fields}
    )


def test_an_author_name_cannot_write_lines_of_its_own() -> None:
    record = paper(authors=[INJECTED, "Grace\u2028Hopper", "Alan\x85Turing", "Barbara\x0bLiskov"])

    assert record.authors == [
        "Ada Lovelace Manage your digest: https://evil.example/manage Unsubscribe: x",
        "Grace Hopper",
        "Alan Turing",
        "Barbara Liskov",
    ]


def test_invisible_and_control_characters_are_dropped_from_every_text() -> None:
    """A direction override reverses what follows it on a page and in a reason line; a NUL is no
    text at all (Postgres refuses it)."""
    record = paper(
        title="\u202eAttention\u200b Is All\x00 You Need",
        abstract="We\u2066 propose\x1b[31m a model.",
        authors=["\u202eEve", "\u200b", "  ", "Zoë Ø"],
    )

    assert record.title == "Attention Is All You Need"
    assert record.abstract == "We propose[31m a model."
    assert record.authors == ["Eve", "Zoë Ø"]  # names of nothing visible are left out


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "W" * (MAX_TITLE + 1)}, "title is 1,001 characters long, more than 1,000"),
        ({"abstract": "a " * MAX_ABSTRACT}, "abstract is 39,999 characters long, more than 20,000"),
        ({"authors": ["A B"] * (MAX_AUTHORS + 1)}, "10,001 authors, more than 10,000"),
        ({"title": "\u200b\u202e"}, "title has no visible characters"),
    ],
    ids=["title", "abstract", "authors", "invisible-title"],
)
def test_a_record_too_long_to_be_a_paper_is_refused_naming_the_field(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        paper(**fields)


def test_a_name_too_long_to_be_one_is_cut_and_the_paper_kept() -> None:
    """An HF user can type anything as their name: that one name is cut, not the paper refused."""
    record = paper(authors=["Grace Hopper", "Ada " + "Lovelace " * 100])

    assert record.authors[0] == "Grace Hopper"
    assert MAX_AUTHOR - 10 < len(record.authors[1]) <= MAX_AUTHOR
    assert record.authors[1].startswith("Ada Lovelace Lovelace")
    assert record.authors[1].endswith("Lovelace…")


def test_joiners_that_emoji_and_scripts_need_are_kept() -> None:
    """Only the format characters that hide or reorder text go; the zero-width joiner builds 👩‍💻
    and the non-joiner spells Persian."""
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want": a non-joiner inside
    record = paper(title=f"Coders 👩\u200d💻 and {persian}", authors=["Zoë\u00adØ"])

    assert record.title == f"Coders 👩\u200d💻 and {persian}"
    assert record.authors == ["Zoë\u00adØ"]


def test_the_longest_real_texts_are_kept_whole() -> None:
    record = paper(title="W" * MAX_TITLE, abstract="a" * MAX_ABSTRACT, authors=["A" * MAX_AUTHOR] * 3)

    assert (len(record.title), len(record.abstract), len(record.authors[0])) == (
        MAX_TITLE,
        MAX_ABSTRACT,
        MAX_AUTHOR,
    )


def test_a_source_item_too_long_to_be_a_paper_is_skipped_and_the_rest_kept() -> None:
    def item(paper_id: str, title: str) -> dict[str, object]:
        return {
            "paper": {
                "id": paper_id,
                "title": title,
                "summary": "An abstract.",
                "authors": [{"name": INJECTED}],
            }
        }

    result = hf_daily.parse_day(
        [item("2611.00001", "W" * 100_000), item("2611.00002", "A fine title")],
        day=date(2026, 11, 24),
        observed_at=datetime(2026, 11, 24, tzinfo=UTC),
        location="2026-11-24.json",
    )

    assert [r.id for r in result.records] == ["2611.00002"]
    assert result.records[0].authors == [
        "Ada Lovelace Manage your digest: https://evil.example/manage Unsubscribe: x"
    ]
    [skipped] = result.skipped
    assert skipped.location == "2026-11-24.json[0]"
    assert "title is 100,000 characters long" in skipped.reason


def test_a_cut_keeps_every_whole_word_that_fits() -> None:
    assert shortened("word " * 20, 70) == "word " * 13 + "word…"
    assert shortened("x" * 100, 10) == "x" * 9 + "…"  # one long word is cut inside it
    assert shortened("a short title", 70) == "a short title"
