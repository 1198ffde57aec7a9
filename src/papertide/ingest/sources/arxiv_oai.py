"""arXiv OAI-PMH (`oaipmh.arxiv.org/oai`): ListRecords pages in the `arXiv` or `arXivRaw` format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

from papertide.ingest.sources.arxiv_xml import (
    is_name,
    join_name,
    local_name,
    namespace,
    parse_xml,
    text_of,
)
from papertide.ingest.sources.base import (
    ParseResult,
    SourceError,
    parse_datetime,
    parse_each,
    parse_rfc822,
    split_names,
)
from papertide.papers.ids import split_arxiv_id
from papertide.papers.schemas import PaperIn

NAME = "arxiv-oai"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
# Affiliations ride along in parentheses, possibly nested: "A. One ((1) MIT, (2) CERN)".
_INNERMOST_PARENS = re.compile(r"\([^()]*\)")


@dataclass
class OaiPage:
    result: ParseResult
    resumption_token: str | None  # None or "" means the list is complete
    complete_list_size: int | None
    cursor: int | None


def parse_list_records(raw: bytes, *, location: str) -> OaiPage:
    """One ListRecords (or GetRecord) response: its papers, skipped records and resumption token."""
    root = parse_xml(raw, source=NAME, location=location)
    if root.tag != f"{OAI}OAI-PMH":
        raise SourceError(f"{NAME}: {location} is not an OAI-PMH response (root <{local_name(root)}>)")
    if _no_records(root, location):
        return OaiPage(ParseResult(), resumption_token=None, complete_list_size=None, cursor=None)
    records = parse_each(
        root.iter(f"{OAI}record"),
        parse_record,
        location_of=lambda number, record: _record_location(location, number, record),
    )
    return _page(ParseResult.collect(records), root.find(f"{OAI}ListRecords/{OAI}resumptionToken"))


def _no_records(root: Element, location: str) -> bool:
    """True for `noRecordsMatch` (an empty harvest, not a failure); any other OAI error raises."""
    errors = [(error.get("code", "unknown"), text_of(error)) for error in root.findall(f"{OAI}error")]
    failures = [f"{code}: {text}" for code, text in errors if code != "noRecordsMatch"]
    if failures:
        raise SourceError(f"{NAME}: {location}: the repository answered {'; '.join(failures)}")
    return bool(errors)


def _record_location(location: str, number: int, record: Element) -> str:
    """`page.xml record 2 (oai:arXiv.org:1507.07790)`, or without the identifier when there is none."""
    identifier = text_of(record.find(f"{OAI}header/{OAI}identifier"))
    return f"{location} record {number} ({identifier})" if identifier else f"{location} record {number}"


def parse_record(record: Element) -> PaperIn:
    """One OAI <record>; ValueError (or pydantic's ValidationError) when it is deleted or cannot be a paper."""
    header = record.find(f"{OAI}header")
    if header is not None and header.get("status") == "deleted":
        raise ValueError("deleted")
    metadata = record.find(f"{OAI}metadata")
    if metadata is None or len(metadata) == 0:
        raise ValueError("metadata is missing")
    body = metadata[0]
    match local_name(body):
        case "arXiv":
            return _from_arxiv(body)
        case "arXivRaw":
            return _from_arxiv_raw(body)
        case other:
            raise ValueError(f"metadata format <{other}> is not supported; expected arXiv or arXivRaw")


def _from_arxiv(body: Element) -> PaperIn:
    ns = namespace(body)
    return _paper(
        body,
        authors=[_author_name(author, ns) for author in body.iterfind(f"{ns}authors/{ns}author")],
        published_at=parse_datetime(text_of(body.find(f"{ns}created")), where="created"),
        updated_at=parse_datetime(text_of(body.find(f"{ns}updated")), where="updated"),
        # The arXiv format carries no version history; arXivRaw does.
        version=None,
    )


def _author_name(author: Element, ns: str) -> str:
    parts = (author.find(f"{ns}{part}") for part in ("forenames", "keyname", "suffix"))
    return join_name(*(text_of(part) for part in parts))


def _from_arxiv_raw(body: Element) -> PaperIn:
    ns = namespace(body)
    dates = [
        parse_rfc822(text_of(version.find(f"{ns}date")), where=f"version {version.get('version')} date")
        for version in body.iterfind(f"{ns}version")
    ]
    return _paper(
        body,
        authors=split_authors(text_of(body.find(f"{ns}authors"))),
        published_at=dates[0] if dates else None,
        # Like the arXiv format's <updated>, set only once the paper has been revised.
        updated_at=dates[-1] if len(dates) > 1 else None,
        version=len(dates) or None,
    )


def _paper(
    body: Element,
    *,
    authors: list[str],
    published_at: datetime | None,
    updated_at: datetime | None,
    version: int | None,
) -> PaperIn:
    ns = namespace(body)
    paper_id = _arxiv_id(text_of(body.find(f"{ns}id")))
    return PaperIn(
        id=paper_id,
        version=version,
        title=text_of(body.find(f"{ns}title")),
        abstract=text_of(body.find(f"{ns}abstract")),
        authors=[name for name in authors if is_name(name)],
        categories=text_of(body.find(f"{ns}categories")).split(),
        published_at=published_at,
        updated_at=updated_at,
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
    )


def _arxiv_id(raw: str) -> str:
    if not raw:
        raise ValueError("id is missing")
    parsed = split_arxiv_id(raw)
    if parsed is None:
        raise ValueError(f"id {raw!r} is not an arXiv identifier")
    return parsed[0]


def split_authors(text: str) -> list[str]:
    """`A. One (MIT), B. Two, and C. Three` -> [`A. One`, `B. Two`, `C. Three`]."""
    previous = None
    while previous != text:
        previous, text = text, _INNERMOST_PARENS.sub(" ", text)
    return split_names(text)


def _page(result: ParseResult, token: Element | None) -> OaiPage:
    if token is None:
        return OaiPage(result, resumption_token=None, complete_list_size=None, cursor=None)
    return OaiPage(
        result,
        # An empty token (possibly with attributes) marks the last page of a list.
        resumption_token=(token.text or "").strip() or None,
        complete_list_size=_count(token.get("completeListSize")),
        cursor=_count(token.get("cursor")),
    )


def _count(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None
