"""What a hostile client or a real deployment tries against the feeds, the page cache, the sitemaps
and view counting, each as a request that client would send (found by a review of issue 11)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.models import JobRun, JobStatus, PaperView
from papertide.papers.repository import VISITORS_PER_ADDRESS
from papertide.web import caching
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.factories import make_paper

ADDRESS = "203.0.113.7"
SITEMAP = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture
def scored(database: str, session: Session) -> None:
    """A few papers and one score run (so the page cache and its validators are on)."""
    for n in range(5):
        make_paper(session, title=f"Paper {n}")
    make_paper(session, id="2601.99999", title="Old", published_at=datetime(999, 5, 1, tzinfo=UTC))
    session.commit()
    jobs.score()


@pytest.fixture
def client(scored: None) -> Iterator[TestClient]:
    app = create_app(encoder_provider=lambda: None)
    with TestClient(app, client=(ADDRESS, 50000), raise_server_exceptions=False) as test_client:
        yield test_client


# --- HEAD ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/feeds/trending.atom", "/api/v1/trending", "/sitemap.xml", "/robots.txt", "/", "/topics"],
)
def test_a_feed_reader_or_link_checker_asking_head_gets_the_headers_not_a_405(
    client: TestClient, path: str
) -> None:
    """HEAD (which CORS preflights advertise, and feed readers, CDNs and link checkers send) gets GET's headers."""
    get = client.get(path)
    head = client.head(path)

    assert get.status_code == 200
    assert head.status_code == 200, f"HEAD {path} is {head.status_code}"
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.content == b""


# --- the page cache --------------------------------------------------------------------------------


def test_junk_query_strings_do_not_push_the_trending_page_out_of_the_cache(
    client: TestClient, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_ENTRIES junk query strings (ignored parameters, each its own key) push out junk, not the front page."""
    monkeypatch.setattr(caching, "RUN_CHECK_SECONDS", 3600.0)  # a hit runs no SQL at all
    assert client.get("/").status_code == 200  # rendered and kept
    misses = []
    for n in range(caching.MAX_ENTRIES + 50):
        assert client.get(f"/api/v1/topics?junk={n}").status_code == 200
        if n % 50 == 0:  # the readers keep asking for the front page meanwhile
            statements.clear()
            assert client.get("/").status_code == 200
            if statements:
                misses.append(n)

    assert misses == [], f"the front page was rendered again after {misses} junk requests"


def test_if_none_match_star_on_a_missing_topic_is_a_404_not_a_304(client: TestClient) -> None:
    """A topic that does not exist is a 404 whatever validator the client sends."""
    for path in ("/topics/99999", "/feeds/topics/99999.atom"):
        assert client.get(path).status_code == 404
        assert client.get(path, headers={"If-None-Match": "*"}).status_code == 404, path
        future = {"If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"}
        assert client.get(path, headers=future).status_code == 404, path


def test_a_score_run_that_finishes_last_is_the_one_pages_are_validated_by(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that started first but finished last (it waited for the scoring lock) wrote last: pages
    are validated by it, not by the earlier run's ETag and cached copy."""
    monkeypatch.setattr(caching, "RUN_CHECK_SECONDS", 0.0)  # look at job_run on every request
    before = client.get("/").headers["etag"]
    newest = session.scalars(select(JobRun).order_by(JobRun.started_at.desc())).first()
    assert newest is not None
    # It started just before the run the page shows, and its rescore committed after it.
    now = datetime.now(UTC)
    session.add(
        JobRun(
            job="score",
            status=JobStatus.OK,
            params={},
            counts={},
            started_at=newest.started_at - timedelta(seconds=1),
            finished_at=now + timedelta(seconds=1),
        )
    )
    session.commit()

    after = client.get("/").headers["etag"]

    assert after != before, "the run whose scores are in the database now is not the validator"


# --- feeds -----------------------------------------------------------------------------------------


def test_a_paper_dated_before_year_1000_gets_an_rfc3339_date_in_the_feed(client: TestClient) -> None:
    """Year 999 is written `0999-05-01T...`: RFC 3339 needs four digits (strftime's %Y does not pad)."""
    response = client.get("/feeds/trending.atom?period=month")
    assert response.status_code == 200
    root = ET.fromstring(response.content)

    dates = [node.text or "" for node in root.iter() if node.tag.endswith(("}updated", "}published"))]
    assert dates
    bad = [text for text in dates if not RFC3339.match(text)]
    assert bad == [], f"not RFC 3339 date-times: {bad}"


# --- sitemaps --------------------------------------------------------------------------------------


def test_each_child_sitemap_lists_only_urls_under_its_own_directory(client: TestClient) -> None:
    """sitemaps.org: a sitemap may list only URLs under its own directory, so child sitemaps sit at the root."""
    index = ET.fromstring(client.get("/sitemap.xml").content)
    children = [loc.text or "" for loc in index.findall("s:sitemap/s:loc", SITEMAP)]
    assert children
    outside = []
    for child in children:
        parts = urlsplit(child)
        directory = f"{parts.scheme}://{parts.netloc}{parts.path[: parts.path.rindex('/') + 1]}"
        listed = ET.fromstring(client.get(parts.path + (f"?{parts.query}" if parts.query else "")).content)
        outside += [
            (child, url)
            for url in (loc.text or "" for loc in listed.findall("s:url/s:loc", SITEMAP))
            if not url.startswith(directory)
        ]

    assert outside == [], f"{len(outside)} URLs outside their sitemap's directory, e.g. {outside[:2]}"


# --- view counting ---------------------------------------------------------------------------------


def test_one_address_rotating_its_user_agent_cannot_count_a_view_per_request(
    client: TestClient, session: Session
) -> None:
    """One script inventing a User-Agent per request counts at most VISITORS_PER_ADDRESS views."""
    paper_id = "2601.99999"
    for n in range(30):
        agent = f"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/{100 + n}.0"
        assert client.get(f"/papers/{paper_id}", headers={"User-Agent": agent}).status_code == 200

    session.expire_all()
    counted = sum(session.scalars(select(PaperView.views).where(PaperView.paper_id == paper_id)))
    assert counted <= VISITORS_PER_ADDRESS, f"one address counted {counted} views of one paper in one day"


def test_a_person_on_a_cubot_phone_counts_a_view(client: TestClient, session: Session) -> None:
    """The phone maker CUBOT's name ends in "bot": its owners are readers, not crawlers."""
    paper_id = "2601.99999"
    agent = (
        "Mozilla/5.0 (Linux; Android 11; CUBOT NOTE 20 PRO) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36"
    )
    assert client.get(f"/papers/{paper_id}", headers={"User-Agent": agent}).status_code == 200

    session.expire_all()
    counted = sum(session.scalars(select(PaperView.views).where(PaperView.paper_id == paper_id)))
    assert counted == 1


@pytest.mark.parametrize(
    ("dest", "mode"), [("image", "no-cors"), ("iframe", "navigate"), ("empty", "no-cors")]
)
def test_a_paper_embedded_in_another_site_counts_no_view(
    client: TestClient, session: Session, dest: str, mode: str
) -> None:
    """A hidden <img>/<iframe>/fetch() on another site sends a real GET with a browser agent from each
    of its visitors: Sec-Fetch-Dest says it is not a page someone opened, so it counts no view."""
    paper_id = "2601.99999"
    headers = {
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
        "Sec-Fetch-Dest": dest,
        "Sec-Fetch-Mode": mode,
        "Sec-Fetch-Site": "cross-site",
    }
    assert client.get(f"/papers/{paper_id}", headers=headers).status_code == 200

    session.expire_all()
    counted = sum(session.scalars(select(PaperView.views).where(PaperView.paper_id == paper_id)))
    assert counted == 0
