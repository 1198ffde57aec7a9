"""/robots.txt and the sitemaps: what a search engine reads to find the site's pages."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from papertide.web.app import create_app
from papertide.web.routes import site_files
from tests.factories import make_paper

NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


def parsed(client: TestClient, url: str) -> ET.Element:
    """A sitemap file fetched by the absolute URL another one names, parsed as XML."""
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("http", "testserver"), f"{url} is absolute, on the site"
    response = client.get(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def locations(root: ET.Element, tag: str) -> list[str]:
    return [loc.text or "" for loc in root.findall(f"s:{tag}/s:loc", NS)]


def test_robots_names_the_sitemap_and_keeps_crawlers_off_private_links(client: TestClient) -> None:
    robots = client.get("/robots.txt")

    assert robots.status_code == 200
    assert robots.headers["content-type"].startswith("text/plain")
    lines = robots.text.splitlines()
    assert "Sitemap: http://testserver/sitemap.xml" in lines
    for private in ("/dev/", "/manage/", "/confirm/", "/unsubscribe/", "/vote/", "/digest/", "/api/"):
        assert f"Disallow: {private}" in lines
    assert "Disallow: /" not in lines, "the site itself stays open"


def test_the_sitemap_index_leads_to_every_paper_in_pages_of_at_most_the_limit(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site_files, "SITEMAP_MAX_URLS", 2)  # the protocol's 50,000, made small
    ids = ["2601.00001", "2601.00002", "hep-th/9901001", "t-<odd>&'id\"", "2601.00003"]
    for paper_id in ids:
        make_paper(session, id=paper_id)
    session.commit()

    index = parsed(client, "http://testserver/sitemap.xml")
    assert index.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}sitemapindex"
    sitemaps = locations(index, "sitemap")
    assert sitemaps[0] == "http://testserver/sitemap-pages.xml"
    assert len(sitemaps) == 1 + 3, "five papers, two per sitemap"

    listed: list[str] = []
    for url in sitemaps[1:]:
        assert parse_qs(urlsplit(url).query)["from"], "each page starts at an id (a keyset page)"
        page = parsed(client, url)
        urls = page.findall("s:url", NS)
        assert 1 <= len(urls) <= 2
        assert all(url.find("s:lastmod", NS) is not None for url in urls)
        listed += locations(page, "url")
    assert sorted(listed) == sorted(
        [
            "http://testserver/papers/2601.00001",
            "http://testserver/papers/2601.00002",
            "http://testserver/papers/2601.00003",
            "http://testserver/papers/hep-th/9901001",
            "http://testserver/papers/t-%3Codd%3E%26%27id%22",
        ]
    )
    assert client.get("/papers/t-%3Codd%3E%26%27id%22").status_code == 200, (
        "the odd id's URL reaches its page"
    )


def test_the_pages_sitemap_lists_trending_topics_and_search(client: TestClient) -> None:
    pages = locations(parsed(client, "http://testserver/sitemap-pages.xml"), "url")

    for path in ("/", "/?period=week", "/?period=month", "/topics", "/search"):
        assert f"http://testserver{path}" in pages
