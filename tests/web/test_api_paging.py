"""Lists in the JSON API page by `p` and `limit`, with a `Link` header to the next and previous
pages; /api/v1/trending lists one day, ISO week or month like Hugging Face's /api/daily_papers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from papertide.web import paging
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.factories import FakeEncoder, add_signal, make_paper
from tests.helpers import SPEECH_PAPERS, RecordingProvider, embedded_search_corpus

TRENDING = "/api/v1/trending"
FRIDAY = datetime(2026, 8, 21, 9, tzinfo=UTC)  # in ISO week 2026-W34 (Monday 17 to Sunday 23 August)


def links(response: Any) -> dict[str, str]:
    """rel -> URL, from the Link header (RFC 8288)."""
    found = {}
    for part in filter(None, response.headers.get("link", "").split(",")):
        url, rel = part.split(";")
        found[rel.strip().removeprefix('rel="').removesuffix('"')] = url.strip().strip("<>")
    return found


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query)


@pytest.fixture
def scored(database: str, session: Session) -> Iterator[TestClient]:
    """Seven papers, scored."""
    for n in range(7):
        make_paper(session, title=f"Scored paper {n}")
    session.commit()
    jobs.score()
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        yield client


def test_trending_pages_by_p_with_links_to_the_next_and_previous(scored: TestClient) -> None:
    first = scored.get(TRENDING, params={"period": "month", "limit": 3})
    middle = scored.get(TRENDING, params={"period": "month", "limit": 3, "p": 2})
    last = scored.get(TRENDING, params={"period": "month", "limit": 3, "p": 3})

    assert links(first).keys() == {"next"}
    assert links(first)["next"] == "http://testserver/api/v1/trending?period=month&limit=3&p=2"
    assert links(middle).keys() == {"next", "prev"}
    assert query(links(middle)["prev"]) == [("period", "month"), ("limit", "3"), ("p", "1")]
    assert links(last).keys() == {"prev"}
    assert [len(r.json()["results"]) for r in (first, middle, last)] == [3, 3, 1]
    assert [r.json()["has_next"] for r in (first, middle, last)] == [True, True, False]
    assert [r.json()["page"] for r in (first, middle, last)] == [1, 2, 3]
    again = scored.get(TRENDING, params={"period": "month", "limit": 3})  # from the page cache
    assert links(again) == links(first)


def test_following_next_links_lists_every_paper_once(scored: TestClient) -> None:
    ids: list[str] = []
    url: str | None = f"{TRENDING}?period=month&limit=2"
    while url:
        response = scored.get(url)
        ids += [row["id"] for row in response.json()["results"]]
        url = links(response).get("next")

    assert len(ids) == len(set(ids)) == 7
    everything = scored.get(TRENDING, params={"period": "month", "limit": 100}).json()["results"]
    assert ids == [row["id"] for row in everything]


def test_a_single_page_sends_no_link(scored: TestClient) -> None:
    response = scored.get(TRENDING, params={"period": "month", "limit": 100})

    assert response.status_code == 200
    assert "link" not in response.headers


@pytest.fixture
def search_client(database: str, session: Session) -> Iterator[TestClient]:
    provider = RecordingProvider(FakeEncoder())
    embedded_search_corpus(session, provider.encoder)
    with TestClient(create_app(encoder_provider=provider)) as client:
        yield client


def test_search_pages_by_p_and_still_reads_page(search_client: TestClient) -> None:
    asked: dict[str, Any] = {"q": "speech", "mode": "keyword", "limit": 10}
    by_p = search_client.get("/api/v1/search", params={**asked, "p": 2})
    by_page = search_client.get("/api/v1/search", params={**asked, "page": 2})
    both = search_client.get("/api/v1/search", params={**asked, "page": 3, "p": 2})

    assert by_p.json() == by_page.json() == both.json()
    assert by_p.json()["page"] == 2
    assert query(links(by_page)["next"]) == [
        ("q", "speech"),
        ("mode", "keyword"),
        ("limit", "10"),
        ("p", "3"),
    ]
    assert query(links(both)["prev"]) == [("q", "speech"), ("mode", "keyword"), ("limit", "10"), ("p", "1")]


def test_search_links_walk_every_result(search_client: TestClient) -> None:
    ids: list[str] = []
    url: str | None = "/api/v1/search?q=speech&mode=keyword&category=cs.CL&category=cs.SD&limit=7"
    while url:
        response = search_client.get(url)
        assert response.status_code == 200, response.text
        ids += [row["id"] for row in response.json()["results"]]
        url = links(response).get("next")
        if url:
            assert [v for k, v in query(url) if k == "category"] == ["cs.CL", "cs.SD"]

    assert len(ids) == len(set(ids))
    assert 0 < len(ids) <= SPEECH_PAPERS


@pytest.fixture
def listed(database: str, session: Session) -> Iterator[TestClient]:
    """Papers listed over two weeks of August 2026 and one of September, with upvotes and stars."""
    seen = FRIDAY + timedelta(days=20)

    def paper(id: str, listed_at: datetime, upvotes: float | None = None, stars: float | None = None) -> None:
        made = make_paper(session, id=id, announced_at=listed_at)
        if upvotes is not None:
            add_signal(session, made, "upvotes", upvotes - 5, seen - timedelta(days=2))
            add_signal(session, made, "upvotes", upvotes, seen)  # the newest count is the one read
        if stars is not None:
            add_signal(session, made, "github_stars", stars, seen)

    paper("friday-quiet", FRIDAY, upvotes=None)
    paper("friday-popular", FRIDAY + timedelta(hours=3), upvotes=40)
    paper("friday-starred", FRIDAY - timedelta(hours=8), upvotes=10, stars=400)  # 10 + 0.05 * 400 = 30
    paper("saturday", FRIDAY + timedelta(days=1), upvotes=99)
    paper("monday-midnight", datetime(2026, 8, 17, tzinfo=UTC), upvotes=1)
    paper("sunday-before", datetime(2026, 8, 16, 23, 59, tzinfo=UTC), upvotes=500)
    paper("september", datetime(2026, 9, 1, tzinfo=UTC), upvotes=7)
    session.commit()
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        yield client


def ids(client: TestClient, **params: Any) -> list[str]:
    response = client.get(TRENDING, params=params)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["results"]]


def test_date_lists_that_days_papers_by_engagement(listed: TestClient) -> None:
    body = listed.get(TRENDING, params={"date": "2026-08-21"}).json()

    assert [row["id"] for row in body["results"]] == ["friday-popular", "friday-starred", "friday-quiet"]
    assert [row["score"] for row in body["results"]] == [40.0, 30.0, 0.0]
    assert body["results"][1]["components"] == {"upvotes": 10.0, "github_stars": 400.0}
    assert (body["period"], body["listed"], body["as_of"]) == ("day", "2026-08-21", None)


def test_week_is_the_iso_week_and_month_the_calendar_month(listed: TestClient) -> None:
    week = ids(listed, week="2026-W34")
    month = ids(listed, month="2026-08")

    assert week == ["saturday", "friday-popular", "friday-starred", "monday-midnight", "friday-quiet"]
    assert month == ["sunday-before", *week]
    assert ids(listed, month="2026-09") == ["september"]
    assert ids(listed, date="2026-08-22") == ["saturday"]
    assert ids(listed, date="2026-08-20") == []


def test_a_span_pages_with_links_too(listed: TestClient) -> None:
    first = listed.get(TRENDING, params={"month": "2026-08", "limit": 4})
    second = listed.get(links(first)["next"])

    assert query(links(first)["next"]) == [("month", "2026-08"), ("limit", "4"), ("p", "2")]
    assert [row["id"] for row in first.json()["results"] + second.json()["results"]] == ids(
        listed, month="2026-08"
    )
    assert "next" not in links(second)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"date": "2026-02-30"}, "date"),
        ({"date": "2026-13-01"}, "date"),
        ({"date": "yesterday"}, "date"),
        # Read by pydantic's lax dates as seconds since 1970 or a timestamp: 1 January 1970 and 2026-08-21.
        ({"date": "0"}, "date"),
        ({"date": "1787270400"}, "date"),
        ({"date": "2026-08-21T00:00:00"}, "date"),
        ({"week": "2026-W54"}, "week"),
        ({"week": "2025-W53"}, "week"),  # 2025 has 52 ISO weeks (2026 has 53)
        ({"week": "2026-W00"}, "week"),
        ({"week": "2026-34"}, "week"),
        ({"month": "2026-13"}, "month"),
        ({"month": "2026-00"}, "month"),
        ({"month": "2026-8"}, "month"),
        ({"date": "2026-08-21", "week": "2026-W34"}, "week"),
        ({"month": "2026-08", "date": "2026-08-21"}, "month"),
        ({"p": 0}, "p"),
        ({"p": 301}, "p"),
    ],
)
def test_a_value_that_names_no_span_is_a_422_naming_it(
    listed: TestClient, params: dict[str, Any], named: str
) -> None:
    response = listed.get(TRENDING, params=params)

    assert response.status_code == 422, response.text
    assert any(problem.startswith(f"{named}:") for problem in response.json()["detail"]), response.json()


def test_the_last_days_python_can_count_still_answer(listed: TestClient) -> None:
    for params in (
        {"date": "9999-12-31"},
        {"week": "9999-W52"},
        {"month": "9999-12"},
        {"date": "0001-01-01"},
    ):
        response = listed.get(TRENDING, params=params)
        assert response.status_code == 200, (params, response.text)
        assert response.json()["results"] == []


def test_page_url_replaces_the_page_and_keeps_everything_else() -> None:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "scheme": "http",
        "server": ("10.0.0.7", 8000),
        "path": "/api/v1/search",
        "query_string": b"q=a%26b&page=4&category=cs.CL&category=cs.LG&p=2",
        "headers": [(b"host", b"10.0.0.7:8000")],
    }
    url = paging.page_url(Request(scope), 3, base_url="https://papers.example/")

    assert url == "https://papers.example/api/v1/search?q=a%26b&p=3&category=cs.CL&category=cs.LG"


def test_links_name_the_site_not_the_host_header_a_client_sent(scored: TestClient) -> None:
    """The trending answer is kept and served to everyone: a forged Host must not reach its links."""
    forged = scored.get(TRENDING, params={"period": "month", "limit": 3}, headers={"Host": "evil.example"})
    honest = scored.get(TRENDING, params={"period": "month", "limit": 3})

    for response in (forged, honest):
        assert response.status_code == 200
        assert links(response)["next"] == "http://testserver/api/v1/trending?period=month&limit=3&p=2"


def test_a_span_is_a_range_on_the_listed_index(tx_session: Session) -> None:
    """At a million papers a month is a range scan of ix_paper_listed_at, never a scan of every paper."""
    from sqlalchemy import event, text

    from papertide.ranking import repository as ranking_repository
    from papertide.ranking.trending import TrendParams

    make_paper(tx_session, announced_at=FRIDAY)
    statements: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    connection = tx_session.connection()
    event.listen(connection, "before_cursor_execute", remember)
    try:
        ranking_repository.listed_between(
            tx_session, start=FRIDAY, end=FRIDAY + timedelta(days=1), params=TrendParams(), limit=5
        )
    finally:
        event.remove(connection, "before_cursor_execute", remember)
    tx_session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table would be read whole anyway
    statement, parameters = statements[-1]
    plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()

    assert any("ix_paper_listed_at" in line for line in plan), "\n".join(plan)
