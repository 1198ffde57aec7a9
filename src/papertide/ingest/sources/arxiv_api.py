"""arXiv API (`export.arxiv.org/api/query`): one Atom feed page of search or id_list results."""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from papertide.ingest.sources.arxiv_xml import collapse, is_name, local_name, parse_xml, text_of
from papertide.ingest.sources.base import ParseResult, SourceError, parse_datetime, parse_each
from papertide.papers.ids import split_arxiv_id
from papertide.papers.schemas import PaperIn

NAME = "arxiv-api"
ATOM = "{http://www.w3.org/2005/Atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
ARXIV = "{http://arxiv.org/schemas/atom}"
# Errors come back as a feed with one entry whose id points here; recorded as https since 2026.
_ERROR_ID = re.compile(r"^https?://arxiv\.org/api/errors")


@dataclass
class ApiPage:
    result: ParseResult
    total_results: int
    start_index: int
    items_per_page: int


def parse_feed(raw: bytes, *, location: str) -> ApiPage:
    """One query response: its papers, skipped entries and the opensearch paging numbers."""
    root = parse_xml(raw, source=NAME, location=location)
    if root.tag != f"{ATOM}feed":
        raise SourceError(f"{NAME}: {location} is not an Atom feed (root <{local_name(root)}>)")
    entries = root.findall(f"{ATOM}entry")
    _raise_for_error(entries, location)
    records = parse_each(
        entries, parse_entry, location_of=lambda number, entry: _entry_location(location, number, entry)
    )
    return ApiPage(
        ParseResult.collect(records),
        total_results=_opensearch(root, "totalResults", location),
        start_index=_opensearch(root, "startIndex", location),
        items_per_page=_opensearch(root, "itemsPerPage", location),
    )


def _raise_for_error(entries: list[Element], location: str) -> None:
    for entry in entries:
        if _ERROR_ID.match(text_of(entry.find(f"{ATOM}id"))):
            message = text_of(entry.find(f"{ATOM}summary")) or "no details given"
            raise SourceError(f"{NAME}: {location}: arXiv reported an error: {message}")


def _opensearch(root: Element, name: str, location: str) -> int:
    # Both the current feed (prefix declared on <feed>) and the 2016 one (declared on each element)
    # use the same namespace URI, so one lookup serves both.
    value = text_of(root.find(f"{OPENSEARCH}{name}"))
    if not value.isdigit():
        raise SourceError(f"{NAME}: {location} has no usable opensearch:{name} (got {value!r})")
    return int(value)


def _entry_location(location: str, number: int, entry: Element) -> str:
    """`feed entry 1 (http://arxiv.org/abs/quant-ph/0201082v1)`, or without the id when there is none."""
    raw_id = text_of(entry.find(f"{ATOM}id"))
    return f"{location} entry {number} ({raw_id})" if raw_id else f"{location} entry {number}"


def parse_entry(entry: Element) -> PaperIn:
    """One Atom <entry>; ValueError (or pydantic's ValidationError) when it cannot be a paper."""
    paper_id, version = _arxiv_id(text_of(entry.find(f"{ATOM}id")))
    return PaperIn(
        id=paper_id,
        version=version,
        title=text_of(entry.find(f"{ATOM}title")),
        abstract=text_of(entry.find(f"{ATOM}summary")),
        authors=[name for name in _authors(entry) if is_name(name)],
        categories=_categories(entry),
        published_at=parse_datetime(text_of(entry.find(f"{ATOM}published")), where="published"),
        updated_at=parse_datetime(text_of(entry.find(f"{ATOM}updated")), where="updated"),
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        # The unversioned https link, as every source writes it, so the same paper reads the same.
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
    )


def _arxiv_id(raw: str) -> tuple[str, int | None]:
    if not raw:
        raise ValueError("id is missing")
    parsed = split_arxiv_id(raw)
    if parsed is None:
        raise ValueError(f"id {raw!r} is not an arXiv abstract URL")
    return parsed


def _authors(entry: Element) -> list[str]:
    return [text_of(author.find(f"{ATOM}name")) for author in entry.iterfind(f"{ATOM}author")]


def _categories(entry: Element) -> list[str]:
    """All category terms, the primary one first, each once."""
    primary = entry.find(f"{ARXIV}primary_category")
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [category.get("term", "") for category in entry.iterfind(f"{ATOM}category")]
    return list(dict.fromkeys(collapse(term) for term in terms if collapse(term)))
