"""Trending, topic pages and their API answers: validators from the last score run, 304s, shared-cache
headers only for anonymous readers, a per-process cache that serves without the database, and no
COMMIT for a request that only reads (web/caching.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert
from sqlalchemy.exc import DBAPIError

from papertide import db
from papertide.config import get_settings
from papertide.models import PaperView
from papertide.signing import LinkPurpose, sign
from papertide.templating import environment
from papertide.web import caching
from papertide.web.app import create_app
from papertide.web.reader_cookie import COOKIE_NAME
from papertide.worker import jobs
from tests.helpers import wait_until

PAGES = ["/", "/?period=week", "/topics"]
API = ["/api/v1/trending", "/api/v1/topics"]


@pytest.fixture
def client(sample_database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


@pytest.fixture
def commits() -> Iterator[list[int]]:
    """One entry per COMMIT the test's engine sends from here on."""
    seen: list[int] = []

    def record(_connection: object) -> None:
        seen.append(1)

    engine = db.get_engine()
    event.listen(engine, "commit", record)
    yield seen
    event.remove(engine, "commit", record)


def topic_path(client: TestClient) -> str:
    """A topic page's path; call it before the test's first request (it rescores: the sample is
    scored before it is embedded, and this run makes its topics)."""
    jobs.score()
    found = re.search(r'href="(/topics/\d+)"', client.get("/topics").text)
    assert found, "the sample has topics"
    return found.group(1)


def reader_cookie() -> str:
    return sign(get_settings().resolved_secret_key(), LinkPurpose.READER, {"s": 1})


def test_anonymous_pages_and_api_answers_carry_validators_from_the_last_score_run(client: TestClient) -> None:
    for path in [*PAGES, topic_path(client), *API]:
        response = client.get(path)

        assert response.status_code == 200, path
        assert re.fullmatch(r'W/"\d+\.[0-9a-f]{16}"', response.headers["etag"]), path
        modified = parsedate_to_datetime(response.headers["last-modified"])
        assert modified <= datetime.now(UTC), path
        assert response.headers["cache-control"].startswith("public, max-age="), path
        assert "stale-while-revalidate=" in response.headers["cache-control"], path
        page = not path.startswith("/api/")
        assert (response.headers.get("vary") == "Cookie") is page, path


def test_a_current_etag_gets_a_304_with_no_body_and_a_stale_one_the_page(client: TestClient) -> None:
    for path in [*PAGES, *API]:
        first = client.get(path)
        again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
        listed = client.get(path, headers={"If-None-Match": f'"other", {first.headers["etag"]}'})
        stale = client.get(path, headers={"If-None-Match": 'W/"1.0000000000000000"'})

        assert again.status_code == 304, path
        assert again.content == b"", path
        assert again.headers["etag"] == first.headers["etag"], path
        assert listed.status_code == 304, path
        assert stale.status_code == 200, path
        assert stale.content == first.content, path


def test_if_modified_since_the_run_gets_a_304_and_an_older_date_the_page(client: TestClient) -> None:
    modified = client.get("/").headers["last-modified"]

    assert client.get("/", headers={"If-Modified-Since": modified}).status_code == 304
    older = client.get("/", headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert older.status_code == 200
    assert client.get("/", headers={"If-Modified-Since": "not a date"}).status_code == 200


@pytest.mark.parametrize(
    "since",
    [
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",  # the year overflows the parser's C long
        "Mon, 01 Jan 2026 00:00:00 +99999999999999999999",  # the offset overflows its C int
    ],
)
def test_an_if_modified_since_too_large_to_read_gets_the_page_not_a_500(
    client: TestClient, since: str
) -> None:
    for path in [*PAGES, *API]:
        page = client.get(path, headers={"If-Modified-Since": since})

        assert page.status_code == 200, path


def test_each_url_has_its_own_etag(client: TestClient) -> None:
    etags = {client.get(path).headers["etag"] for path in [*PAGES, *API]}

    assert len(etags) == len(PAGES) + len(API)


def test_a_new_score_run_changes_the_etag_and_the_old_one_gets_the_page(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caching, "RUN_CHECK_SECONDS", 0.0)  # look at job_run on every request
    before = {path: client.get(path) for path in ["/", "/api/v1/trending"]}

    jobs.score()

    for path, old in before.items():
        response = client.get(path, headers={"If-None-Match": old.headers["etag"]})
        assert response.status_code == 200, path
        assert response.headers["etag"] != old.headers["etag"], path
        assert parsedate_to_datetime(response.headers["last-modified"]) >= parsedate_to_datetime(
            old.headers["last-modified"]
        )
        assert client.get(path, headers={"If-None-Match": response.headers["etag"]}).status_code == 304


def test_a_web_process_serves_a_new_score_run_within_its_check_interval(client: TestClient) -> None:
    old = client.get("/").headers["etag"]

    jobs.score()  # as another process would: this app is told nothing

    wait_until(
        lambda: client.get("/").headers["etag"] != old,
        timeout=30,
        what="the page to show the new score run",
    )
    assert client.get("/", headers={"If-None-Match": old}).status_code == 200


def test_a_page_from_the_cache_is_the_page_rendered_fresh(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [*PAGES, topic_path(client), *API]
    cached = {path: (client.get(path), client.get(path)) for path in paths}
    monkeypatch.setenv("PAPERTIDE_PAGE_CACHE", "0")
    get_settings.cache_clear()
    with TestClient(create_app(encoder_provider=lambda: None)) as uncached:
        for path in paths:
            first, second = cached[path]
            fresh = uncached.get(path)
            assert second.content == first.content == fresh.content, path
            assert second.headers["etag"] == first.headers["etag"] == fresh.headers["etag"], path
            assert fresh.headers["content-type"] == first.headers["content-type"], path


def test_a_cached_page_or_a_304_runs_no_sql(
    client: TestClient, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caching, "RUN_CHECK_SECONDS", 3600.0)  # no run check falls in the test
    for path in [*PAGES, *API]:
        first = client.get(path)
        statements.clear()
        hit = client.get(path)
        not_modified = client.get(path, headers={"If-None-Match": first.headers["etag"]})

        assert (hit.status_code, not_modified.status_code) == (200, 304), path
        assert statements == [], path


def test_with_the_cache_off_every_request_renders_but_still_validates(
    sample_database: str, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_PAGE_CACHE", "0")
    get_settings.cache_clear()
    monkeypatch.setattr(caching, "RUN_CHECK_SECONDS", 3600.0)
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        first = client.get("/")
        statements.clear()
        second = client.get("/")
        rendered = len(statements)
        not_modified = client.get("/", headers={"If-None-Match": first.headers["etag"]})

    assert second.content == first.content
    assert rendered > 0, "the page was rendered again, from the database"
    assert not_modified.status_code == 304


def test_read_only_requests_never_commit(client: TestClient, commits: list[int]) -> None:
    for path in [*PAGES, topic_path(client), *API]:
        commits.clear()
        response = client.get(path, headers={"If-None-Match": 'W/"0.0"'})
        assert response.status_code == 200, path
        assert commits == [], path


def test_a_read_only_session_refuses_a_write(sample_database: str) -> None:
    row = {"paper_id": "2608.19880", "day": datetime.now(UTC).date(), "views": 1, "clicks": 0}
    with db.read_session() as session, pytest.raises(DBAPIError, match="read-only transaction"):
        session.execute(insert(PaperView).values(**row))


def test_a_reader_with_the_cookie_gets_a_private_page_no_shared_cache_may_keep(client: TestClient) -> None:
    client.cookies.set(COOKIE_NAME, reader_cookie())
    for path in [*PAGES, topic_path(client)]:
        response = client.get(path)

        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "private, no-cache", path
        assert "etag" not in response.headers, path
    paper = client.get("/papers/2608.19880")  # shows this reader's profile names on its vote buttons
    assert paper.headers["cache-control"] == "private, no-cache"
    assert paper.headers["vary"] == "Cookie"


def test_a_paper_page_without_the_cookie_tells_shared_caches_it_varies_by_cookie(client: TestClient) -> None:
    paper = client.get("/papers/2608.19880")

    assert paper.status_code == 200
    assert paper.headers["vary"] == "Cookie", "else a cache could give a reader's page to anyone"
    assert "private" not in paper.headers.get("cache-control", "")


def test_the_api_is_the_same_for_every_reader_so_it_stays_public(client: TestClient) -> None:
    client.cookies.set(COOKIE_NAME, reader_cookie())

    assert client.get("/api/v1/trending").headers["cache-control"].startswith("public")


def test_before_the_first_score_run_nothing_is_cached_or_validated(database: str) -> None:
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        response = client.get("/")

    assert response.status_code == 200
    assert "etag" not in response.headers
    assert "cache-control" not in response.headers


def test_a_missing_topic_is_a_404_that_is_not_cached(client: TestClient) -> None:
    for _ in range(2):
        response = client.get("/topics/99999")
        assert response.status_code == 404
        assert "etag" not in response.headers


def test_304s_and_cached_pages_are_counted_in_the_metrics(client: TestClient) -> None:
    etag = client.get("/").headers["etag"]
    client.get("/", headers={"If-None-Match": etag})

    metrics = client.get("/metrics").text

    assert re.search(r'papertide_http_requests_total\{method="GET",status="304"\} [1-9]', metrics)


def test_templates_are_read_once_not_checked_on_every_render() -> None:
    assert environment().auto_reload is False
