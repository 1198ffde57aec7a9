"""arXiv's daily announcement feeds: `rss.arxiv.org/rss/<cats>` (RSS 2.0) and `rss.arxiv.org/atom/<cats>` (Atom).

Both flavours carry the same fields (https://info.arxiv.org/help/rss_specifications.html); each is read
into `_Fields` and then built into a PaperIn by one path, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from xml.etree.ElementTree import Element

from papertide.ingest.sources.arxiv_xml import parse_xml
from papertide.ingest.sources.base import (
    Skipped,
    SourceError,
    parse_datetime,
    parse_each,
    parse_rfc822,
    split_names,
    split_skipped,
)
from papertide.papers.dates import email_date
from papertide.papers.ids import split_arxiv_id
from papertide.papers.schemas import PaperIn

NAME = "arxiv-rss"

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_OAI_PREFIX = "oai:arXiv.org:"
# The description (Atom: summary) opens with `arXiv:2609.26811v1 Announce Type: new \nAbstract: ...`.
_DESCRIPTION_HEAD = re.compile(r"^\s*arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)\s*")
_ABSTRACT_MARKER = "Abstract:"


@dataclass
class RssItem:
    paper: PaperIn
    announce_type: str  # "new" | "cross" | "replace" | "replace-cross", as the feed says


@dataclass
class RssFeed:
    items: list[RssItem]
    skipped: list[Skipped]
    announced_on: date | None  # the channel's date; None when the feed gives none


@dataclass
class _Fields:
    """One item's raw values, whichever flavour they came from."""

    guid: str  # RSS guid or Atom id: `oai:arXiv.org:2609.26811v1`
    link: str
    title: str
    description: str
    authors: list[str]
    categories: list[str]
    announced_at: datetime | None
    announce_type: str


def parse_feed(raw: bytes, *, location: str) -> RssFeed:
    """Parse one RSS or Atom announcement feed; a bad item is skipped, an unreadable document raises SourceError."""
    root = parse_xml(raw, source=NAME, location=location)
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise SourceError(f"{NAME}: {location} is an RSS document without a <channel>")
        dates = [_text(channel, "pubDate"), _text(channel, "lastBuildDate")]
        return _read(channel.findall("item"), _rss_fields, location, _channel_day(dates, email_date))
    if root.tag == f"{_ATOM}feed":
        dates = [_text(root, f"{_ATOM}updated")]
        return _read(
            root.findall(f"{_ATOM}entry"), _atom_fields, location, _channel_day(dates, datetime.fromisoformat)
        )
    raise SourceError(f"{NAME}: {location} is not an RSS or Atom feed (root element {root.tag!r})")


def _read(
    entries: list[Element],
    read: Callable[[Element], _Fields],
    location: str,
    announced_on: date | None,
) -> RssFeed:
    items, skipped = split_skipped(
        parse_each(
            entries,
            lambda entry: _item(read(entry)),
            location_of=lambda number, _: f"{location} item {number}",
        )
    )
    return RssFeed(items=items, skipped=skipped, announced_on=announced_on)


def _rss_fields(item: Element) -> _Fields:
    published = _text(item, "pubDate")
    return _Fields(
        guid=_text(item, "guid"),
        link=_text(item, "link"),
        title=_text(item, "title"),
        description=_text(item, "description"),
        authors=split_names(_text(item, f"{_DC}creator")),
        categories=[text for element in item.findall("category") if (text := (element.text or "").strip())],
        announced_at=parse_rfc822(published, where="pubDate") if published else None,
        announce_type=_text(item, f"{_ARXIV}announce_type"),
    )


def _atom_fields(entry: Element) -> _Fields:
    published = _text(entry, f"{_ATOM}published") or _text(entry, f"{_ATOM}updated")
    return _Fields(
        guid=_text(entry, f"{_ATOM}id"),
        link=_atom_link(entry),
        title=_text(entry, f"{_ATOM}title"),
        description=_text(entry, f"{_ATOM}summary"),
        authors=_atom_authors(entry),
        categories=[
            term for element in entry.findall(f"{_ATOM}category") if (term := element.get("term", "").strip())
        ],
        announced_at=_atom_date(published, where="published") if published else None,
        announce_type=_text(entry, f"{_ARXIV}announce_type"),
    )


def _atom_authors(entry: Element) -> list[str]:
    # arXiv's Atom feed has carried the names both as one dc:creator list and as <author><name> elements;
    # a name element is split too, in case it holds the whole comma-separated list.
    creator = _text(entry, f"{_DC}creator")
    if creator:
        return split_names(creator)
    names = (_text(author, f"{_ATOM}name") for author in entry.findall(f"{_ATOM}author"))
    return [name for text in names for name in split_names(text)]


def _atom_link(entry: Element) -> str:
    for link in entry.findall(f"{_ATOM}link"):
        if link.get("rel", "alternate") == "alternate":
            return link.get("href", "").strip()
    return ""


def _item(fields: _Fields) -> RssItem:
    if not fields.title:
        raise ValueError("title is missing")
    head = _DESCRIPTION_HEAD.match(fields.description)
    paper_id, version = _arxiv_id([fields.guid, head["id"] if head else "", fields.link])
    paper = PaperIn(
        id=paper_id,
        version=version,
        title=fields.title,
        abstract=_abstract(fields.description, head),
        authors=fields.authors,
        categories=fields.categories,
        announced_at=fields.announced_at,
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
    )
    # The element is authoritative; the description's `Announce Type:` is the fallback for feeds without it.
    return RssItem(paper=paper, announce_type=fields.announce_type or (head["type"] if head else ""))


def _arxiv_id(candidates: list[str]) -> tuple[str, int | None]:
    # The guid (`oai:arXiv.org:2609.26811v1`) and the description carry the version; the link does not.
    for candidate in candidates:
        parsed = split_arxiv_id(candidate.removeprefix(_OAI_PREFIX))
        if parsed:
            return parsed
    raise ValueError("no arXiv id in the guid, the description or the link")


def _abstract(description: str, head: re.Match[str] | None) -> str:
    _, marker, abstract = description.partition(_ABSTRACT_MARKER)
    if marker:
        return abstract
    return description[head.end() :] if head else description


def _channel_day(values: list[str], parse: Callable[[str], datetime]) -> date | None:
    # The day as the feed writes it (`Thu, 24 Sep 2026 00:00:00 -0400` is arXiv's 24 September), not
    # converted to UTC. A channel date we cannot read is not worth losing the day's items over.
    for value in filter(None, values):
        try:
            return parse(value).date()
        except ValueError:
            continue
    return None


def _atom_date(value: str, *, where: str) -> datetime | None:
    parsed = parse_datetime(value, where=where)
    return parsed.astimezone(UTC) if parsed else None


def _text(element: Element, path: str) -> str:
    return (element.findtext(path) or "").strip()
