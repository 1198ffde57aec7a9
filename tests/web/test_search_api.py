"""/api/v1/search as a client sees it: filters, sorts, pages with an honest count, how each paper
matched, errors that name the parameter, and the Server-Timing header."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.web.app import create_app
from tests.factories import FakeEncoder
from tests.helpers import (
    SPEECH_PAPERS,
    RecordingProvider,
    embedded_search_corpus,
)

SEARCH = "/api/v1/search"
TIMING = re.compile(r"^[A-Za-z0-9_-]+;dur=\d+(\.\d+)?$")  # one Server-Timing entry, as we write them


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider(FakeEncoder())


@pytest.fixture
def client(database: str, session: Session, provider: RecordingProvider) -> Iterator[TestClient]:
    """The search corpus (tests/helpers.py), embedded by the fake encoder and keyword-indexed."""
    embedded_search_corpus(session, provider.encoder)
    with TestClient(create_app(encoder_provider=provider)) as test_client:
        yield test_client


def search(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get(SEARCH, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def day(timestamp: str) -> date:
    return datetime.fromisoformat(timestamp).date()


def test_a_category_filter_returns_only_papers_in_it(client: TestClient) -> None:
    one = search(client, q="speech", mode="keyword", category="cs.CL", limit=100)
    either = search(client, q="speech", mode="keyword", category=["cs.CL", "cs.LG"], limit=100)

    assert {"cs.CL"} == {c for r in one["results"] for c in r["categories"]}
    assert one["total"] == len(one["results"]) == SPEECH_PAPERS // 3
    assert all({"cs.CL", "cs.LG"} & set(r["categories"]) for r in either["results"])
    assert either["total"] == 2 * SPEECH_PAPERS // 3


def test_has_code_returns_only_papers_that_link_their_code(client: TestClient) -> None:
    found = search(client, q="speech", mode="keyword", has_code=True, limit=100)

    assert found["results"]
    assert all(r["code_url"] for r in found["results"])
    assert found["total"] == len(range(0, SPEECH_PAPERS, 4))


def test_a_date_range_by_published_and_by_listed(client: TestClient) -> None:
    window = {"from": "2026-01-15", "to": "2026-01-20"}
    published = search(client, q="speech", mode="keyword", limit=100, **window)
    listed = search(client, q="speech", mode="keyword", limit=100, date_field="listed", **window)

    assert sorted(day(r["published_at"]) for r in published["results"]) == [
        date(2026, 1, d) for d in range(15, 21)
    ], "the range includes both its days"
    assert sorted(day(r["announced_at"]) for r in listed["results"]) == [
        date(2026, 1, d) for d in range(15, 21)
    ]
    assert not {r["id"] for r in published["results"]} & {r["id"] for r in listed["results"]}


@pytest.mark.parametrize("written", ["0", "1768435200", "2026-01-15T00:00:00", "15/01/2026"])
def test_a_day_not_written_yyyy_mm_dd_is_a_422_naming_the_field(client: TestClient, written: str) -> None:
    """A number is no day (pydantic alone read 0 as 1 January 1970): the client is told, not
    answered for a day it did not mean."""
    response = client.get("/api/v1/search", params={"q": "speech", "from": written})
    page = client.get("/search", params={"q": "speech", "from": written})

    assert response.status_code == 422
    assert "a day is written YYYY-MM-DD" in response.text
    assert page.status_code == 422
    assert "YYYY-MM-DD" in page.text


def test_sort_newest_orders_by_published_date(client: TestClient) -> None:
    for mode in ("keyword", "hybrid", "semantic"):
        found = search(client, q="speech synthesis", mode=mode, sort="newest", limit=10)
        published = [r["published_at"] for r in found["results"]]
        assert len(published) == 10, mode
        assert published == sorted(published, reverse=True), mode
    keyword = search(client, q="speech synthesis", mode="keyword", sort="newest", limit=1)
    assert day(keyword["results"][0]["published_at"]) == date(2026, 2, 14), "the newest speech paper"


def test_paging_walks_every_result_once_and_the_count_matches(client: TestClient) -> None:
    pages: list[dict[str, Any]] = []
    while not pages or pages[-1]["has_next"]:
        pages.append(search(client, q="speech", mode="keyword", limit=10, page=len(pages) + 1))
    ids = [r["id"] for p in pages for r in p["results"]]

    assert [p["page"] for p in pages] == [1, 2, 3, 4, 5]
    assert len(ids) == len(set(ids)), "no paper on two pages"
    assert len(ids) == pages[0]["total"] == SPEECH_PAPERS
    assert pages[0]["total_is_estimate"] is False, "keyword counts are exact"
    assert {r["id"] for r in pages[1]["results"]}.isdisjoint({r["id"] for r in pages[0]["results"]})


def test_each_result_says_how_it_matched(client: TestClient) -> None:
    hybrid = search(client, q="speech synthesis", mode="hybrid", limit=100)
    keyword = search(client, q="speech synthesis", mode="keyword", limit=5)
    matched = {r["id"]: r["matched"] for r in hybrid["results"]}

    assert matched["2601.70000"] == "both", "its words and its embedding match"
    assert matched.get("2601.79999") == "meaning", "no word in common: only the embeddings bring it"
    assert {r["matched"] for r in keyword["results"]} == {"words"}
    assert hybrid["total_is_estimate"] is True, "semantic matches have no edge"


def test_an_author_alone_is_a_search_and_never_loads_the_model(
    client: TestClient, provider: RecordingProvider
) -> None:
    found = search(client, author="Ada Lovelace", mode="hybrid", limit=100)

    assert found["query"] == ""
    assert found["total"] == len(found["results"]) == len(range(0, SPEECH_PAPERS, 5))
    assert all("Ada Lovelace" in r["authors"] for r in found["results"])
    assert provider.calls == 0


def test_keyword_search_with_filters_never_loads_the_model(
    client: TestClient, provider: RecordingProvider
) -> None:
    search(client, q="speech", mode="keyword", category="cs.CL", has_code=True, sort="newest", page=2)

    assert provider.calls == 0
    search(client, q="speech", mode="semantic")
    assert provider.calls == 1, "semantic mode does ask for it"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "speech", "from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"q": "speech", "from": "2026-13-01"}, "from"),
        ({"q": "speech", "to": "yesterday"}, "to"),
        ({"q": "speech", "category": ["cs.CL", "CS CL"]}, "category"),
        ({"q": "speech", "category": [f"cs.X{c}" for c in "ABCDEFGHIJK"]}, "category"),
        ({"q": "speech", "category": "a" * 1000}, "category"),  # an archive too long for a filter
        ({"q": "speech", "sort": "random"}, "sort"),
        ({"q": "speech", "date_field": "updated"}, "date_field"),
        ({"q": "speech", "page": 0}, "page"),
        ({"q": "speech", "page": 51}, "page"),
        ({"q": "speech", "page": "9" * 40}, "page"),
        ({"q": "speech", "has_code": "maybe"}, "has_code"),
        ({"author": "x" * 201}, "author"),
    ],
)
def test_a_bad_parameter_is_a_422_that_names_it(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    response = client.get(SEARCH, params=params)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(line.startswith(f"{field}:") for line in detail), detail


def test_hostile_text_comes_back_as_data(client: TestClient) -> None:
    author = '<script>alert("x")</script>\r\nSet-Cookie: a=b'
    found = client.get(SEARCH, params={"author": author, "q": "speech <b>"})

    assert found.status_code == 200
    assert found.headers["content-type"] == "application/json"
    assert "set-cookie" not in found.headers
    assert found.json()["query"] == "speech <b>"


def test_server_timing_names_each_step_and_the_total(client: TestClient) -> None:
    for mode, steps in (("keyword", {"keyword"}), ("hybrid", {"embed", "vector", "keyword", "fuse"})):
        header = client.get(SEARCH, params={"q": "speech", "mode": mode}).headers["server-timing"]
        entries = [entry.strip() for entry in header.split(",")]
        names = {entry.split(";")[0] for entry in entries}
        assert all(TIMING.match(entry) for entry in entries), header
        assert steps | {"load", "total"} <= names, header


def test_no_keyword_index_is_a_503_that_points_to_semantic_search(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise KeywordIndexUnavailable("no index yet")

    monkeypatch.setattr(search_service, "search", unavailable)
    response = client.get(SEARCH, params={"q": "speech", "mode": "keyword"})
    declared = client.get("/openapi.json").json()["paths"][SEARCH]["get"]["responses"]["503"]

    assert response.status_code == 503
    assert "keyword index is being built" in response.json()["detail"]
    assert "Semantic search still works" in response.json()["detail"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
