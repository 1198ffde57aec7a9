"""What the pages say: a trending row's reason and snippet, counts in the right number, a paper's
source, how much of the corpus meaning search covers, and a paper's link preview."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from papertide.digests.mailer import OutboxMailer
from papertide.templating import counted
from papertide.web import paper_views, search_views
from papertide.web.app import create_app
from tests.factories import make_paper
from tests.helpers import SAMPLE_PAPERS


@pytest.fixture
def client(sample_database: str, real_encoder: object, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(encoder_provider=lambda: real_encoder, mailer=OutboxMailer(tmp_path / "outbox"))  # type: ignore[arg-type,return-value]
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("components", "period", "reason"),
    [
        ({"upvotes": 165, "github_stars": 8}, "day", "+165 upvotes today · 8 stars"),
        (
            {"upvotes": 1.0, "github_stars": 1, "comments": 1},
            "week",
            "+1 upvote this week · 1 star · 1 comment",
        ),
        (
            {"upvotes": 2400, "comments": 3, "views": 12},
            "month",
            "+2,400 upvotes this month · 3 comments · 12 views here",
        ),
        ({"upvotes": 0, "github_stars": 0, "views": 1}, "day", "no upvotes yet · 1 view here"),
        ({"upvotes": 7, "momentum_boost": 1.35}, "day", "+7 upvotes today · rising topic"),
        ({"upvotes": 7, "momentum_boost": 1.0}, "day", "+7 upvotes today"),
    ],
)
def test_a_trending_reason_reads_as_words_with_the_periods_name(
    components: dict[str, float], period: str, reason: str
) -> None:
    assert paper_views.trend_reason(components, period=period) == reason


def test_counts_take_the_right_number() -> None:
    assert [counted(n, "comment") for n in (0, 1, 2, 1.0, 1204)] == [
        "0 comments",
        "1 comment",
        "2 comments",
        "1 comment",
        "1,204 comments",
    ]


def test_coverage_is_said_only_while_papers_wait_for_their_vectors() -> None:
    assert (
        search_views.coverage_line(embedded=412, papers=1219)
        == "412 of 1,219 papers searchable by meaning so far"
    )
    assert search_views.coverage_line(embedded=1219, papers=1219) is None
    assert search_views.coverage_line(embedded=0, papers=0) is None


def test_a_share_description_ends_at_a_word_near_300_characters() -> None:
    words = "attention " * 60
    short = paper_views.shorten(words, 300)
    assert len(short) <= 300
    assert short.endswith("attention…")
    assert paper_views.shorten("  a  short\nabstract ", 300) == "a short abstract"
    assert paper_views.paper_url("hep-th/9901001", base_url="https://papers.example/") == (
        "https://papers.example/papers/hep-th/9901001"
    )


def test_only_an_arxiv_id_is_called_one() -> None:
    assert paper_views.arxiv_id("2608.19880") == "2608.19880"
    assert paper_views.arxiv_id("hep-th/9901001") == "hep-th/9901001"
    assert paper_views.arxiv_id("t-0123456789abcdef") is None


def test_trending_rows_say_why_in_words_with_a_snippet_and_no_bare_score(client: TestClient) -> None:
    page = client.get("/").text

    first = page[page.index('<li class="paper">') : page.index("</li>")]
    assert "+163 upvotes today · 8 stars · 1 comment" in first
    assert re.search(r'<p class="snippet">LLM agents learn by interacting', first)
    assert not re.search(r"score \d", first)
    assert not re.search(r"\b1 (comments|stars|upvotes)\b", page)


def test_the_paper_page_keeps_the_score_and_its_breakdown(client: TestClient) -> None:
    page = client.get("/papers/2608.19880").text

    assert re.search(r'<tr class="total"><th scope="row">Score</th><td class="num">\d+\.\d\d</td>', page)
    assert "arXiv 2608.19880" in page


def test_a_paper_not_from_arxiv_is_not_labelled_arxiv(client: TestClient, session: Session) -> None:
    make_paper(
        session,
        id="t-0123456789abcdef",
        source="jsonl",
        abs_url="https://example.org/paper",
        title="From a JSONL file",
    )
    session.commit()

    page = client.get("/papers/t-0123456789abcdef").text

    assert "arXiv" not in page[page.index("<article>") : page.index('<h2 id="why">')]
    assert "t-0123456789abcdef · from jsonl" in page
    assert '<a href="https://example.org/paper" rel="noopener">Abstract page</a>' in page


def test_meaning_search_says_how_much_of_the_corpus_it_covers_while_embedding_runs(
    client: TestClient,
) -> None:
    expected = f"64 of {SAMPLE_PAPERS:,} papers searchable by meaning so far"

    for mode in ("semantic", "hybrid"):
        assert expected in client.get("/search", params={"q": "speech synthesis", "mode": mode}).text, mode
    assert (
        "searchable by meaning" not in client.get("/search", params={"q": "speech", "mode": "keyword"}).text
    )
    assert "searchable by meaning" not in client.get("/search").text


def test_a_paper_page_previews_when_shared_with_its_title_escaped(
    client: TestClient, session: Session
) -> None:
    hostile = 'Fast "attention" & <script>alert(1)</script>'
    make_paper(session, id="2601.99999", title=hostile, abstract="word " * 100 + "<b>end</b>")
    session.commit()

    page = client.get("/papers/2601.99999").text
    head = page[: page.index("</head>")]

    def meta(attribute: str, name: str) -> str:
        match = re.search(rf'<meta {attribute}="{name}" content="([^"]*)">', head)
        assert match, f"{name} is in the head"
        return html.unescape(match.group(1))

    assert "<script>alert" not in head
    assert meta("property", "og:title") == hostile
    assert meta("name", "twitter:title") == hostile
    assert meta("property", "og:type") == "article"
    assert meta("property", "og:url") == "http://testserver/papers/2601.99999"
    assert meta("name", "twitter:card") == "summary"
    description = meta("property", "og:description")
    assert description.startswith("word word")
    assert description.endswith("…")
    assert len(description) <= 300
    assert meta("name", "description") == description
    assert head.count('name="description"') == 1, "the site's own description gives way to the paper's"
