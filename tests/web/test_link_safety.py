"""Stored XSS through links (issue 8, item 5): a `javascript:` URL from Hugging Face never becomes a link.

Hugging Face's `githubRepo` and `projectPage` are set by any HF user and land in `code_url` and
`project_url`. Ingest keeps only http(s) URLs, and every template refuses other schemes too, for
rows stored before ingest checked them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from papertide.digests.render import RenderedPaper, RenderedSection, paper_parts
from papertide.models import Paper, Topic
from papertide.papers.schemas import PaperIn
from papertide.templating import environment, safe_url
from papertide.web.app import create_app
from papertide.worker import ingest as ingest_jobs
from papertide.worker import jobs
from tests.helpers import FIXTURES

PAPER = "2608.19880"  # EnvHarness: first on the day's trending list, with a code link
HOSTILE = "javascript:alert(document.cookie)"


def hostile_day(tmp_path: Path) -> Path:
    """The recorded 2026-08-21 Daily Papers response, its first paper's links set by an attacker."""
    items: list[dict[str, Any]] = json.loads((FIXTURES / "hf_daily_papers" / "2026-08-21.json").read_text())
    assert items[0]["paper"]["id"] == PAPER
    items[0]["paper"]["githubRepo"] = HOSTILE
    items[0]["paper"]["projectPage"] = " JaVaScRiPt:alert(1)"
    items[1]["paper"]["projectPage"] = "data:text/html,<script>alert(1)</script>"
    path = tmp_path / "2026-08-21.json"
    path.write_text(json.dumps(items))
    return path


@pytest.fixture
def client(database: str, tmp_path: Path) -> Iterator[TestClient]:
    ingest_jobs.ingest_hf_files([hostile_day(tmp_path)])
    jobs.score()
    jobs.index_keywords()  # what the worker does next: keyword search finds the paper
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


def test_ingest_drops_a_non_http_link_and_keeps_the_paper(client: TestClient, session: Session) -> None:
    paper = session.get(Paper, PAPER)

    assert paper is not None
    assert paper.title == "EnvHarness: Awakening Static Worlds for Agent Learning"
    assert (paper.code_url, paper.project_url) == (None, None)
    assert paper.abs_url == f"https://arxiv.org/abs/{PAPER}"
    page = client.get(f"/papers/{PAPER}").text
    assert f'href="https://arxiv.org/abs/{PAPER}"' in page
    assert "Code</a>" not in page


def stored_before_the_fix(session: Session) -> int:
    """Put the attacker's links back into the row, as a database written before ingest checked
    them would hold them, and give the paper a topic so its topic page lists it."""
    session.add(Topic(id=7, label="agent environments", size=1, momentum=1.0, weekly=[], terms=[]))
    session.flush()
    values = {"code_url": HOSTILE, "project_url": "javascript:alert(2)", "topic_id": 7}
    session.execute(update(Paper).where(Paper.id == PAPER).values(**values))
    session.commit()
    return 7


def assert_no_hostile_link(text: str, where: str) -> None:
    assert not re.search(r"javascript:", text, re.IGNORECASE), f"{where} carries a javascript: URL"


def test_no_page_or_api_answer_links_to_a_stored_javascript_url(client: TestClient, session: Session) -> None:
    topic = stored_before_the_fix(session)
    urls = [
        "/",
        "/?period=week",
        f"/papers/{PAPER}",
        "/search?q=EnvHarness&mode=keyword",
        f"/topics/{topic}",
        f"/api/v1/papers/{PAPER}",
        "/api/v1/trending?period=day",
        "/api/v1/search?q=EnvHarness&mode=keyword",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert PAPER in response.text, f"{url} lists the paper"
        assert_no_hostile_link(response.text, url)
    assert client.get(f"/api/v1/papers/{PAPER}").json()["code_url"] is None


def test_a_digest_never_links_to_a_stored_javascript_url(client: TestClient, session: Session) -> None:
    stored_before_the_fix(session)
    paper = session.get(Paper, PAPER)
    assert paper is not None
    assert paper.code_url == HOSTILE
    context = {
        "sections": [
            RenderedSection(
                "Trending",
                [
                    RenderedPaper(
                        paper=paper,
                        reason="Trending today",
                        parts=paper_parts(paper, "http://testserver"),  # as a run writes them
                    )
                ],
            )
        ],
        "digest_date": date(2026, 8, 21),
        "as_of": date(2026, 8, 21),
        "base_url": "http://testserver",
        "unsubscribe_url": "http://testserver/unsubscribe/token",
    }
    for template in ("email/digest.html", "email/digest.txt"):
        text = environment().get_template(template).render(**context)
        assert paper.title in text
        assert_no_hostile_link(text, template)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://github.com/google-research/envharness", True),
        ("http://example.org/project?x=1#top", True),
        ("HTTPS://Example.org/", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("\x01javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox(1)", False),
        ("//evil.example/x", False),
        ("https:evil.example", False),
        ("https://", False),
        ("http://[::1", False),
        ("https://example.org:99999/", False),
        ("github.com/user/repo", False),
        ("", False),
    ],
)
def test_only_absolute_http_urls_count_as_links(url: str, kept: bool) -> None:
    record = PaperIn(id="2601.00001", title="A title", abstract="An abstract.", code_url=url, project_url=url)

    assert (safe_url(url) == url) is kept
    assert (record.code_url == url.strip()) is kept
    assert record.project_url == record.code_url
