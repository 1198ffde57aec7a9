"""The search page as a reader sees it: filters and sort in the form, an honest count, a badge for
how each paper matched, page links that keep every field, and a sentence for each bad field."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.search import keyword_index
from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.web.app import create_app
from tests.factories import FakeEncoder
from tests.helpers import (
    SPEECH_PAPERS,
    RecordingProvider,
    embedded_search_corpus,
)


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider(FakeEncoder())


@pytest.fixture
def client(database: str, session: Session, provider: RecordingProvider) -> Iterator[TestClient]:
    """The search corpus (tests/helpers.py), embedded by the fake encoder and keyword-indexed."""
    embedded_search_corpus(session, provider.encoder)
    with TestClient(create_app(encoder_provider=provider), raise_server_exceptions=False) as test_client:
        yield test_client


def page(client: TestClient, **params: str) -> Response:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text
    return response


def numbers(response: Response) -> list[int]:
    """The study number of each paper listed, in page order ("Speech synthesis study 7" -> 7)."""
    return [
        int(n)
        for n in re.findall(r'<h3><a href="/papers/[^"]+">Speech synthesis study (\d+)</a>', response.text)
    ]


def count_line(response: Response) -> str:
    match = re.search(r'id="count">(.*?)</(?:h2|p)>', response.text, re.DOTALL)
    assert match, "the page says how many it found"
    return html.unescape(" ".join(match.group(1).split()))


def page_links(response: Response) -> list[tuple[str, str, bool]]:
    """(text, href, is the current page) for each link in the result pages' nav."""
    nav = re.search(r'<nav class="pages"[^>]*>(.*?)</nav>', response.text, re.DOTALL)
    assert nav, "the results have page links"
    return [
        (text.strip(), html.unescape(href), 'aria-current="page"' in attrs)
        for href, attrs, text in re.findall(r'<a href="([^"]+)"([^>]*)>([^<]+)</a>', nav.group(1))
    ]


def test_the_category_box_narrows_to_those_categories(client: TestClient) -> None:
    one = page(client, q="speech", mode="keyword", categories="cs.CL")
    two = page(client, q="speech", mode="keyword", categories="cs.CL, cs.LG")

    assert sorted(numbers(one)) == list(range(0, SPEECH_PAPERS, 3))
    assert count_line(one) == f"{SPEECH_PAPERS // 3} results for “speech”"
    assert set(numbers(two)) <= {n for n in range(SPEECH_PAPERS) if n % 3 != 1}
    assert count_line(two).startswith(f"{2 * SPEECH_PAPERS // 3} results")


def test_has_code_lists_only_papers_with_code(client: TestClient) -> None:
    found = page(client, q="speech", mode="keyword", has_code="1")

    assert sorted(numbers(found)) == list(range(0, SPEECH_PAPERS, 4))
    assert 'name="has_code" type="checkbox" value="1" checked' in found.text, "the box stays ticked"


def test_a_date_range_by_published_and_by_listed(client: TestClient) -> None:
    published = page(client, q="speech", mode="keyword", **{"from": "2026-01-15", "to": "2026-01-20"})
    listed = page(
        client, q="speech", mode="keyword", date_field="listed", **{"from": "2026-01-15", "to": "2026-01-20"}
    )

    assert sorted(numbers(published)) == list(range(14, 20)), "published on 15-20 January"
    assert sorted(numbers(listed)) == list(range(4, 10)), "listed 10 days after publication"
    assert 'value="2026-01-15"' in listed.text
    assert '<option value="listed" selected>' in listed.text


def test_sort_newest_lists_the_latest_published_first(client: TestClient) -> None:
    newest = page(client, q="speech synthesis", mode="keyword", sort="newest")

    assert numbers(newest) == list(range(SPEECH_PAPERS - 1, SPEECH_PAPERS - 21, -1))
    assert '<option value="newest" selected>' in newest.text


def test_pages_walk_every_result_once_and_the_links_keep_every_field(client: TestClient) -> None:
    fields = {"q": "speech", "mode": "keyword", "author": "", "sort": "relevance"}
    first = page(client, **fields)
    second = page(client, **fields, page="2")
    third = page(client, **fields, page="3")
    listed = numbers(first) + numbers(second) + numbers(third)

    assert count_line(first) == f"{SPEECH_PAPERS} results for “speech”"
    assert sorted(listed) == list(range(SPEECH_PAPERS)), "every result once, none twice"
    assert numbers(second) != numbers(first)
    links = page_links(second)
    assert [text for text, _, _ in links] == ["← Previous", "1", "2", "3", "Next →"]
    assert [text for text, _, current in links if current] == ["2"]
    assert "Next →" not in [text for text, _, _ in page_links(third)]


def test_page_links_keep_every_field(client: TestClient) -> None:
    filters = {
        "categories": "cs.CL eess.AS",
        "sort": "newest",
        "from": "2026-01-01",
        "date_field": "published",
    }
    second = page(client, q="speech", mode="keyword", **filters, page="2")
    links = {text: href for text, href, _ in page_links(second)}
    past_the_end = page(client, q="speech", mode="keyword", has_code="1", **filters, page="2")
    back = re.search(r'<a href="([^"]+)">Back to the first page</a>', past_the_end.text)

    assert links["← Previous"] == links["1"]
    assert parse_qs(urlsplit(links["← Previous"]).query) == {
        "q": ["speech"],
        "mode": ["keyword"],
        **{name: [value] for name, value in filters.items()},
    }
    assert parse_qs(urlsplit(links["2"]).query)["page"] == ["2"]
    assert "Next →" not in links, "30 results: page 2 is the last"
    assert back, "a page past the last result links back to the first"
    assert parse_qs(urlsplit(html.unescape(back.group(1))).query) == {
        "q": ["speech"],
        "mode": ["keyword"],
        "has_code": ["1"],
        **{name: [value] for name, value in filters.items()},
    }


def test_the_badge_says_how_each_paper_matched(client: TestClient) -> None:
    hybrid = page(client, q="speech synthesis", mode="hybrid")
    badges = re.findall(r'<span class="badge badge-(\w+)" title="([^"]+)">(\w+)</span>', hybrid.text)

    assert len(badges) == len(numbers(hybrid)) == 20, "one badge per paper"
    assert all(kind == text for kind, _, text in badges)
    assert badges[0][0] == "both"
    assert "by its words and by its meaning" in badges[0][1]
    assert count_line(hybrid).startswith("About "), "semantic matches make the count an estimate"
    keyword = page(client, q="speech synthesis", mode="keyword")
    assert set(re.findall(r'class="badge badge-(\w+)"', keyword.text)) == {"words"}


def test_nothing_found_says_so_and_how_to_loosen_it(client: TestClient) -> None:
    filtered = page(client, q="speech", mode="keyword", categories="math.AG")
    plain = page(client, q="zzzunknownword", mode="keyword")

    assert count_line(filtered).startswith("No results for “speech”")
    assert "Try removing a filter" in count_line(filtered)
    assert "Try fewer words" in count_line(plain)
    semantic = page(client, q="speech", mode="semantic", categories="math.AG")
    assert "semantic mode" not in count_line(semantic), "no hint to use the mode already in use"


def test_the_form_sent_empty_is_the_form_alone(client: TestClient) -> None:
    untouched = {"q": "", "mode": "hybrid", "author": "", "categories": "", "date_field": "published"}
    response = page(client, **untouched, **{"from": "", "to": "", "sort": "relevance"})

    assert 'role="alert"' not in response.text
    assert 'id="count"' not in response.text


def test_an_author_alone_lists_their_papers_without_the_model(
    client: TestClient, provider: RecordingProvider
) -> None:
    found = page(client, author="Ada Lovelace")
    keyword = page(client, q="speech", mode="keyword", categories="cs.CL", has_code="1", page="1")

    assert sorted(numbers(found)) == list(range(0, SPEECH_PAPERS, 5))
    assert count_line(found) == "9 results by Ada Lovelace"
    assert numbers(keyword)
    assert provider.calls == 0, "a search by author or by keyword loaded the embedding model"


@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        ({"q": "speech", "sort": "random"}, "Unknown sort: choose relevance, newest or trending."),
        ({"q": "speech", "from": "2026-02-30"}, "The “from” date is not a date"),
        ({"q": "speech", "to": "soon"}, "The “to” date is not a date"),
        (
            {"q": "speech", "from": "2026-02-01", "to": "2026-01-01"},
            "The “from” date is after the “to” date.",
        ),
        (
            {"q": "speech", "categories": "cs.CL <b>bold</b>"},
            "Categories: '<b>bold</b>' is not an arXiv category",
        ),
        ({"q": "speech", "categories": "a" * 1000}, "is not an arXiv category"),
        (
            {"q": "speech", "categories": " ".join(f"cs.X{c}" for c in "ABCDEFGHIJK")},
            "Give at most 10 categories.",
        ),
        ({"q": "speech", "page": "0"}, "The page must be a number from 1 to 50."),
        ({"q": "speech", "page": "51"}, "The page must be a number from 1 to 50."),
        ({"q": "speech", "page": "9" * 5000}, "The page must be a number from 1 to 50."),
        ({"q": "speech", "page": "two"}, "The page must be a number from 1 to 50."),
        ({"author": "x" * 201}, "The author is too long"),
        ({"q": "speech", "date_field": "updated"}, "Unknown date field"),
        ({"q": "speech", "has_code": "maybe"}, "“Has code” is either ticked or not"),
        ({"q": " ", "categories": "cs.CL", "sort": "newest"}, "Type some words to search for, or an author."),
        ({"q": "-speech"}, "Type a word to find: a -word only leaves papers out"),
        ({"q": "🎉 \\ ---", "mode": "semantic"}, "Type a word to find"),
    ],
)
def test_a_bad_field_gets_a_422_page_that_names_it(
    client: TestClient, params: dict[str, str], sentence: str
) -> None:
    response = client.get("/search", params=params)

    assert response.status_code == 422
    alert = re.search(r'role="alert">(.*?)</p>', response.text, re.DOTALL)
    assert alert, "the page says what was wrong"
    assert sentence in html.unescape(alert.group(1))
    assert "<b>bold</b>" not in response.text, "what was typed is escaped"


def test_html_and_crlf_in_the_fields_stay_text(client: TestClient) -> None:
    hostile = '"><script>alert(1)</script>'
    response = client.get(
        "/search", params={"q": f"speech {hostile}", "author": f"Ada{hostile}", "mode": "keyword"}
    )
    crlf = client.get("/search", params={"q": "speech\r\nSet-Cookie: a=b", "author": "Ada\r\nLovelace"})

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert crlf.status_code == 200
    assert "set-cookie" not in crlf.headers


def test_server_timing_on_the_page(client: TestClient) -> None:
    header = page(client, q="speech", mode="hybrid").headers["server-timing"]
    names = [entry.strip().split(";")[0] for entry in header.split(",")]

    assert {"embed", "keyword", "vector", "fuse", "load", "render"} <= set(names), header
    assert names[-1] == "total"


def test_no_keyword_index_is_a_503_page_that_offers_semantic_search(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise KeywordIndexUnavailable("no index yet")

    monkeypatch.setattr(search_service, "search", unavailable)
    response = client.get("/search", params={"q": "speech <b>", "mode": "keyword", "categories": "cs.CL"})

    assert response.status_code == 503
    assert "The keyword index is being built" in response.text
    assert "Semantic search still works" in response.text
    link = re.search(r'<a href="([^"]+)">Search by meaning instead</a>', response.text)
    assert link
    assert parse_qs(urlsplit(html.unescape(link.group(1))).query) == {
        "q": ["speech <b>"],
        "mode": ["semantic"],
        "categories": ["cs.CL"],
    }


def test_an_index_that_cannot_be_opened_is_a_503_not_a_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*args: object) -> None:
        raise KeywordIndexUnavailable("cannot open the keyword index")

    monkeypatch.setattr(keyword_index, "shared", unreadable)

    assert client.get("/search", params={"q": "speech"}).status_code == 503
    assert client.get("/api/v1/search", params={"q": "speech"}).status_code == 503


@pytest.mark.parametrize(
    "damage", ["meta", "segments"], ids=["unreadable meta.json", "missing segment files"]
)
def test_a_damaged_index_says_an_administrator_must_reindex_not_that_it_is_being_built(
    client: TestClient, damage: str
) -> None:
    path = keyword_index.index_path(get_settings())
    if damage == "meta":
        (path / "meta.json").write_text("{ not json")
    else:
        for part in path.glob("*.term"):
            part.unlink()
    keyword_index.forget_all()  # as a web process started after the damage

    page = client.get("/search", params={"q": "speech", "mode": "keyword"})
    api = client.get("/api/v1/search", params={"q": "speech", "mode": "keyword"})

    for response in (page, api):
        assert response.status_code == 503
        assert "The keyword index is damaged; an administrator must run `papertide reindex`" in html.unescape(
            response.text
        )
        assert "being built" not in response.text
