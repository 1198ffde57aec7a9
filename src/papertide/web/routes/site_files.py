"""/robots.txt and the sitemaps (https://www.sitemaps.org/protocol.html), for search engines.

A sitemap holds at most 50,000 URLs, so /sitemap.xml is an index: one sitemap of the site's own
pages (trending, topics, search) and one per 50,000 papers. A paper sitemap is a keyset page, named
by the id it starts from, so no request scans past the papers it lists (no OFFSET over a million).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.web import headers, paper_views
from papertide.web.deps import SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)
SITEMAP_MAX_URLS = 50_000  # the protocol's limit per sitemap file
XML = "application/xml"
NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
# The pages every visitor sees; the paper pages come in their own sitemaps.
SITE_PAGES = ("/", "/?period=week", "/?period=month", "/topics", "/search", "/subscribe")
# Links from mails (tokens), the local outbox and the machine-facing URLs: nothing for an index.
PRIVATE_PREFIXES = (
    *headers.NO_STORE_PREFIXES,
    "/search/like",
    "/api/",
    "/metrics",
    "/healthz",
)


@router.get("/robots.txt", response_class=PlainTextResponse)
def robots(settings: SettingsDep) -> PlainTextResponse:
    lines = ["User-agent: *", "Allow: /", *(f"Disallow: {prefix}" for prefix in PRIVATE_PREFIXES)]
    lines += ["", f"Sitemap: {_absolute(settings.base_url, '/sitemap.xml')}", ""]
    return PlainTextResponse("\n".join(lines))


@router.get("/sitemap.xml")
def sitemap_index(session: SessionDep, settings: SettingsDep) -> Response:
    """The site's pages, then one sitemap per 50,000 papers."""
    base = settings.base_url
    paths = ["/sitemap-pages.xml"]
    for start in paper_repository.sitemap_starts(session, size=SITEMAP_MAX_URLS):
        paths.append("/sitemap-papers.xml?" + urlencode({"from": start}))
    entries = "".join(f"<sitemap><loc>{escape(_absolute(base, path))}</loc></sitemap>" for path in paths)
    return _xml(f'<sitemapindex xmlns="{NAMESPACE}">{entries}</sitemapindex>')


@router.get("/sitemap-pages.xml")
def pages_sitemap(session: SessionDep, settings: SettingsDep) -> Response:
    topics = [f"/topics/{topic.id}" for topic in ranking_repository.topics_by_momentum(session)]
    return _urlset((_absolute(settings.base_url, path), None) for path in (*SITE_PAGES, *topics))


@router.get("/sitemap-papers.xml")
def papers_sitemap(
    session: SessionDep,
    settings: SettingsDep,
    start: Annotated[str | None, Query(alias="from", max_length=300)] = None,
) -> Response:
    """Up to 50,000 paper pages from the id `from` on, in id order, each with when it last changed."""
    rows = paper_repository.sitemap_page(session, start=start, size=SITEMAP_MAX_URLS)
    return _urlset((paper_views.paper_url(paper_id, base_url=settings.base_url), at) for paper_id, at in rows)


def _absolute(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _urlset(urls: Iterable[tuple[str, datetime | None]]) -> Response:
    entries = "".join(
        f"<url><loc>{escape(url)}</loc>{f'<lastmod>{at.date().isoformat()}</lastmod>' if at else ''}</url>"
        for url, at in urls
    )
    return _xml(f'<urlset xmlns="{NAMESPACE}">{entries}</urlset>')


def _xml(body: str) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, media_type=XML)
