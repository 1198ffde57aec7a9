"""arXiv announcement feeds, parsed from recorded RSS (tests/fixtures/arxiv_rss/) and a hand-written Atom twin."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from papertide.ingest.sources.arxiv_rss import parse_feed
from papertide.ingest.sources.base import SourceError
from tests.helpers import FIXTURES

RSS_DIR = FIXTURES / "arxiv_rss"
MULTI = RSS_DIR / "rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_laya-reader.xml"
SINGLE_CATEGORY = sorted(RSS_DIR.glob("rss_cs.*_2026-04-27_jmamath-distill.xml"))
ANNOUNCED_AT = datetime(2026, 9, 24, 4, 0, tzinfo=UTC)  # `Thu, 24 Sep 2026 00:00:00 -0400`
POLYTOPE_ABSTRACT = (
    "We introduce a class of random polytopes which simultaneously generalizes several known constructions. "
    "While being fairly general, these polytopes are also computationally exceptionally benign. We indicate "
    "how these properties can be exploited for classification and clustering tasks in data analysis. "
    "Crucially, our construction lets users smoothly trade off between a tighter description of the data "
    "and faster computation."
)


def _edit(raw: bytes, old: str, new: str) -> bytes:
    """Change a recorded feed in one place, failing loudly if the recording does not hold `old`."""
    assert raw.count(old.encode()) == 1, old
    return raw.replace(old.encode(), new.encode())


def test_multi_category_feed_gives_ids_versions_and_announce_types() -> None:
    feed = parse_feed(MULTI.read_bytes(), location=MULTI.name)

    assert feed.skipped == []
    assert [(item.paper.id, item.paper.version, item.announce_type) for item in feed.items] == [
        ("2609.26811", 1, "new"),
        ("2609.26820", 1, "new"),
        ("2205.06398", 2, "cross"),
        ("2009.13987", 3, "replace"),
    ]
    assert feed.announced_on == date(2026, 9, 24)


def test_new_item_field_by_field() -> None:
    paper = parse_feed(MULTI.read_bytes(), location=MULTI.name).items[1].paper

    assert paper.title == (
        "Signal2Symbol: Neuro-Symbolic Temporal Reasoning for Explainable Physiological "
        "Time-Series Anomaly Detection"
    )
    assert paper.authors == ["Naser Mansour", "Sidahmed Benabderrahmane", "Ameer Rahwan"]
    assert paper.categories == ["cs.LG", "cs.AI"]
    assert paper.abstract.startswith("Physiological time series such as electrocardiograms (ECG)")
    assert paper.abstract.endswith("provides compact, interpretable summaries of local detections.")
    assert paper.announced_at == ANNOUNCED_AT
    assert paper.announced_at.tzinfo is UTC  # converted, not left at the feed's -04:00
    assert paper.published_at is None  # the feed's date is the announcement, not the first version
    assert paper.abs_url == "https://arxiv.org/abs/2609.26820"
    assert paper.pdf_url == "https://arxiv.org/pdf/2609.26820"


def test_cross_listed_item_keeps_its_own_categories_and_version() -> None:
    paper = parse_feed(MULTI.read_bytes(), location=MULTI.name).items[2].paper

    assert paper.title == "Outlier Detection for Multi-Network Data"
    assert paper.authors == ["Pritam Dey", "Zhengwu Zhang", "David B. Dunson"]
    assert paper.categories == ["stat.ME", "stat.AP", "stat.ML"]
    assert paper.abstract.startswith("It has become routine in neuroscience studies")
    assert "Announce Type" not in paper.abstract


def test_replaced_item_abstract_is_the_text_after_the_marker() -> None:
    paper = parse_feed(MULTI.read_bytes(), location=MULTI.name).items[3].paper

    assert paper.title == "Random Polytope Descriptors"
    assert paper.authors == ["Michael Joswig", "Marek Kaluba", "Lukas Ruff"]
    assert paper.categories == ["cs.LG", "math.MG", "stat.ML"]
    assert paper.abstract == POLYTOPE_ABSTRACT


@pytest.mark.parametrize("path", SINGLE_CATEGORY, ids=lambda path: path.name.split("_")[1])
def test_single_category_feeds_parse_every_item(path: Path) -> None:
    feed = parse_feed(path.read_bytes(), location=path.name)

    assert len(feed.items) == 3
    assert feed.skipped == []
    assert feed.announced_on == date(2026, 4, 27)
    assert {item.announce_type for item in feed.items} == {"new"}
    assert all(item.paper.announced_at == datetime(2026, 4, 27, 4, 0, tzinfo=UTC) for item in feed.items)


def test_recorded_quirks_a_single_name_author_and_an_escaped_ampersand() -> None:
    cl = parse_feed((RSS_DIR / "rss_cs.CL_2026-04-27_jmamath-distill.xml").read_bytes(), location="cs.CL")
    lg = parse_feed((RSS_DIR / "rss_cs.LG_2026-04-27_jmamath-distill.xml").read_bytes(), location="cs.LG")

    # dc:creator reads `Anamta Khan, Ratna Kandala,  Deepti, Sheza Munir, Joyojeet Pal`.
    assert cl.items[0].paper.authors == [
        "Anamta Khan",
        "Ratna Kandala",
        "Deepti",
        "Sheza Munir",
        "Joyojeet Pal",
    ]
    assert "visual resolution & stride" in lg.items[0].paper.abstract


ATOM_AUTHORS = {
    "author-elements": (
        "<author><name>Michael Joswig</name></author>"
        "<author><name>Marek Kaluba</name></author>"
        "<author><name>Lukas Ruff</name></author>"
    ),
    "dc-creator": "<dc:creator>Michael Joswig, Marek Kaluba, Lukas Ruff</dc:creator>",
}


def _atom_feed(authors: str) -> bytes:
    """The 2026-09-24 `replace` item, written by hand in rss.arxiv.org/atom's elements."""
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom"
      xmlns:dc="http://purl.org/dc/elements/1.1/" xml:lang="en-us">
  <id>http://rss.arxiv.org/atom/cs.LG+cs.AI+cs.CL+stat.ML</id>
  <title>cs.LG, cs.AI, cs.CL, stat.ML updates on arXiv.org</title>
  <updated>2026-09-24T00:00:00-04:00</updated>
  <link href="http://rss.arxiv.org/atom/cs.LG+cs.AI+cs.CL+stat.ML" rel="self" type="application/atom+xml"/>
  <entry>
    <id>oai:arXiv.org:2009.13987v3</id>
    <title>Random Polytope Descriptors</title>
    <updated>2026-09-24T00:00:00-04:00</updated>
    <link href="https://arxiv.org/abs/2009.13987" rel="alternate" type="text/html"/>
    <summary>arXiv:2009.13987v3 Announce Type: replace
Abstract: {POLYTOPE_ABSTRACT}</summary>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
    <category term="math.MG" scheme="http://arxiv.org/schemas/atom"/>
    <category term="stat.ML" scheme="http://arxiv.org/schemas/atom"/>
    <published>2026-09-24T00:00:00-04:00</published>
    <arxiv:announce_type>replace</arxiv:announce_type>
    <rights>http://arxiv.org/licenses/nonexclusive-distrib/1.0/</rights>
    {authors}
  </entry>
</feed>""".encode()


@pytest.mark.parametrize("authors", ATOM_AUTHORS.values(), ids=ATOM_AUTHORS.keys())
def test_atom_flavour_gives_the_same_paper_as_rss(authors: str) -> None:
    rss_item = parse_feed(MULTI.read_bytes(), location=MULTI.name).items[3]

    atom = parse_feed(_atom_feed(authors), location="atom.xml")

    assert atom.skipped == []
    assert len(atom.items) == 1
    assert atom.items[0].paper == rss_item.paper
    assert atom.items[0].paper.announced_at == ANNOUNCED_AT
    assert atom.items[0].paper.announced_at.tzinfo is UTC
    assert atom.items[0].announce_type == "replace"
    assert atom.announced_on == date(2026, 9, 24)


def test_empty_channel_is_a_feed_without_items() -> None:
    # What arXiv serves on a day without announcements: the recorded channel with its items removed.
    raw = re.sub(rb"<item>.*?</item>\s*", b"", MULTI.read_bytes(), flags=re.DOTALL)
    assert b"<channel>" in raw
    assert b"<item>" not in raw

    feed = parse_feed(raw, location="weekend.xml")

    assert feed.items == []
    assert feed.skipped == []
    assert feed.announced_on == date(2026, 9, 24)


def test_channel_without_dates_has_no_announcement_day() -> None:
    raw = MULTI.read_bytes()
    raw = _edit(raw, "<lastBuildDate>Thu, 24 Sep 2026 08:58:05 +0000</lastBuildDate>", "")
    raw = _edit(raw, "<pubDate>Thu, 24 Sep 2026 00:00:00 -0400</pubDate>\n    <skipDays>", "<skipDays>")

    feed = parse_feed(raw, location="feed.xml")

    assert feed.announced_on is None
    assert len(feed.items) == 4


def test_channel_dates_too_large_to_read_give_no_announcement_day_not_an_error() -> None:
    huge = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"  # overflows the date parser
    raw = MULTI.read_bytes()
    raw = _edit(
        raw,
        "<lastBuildDate>Thu, 24 Sep 2026 08:58:05 +0000</lastBuildDate>",
        f"<lastBuildDate>{huge}</lastBuildDate>",
    )
    raw = _edit(
        raw,
        "<pubDate>Thu, 24 Sep 2026 00:00:00 -0400</pubDate>\n    <skipDays>",
        f"<pubDate>{huge}</pubDate><skipDays>",
    )

    feed = parse_feed(raw, location="feed.xml")

    assert feed.announced_on is None
    assert len(feed.items) == 4


def test_malformed_items_are_skipped_with_their_position_and_reason() -> None:
    raw = MULTI.read_bytes()
    raw = _edit(
        raw, "<title>The Drift Contract: Spectral Updates for Depth-Robust Local Learning</title>", ""
    )
    raw = _edit(raw, '<guid isPermaLink="false">oai:arXiv.org:2609.26820v1</guid>', "")
    raw = _edit(raw, "<link>https://arxiv.org/abs/2609.26820</link>", "")
    raw = _edit(raw, "arXiv:2609.26820v1 Announce Type: new", "Announce Type: new")
    raw = _edit(
        raw,
        "Outlier Detection for Multi-Network Data</title>",
        "Outlier Detection for Multi-Network Data</title>\n<pubDate>yesterday</pubDate>",
    )

    feed = parse_feed(raw, location="feed.xml")

    assert [(s.location, s.reason) for s in feed.skipped] == [
        ("feed.xml item 1", "title is missing"),
        ("feed.xml item 2", "no arXiv id in the guid, the description or the link"),
        ("feed.xml item 3", "pubDate: unknown date format 'yesterday'"),
    ]
    assert [item.paper.id for item in feed.items] == ["2009.13987"]


def test_item_without_an_abstract_is_skipped_with_pydantics_reason() -> None:
    raw = re.sub(
        rb"(<description>arXiv:2009\.13987v3 Announce Type: replace) \nAbstract: [^<]*",
        rb"\1 \nAbstract: ",
        MULTI.read_bytes(),
    )

    feed = parse_feed(raw, location="feed.xml")

    assert [(s.location, s.reason) for s in feed.skipped] == [
        ("feed.xml item 4", "abstract: String should have at least 1 character")
    ]


def test_announce_type_falls_back_to_the_description() -> None:
    raw = _edit(
        MULTI.read_bytes(),
        "<arxiv:announce_type>cross</arxiv:announce_type>",
        "",
    )

    feed = parse_feed(raw, location="feed.xml")

    assert feed.items[2].announce_type == "cross"


def test_truncated_xml_names_the_source_location_and_position() -> None:
    raw = MULTI.read_bytes()
    cut = raw.index(b"<title>Outlier") + 12
    truncated = raw[:cut]
    line = truncated.count(b"\n") + 1
    # The error is just past the last character: an editor counts columns from 1.
    column = len(truncated.rsplit(b"\n", 1)[1]) + 1

    with pytest.raises(SourceError) as caught:
        parse_feed(truncated, location="feed.xml")

    assert str(caught.value) == (
        f"arxiv-rss: feed.xml is not well-formed XML (line {line}, column {column}): no element found"
    )
    assert (line, column) == (43, 19)


def test_a_document_that_is_not_a_feed_is_an_error() -> None:
    with pytest.raises(
        SourceError, match=r"^arxiv-rss: page\.html is not an RSS or Atom feed \(root element 'html'\)"
    ):
        parse_feed(b"<html><body>Service unavailable</body></html>", location="page.html")
