"""A paper page counts a view once per visitor per paper per day, never for crawlers, prefetches or
HEAD, and the table that remembers visitors holds a daily hash, not an address."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.models import PaperView, PaperViewVisitor
from papertide.web import view_counting
from papertide.web.app import create_app
from tests.factories import make_paper

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
OTHER_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ADDRESS = "203.0.113.7"


@pytest.fixture
def paper_id(session: Session) -> str:
    paper = make_paper(session)
    session.commit()
    return paper.id


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None), client=(ADDRESS, 50000)) as test_client:
        yield test_client


def views(session: Session, paper_id: str) -> int:
    session.expire_all()
    counted = session.scalars(select(PaperView.views).where(PaperView.paper_id == paper_id)).all()
    return sum(counted)


def test_the_same_visitor_twice_is_one_view(client: TestClient, session: Session, paper_id: str) -> None:
    for _ in range(3):
        assert client.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER}).status_code == 200

    assert views(session, paper_id) == 1


def test_two_visitors_are_two_views(client: TestClient, session: Session, paper_id: str) -> None:
    client.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER})
    client.get(f"/papers/{paper_id}", headers={"User-Agent": OTHER_BROWSER})

    assert views(session, paper_id) == 2


def test_another_address_is_another_visitor(database: str, session: Session, paper_id: str) -> None:
    for address in ("203.0.113.7", "198.51.100.9"):
        with TestClient(create_app(encoder_provider=lambda: None), client=(address, 50000)) as other:
            other.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER})

    assert views(session, paper_id) == 2


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (compatible; SemrushCrawler)",
        "Some-Spider/3.0",
        "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0 Safari/537.36 (link preview)",
        "",
    ],
)
def test_crawlers_and_previewers_count_no_view(
    client: TestClient, session: Session, paper_id: str, agent: str
) -> None:
    response = client.get(f"/papers/{paper_id}", headers={"User-Agent": agent})

    assert response.status_code == 200
    assert views(session, paper_id) == 0


@pytest.mark.parametrize(
    ("header", "value"),
    [("Sec-Purpose", "prefetch"), ("Sec-Purpose", "prefetch;prerender"), ("Purpose", "prefetch"),
     ("X-Moz", "prefetch"), ("X-Purpose", "preview")],
)  # fmt: skip
def test_a_prefetch_counts_no_view(
    client: TestClient, session: Session, paper_id: str, header: str, value: str
) -> None:
    response = client.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER, header: value})

    assert response.status_code == 200
    assert views(session, paper_id) == 0


def test_head_answers_200_and_counts_no_view(client: TestClient, session: Session, paper_id: str) -> None:
    response = client.head(f"/papers/{paper_id}", headers={"User-Agent": BROWSER})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert views(session, paper_id) == 0
    assert client.head("/papers/no-such-paper", headers={"User-Agent": BROWSER}).status_code == 404


def test_the_next_day_counts_again_and_old_visitors_are_forgotten(
    client: TestClient, session: Session, paper_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = date(2026, 11, 27)
    for day in (first, first + timedelta(days=1), first + timedelta(days=3)):
        monkeypatch.setattr(view_counting, "today", lambda day=day: day)
        client.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER})
        client.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER})

    counted = session.execute(select(PaperView.day, PaperView.views).order_by(PaperView.day)).all()
    assert [tuple(row) for row in counted] == [
        (first, 1),
        (first + timedelta(days=1), 1),
        (first + timedelta(days=3), 1),
    ]
    kept = session.scalars(select(PaperViewVisitor.day)).all()
    assert first not in kept  # older than the days kept: deleted when a later visitor came
    hashes = session.scalars(select(PaperViewVisitor.visitor)).all()
    assert len(set(hashes)) == len(hashes)  # the key changes daily: the same reader is not linkable


def test_a_digest_click_counts_once_too(client: TestClient, session: Session, paper_id: str) -> None:
    for _ in range(2):
        client.get(f"/papers/{paper_id}?via=digest", headers={"User-Agent": BROWSER})

    session.expire_all()
    row = session.scalars(select(PaperView).where(PaperView.paper_id == paper_id)).one()
    assert (row.views, row.clicks) == (1, 1)


def test_the_table_holds_no_address_nor_user_agent(
    client: TestClient, session: Session, paper_id: str
) -> None:
    client.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER})

    rows = session.execute(select(PaperViewVisitor)).scalars().all()
    assert len(rows) == 1
    stored = repr([(row.day, row.paper_id, row.visitor) for row in rows]).encode()
    assert rows[0].visitor is not None
    assert len(rows[0].visitor) == view_counting.VISITOR_BYTES
    for secret in (ADDRESS, "203.0.113", BROWSER[:20]):
        assert secret.encode() not in stored
        assert secret.encode() not in rows[0].visitor


def test_behind_a_trusted_proxy_the_forwarded_client_is_the_visitor(
    database: str, session: Session, paper_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from papertide.config import get_settings

    monkeypatch.setenv("PAPERTIDE_TRUSTED_PROXIES", "10.0.0.0/8")
    get_settings.cache_clear()
    try:
        with TestClient(create_app(encoder_provider=lambda: None), client=("10.0.0.2", 50000)) as proxy:
            for reader in ("203.0.113.7", "198.51.100.9", "203.0.113.7"):
                proxy.get(f"/papers/{paper_id}", headers={"User-Agent": BROWSER, "X-Forwarded-For": reader})
    finally:
        get_settings.cache_clear()

    assert views(session, paper_id) == 2
