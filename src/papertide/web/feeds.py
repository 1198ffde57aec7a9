"""Atom feeds (RFC 4287) of the site's paper lists: what an entry says of a paper, the feed around
the entries, and the signed token of a profile's private feed.

Everything a feed shows comes from sources anyone can edit (titles, abstracts, code links), so
every string is cut to the characters XML 1.0 allows (an escape cannot make a control character
legal: a parser rejects the whole feed) and the template escapes the rest (autoescape is on for
`.xml`); links pass `safe_url`, so no `javascript:` URL reaches a reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeSerializer

from papertide.config import Settings
from papertide.models import InterestProfile, Paper, Subscriber
from papertide.search.schemas import SearchQuery
from papertide.subscribers import preferences
from papertide.templating import safe_url
from papertide.web import search_views
from papertide.web.deps import templates

ATOM_TYPE = "application/atom+xml; charset=utf-8"
FEED_SIZE = 30  # entries in the trending feed: the trending page's first page
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # `updated` of a feed with nothing in it: RFC 4287 needs one
# Everything outside XML 1.0's Char production (https://www.w3.org/TR/xml/#charsets).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PROFILE_SALT = "papertide-feed-profile"


def xml_text(value: str | None) -> str:
    """`value` without the characters XML 1.0 forbids (the escaping is the template's)."""
    return _NOT_XML.sub("", value or "")


def rfc3339(moment: datetime) -> str:
    """`2026-08-21T00:00:00Z`; a time stored without a zone is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # strftime's %Y does not pad a year before 1000 to four digits, which RFC 3339 requires.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


@dataclass(frozen=True)
class Link:
    rel: str
    href: str
    type: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    authors: list[str]
    updated: datetime
    published: datetime | None
    summary: str
    links: list[Link]
    categories: list[str]


@dataclass(frozen=True)
class Feed:
    id: str
    title: str
    subtitle: str
    updated: datetime
    self_url: str
    alternate_url: str
    entries: list[Entry]


def paper_url(base_url: str, paper_id: str) -> str:
    """The paper's page: also its entries' id, the same in every feed and on every fetch."""
    return f"{base_url}/papers/{quote(paper_id, safe='/')}"


def _from_arxiv(paper: Paper) -> bool:
    """Only a paper whose abstract page is on arxiv.org gets arXiv and PDF links (others' ids are not arXiv's)."""
    host = urlsplit(safe_url(paper.abs_url) or "").hostname or ""
    return host == "arxiv.org" or host.endswith(".arxiv.org")


def links(paper: Paper, *, base_url: str) -> list[Link]:
    """The paper page (alternate); arXiv, PDF, code and project page (related), each only when http(s)."""
    found = [Link("alternate", paper_url(base_url, paper.id), "text/html")]
    abs_url, pdf_url = safe_url(paper.abs_url), safe_url(paper.pdf_url)
    if _from_arxiv(paper) and abs_url:
        found.append(Link("related", abs_url, "text/html", "arXiv"))
        if pdf_url:
            found.append(Link("related", pdf_url, "application/pdf", "PDF"))
    elif abs_url:
        found.append(Link("related", abs_url, "text/html", "Source"))
    for url, title in ((paper.code_url, "Code"), (paper.project_url, "Project page")):
        if checked := safe_url(url):
            found.append(Link("related", checked, "text/html", title))
    return [Link(link.rel, xml_text(link.href), link.type, link.title) for link in found]


def entry(paper: Paper, *, base_url: str) -> Entry:
    """One paper as an Atom entry; `updated` is the source's last version, else when it was published or listed."""
    updated = paper.updated_at or paper.published_at or paper.announced_at or paper.first_seen_at or EPOCH
    return Entry(
        id=xml_text(paper_url(base_url, paper.id)),
        title=xml_text(paper.title),
        authors=[xml_text(name) for name in paper.authors or []],
        updated=updated,
        published=paper.published_at,
        summary=xml_text(paper.abstract),
        links=links(paper, base_url=base_url),
        categories=[xml_text(c) for c in paper.categories or []],
    )


def feed(
    *,
    title: str,
    subtitle: str,
    self_path: str,
    alternate_path: str,
    papers: Iterable[Paper],
    base_url: str,
    updated: Sequence[datetime | None] = (),
) -> Feed:
    """A feed of `papers` in their order; its id is its own canonical URL. `updated`: other times
    the list depends on (a score run); the newest of those and of the entries is the feed's."""
    entries = [entry(paper, base_url=base_url) for paper in papers]
    times = [_aware(t) for t in (*updated, *(e.updated for e in entries)) if t is not None]
    self_url = xml_text(f"{base_url}{self_path}")
    return Feed(
        id=self_url,
        title=xml_text(title),
        subtitle=xml_text(subtitle),
        updated=max(times, default=EPOCH),
        self_url=self_url,
        alternate_url=xml_text(f"{base_url}{alternate_path}"),
        entries=entries,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def atom_response(request: Request, feed: Feed, *, headers: dict[str, str] | None = None) -> Response:
    """The feed as `application/atom+xml` (templates/feeds/atom.xml)."""
    return templates.TemplateResponse(
        request, "feeds/atom.xml", {"feed": feed, "rfc3339": rfc3339}, media_type=ATOM_TYPE, headers=headers
    )


def search_feed_path(query: SearchQuery) -> str:
    """The feed of a search: the search page's own canonical query string on the feed's path."""
    page_url = search_views.link(query)
    return "/feeds/search.atom?" + urlsplit(page_url).query


# A profile's feed is private: its URL carries a token only this site can sign (SECRET_KEY, a
# salt of its own). It never expires, as a feed reader keeps one URL for years, and it needs no
# stored row: deleting the profile or unsubscribing is what ends it (routes/feeds.py answers 404).
# It signs whose subscription it was made in (preferences.reader_key, as a digest's links do), so
# an unsubscribe ends it for good: it does not come back when the address subscribes again.
def _profile_serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.resolved_secret_key(), salt=_PROFILE_SALT)


@dataclass(frozen=True)
class FeedKey:
    """What a profile feed's token says: the profile, and the subscription it was made in (None for
    a token from before feeds named it, which signed the profile's id alone)."""

    profile_id: int
    reader_key: str | None


def profile_token(settings: Settings, profile_id: int, *, reader_key: str) -> str:
    return _profile_serializer(settings).dumps({"p": profile_id, "r": reader_key})


def feed_key_from(settings: Settings, token: str) -> FeedKey | None:
    """What a feed token was signed for; None when this site did not sign it."""
    try:
        payload = _profile_serializer(settings).loads(token)
    except BadSignature:
        return None
    if type(payload) is int:
        return FeedKey(payload, None)
    if isinstance(payload, dict) and type(payload.get("p")) is int and isinstance(payload.get("r"), str):
        return FeedKey(payload["p"], payload["r"])
    return None


def profile_feed_urls(
    settings: Settings, subscriber: Subscriber, profiles: Iterable[InterestProfile]
) -> dict[int, str]:
    """Each profile's absolute feed URL, to paste into a feed reader, for the reader's present
    subscription."""
    key = preferences.reader_key_of(subscriber)
    return {
        p.id: f"{settings.base_url}/feeds/profiles/{profile_token(settings, p.id, reader_key=key)}.atom"
        for p in profiles
    }
