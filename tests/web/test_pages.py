"""Pages and the JSON API on the bundled sample (real model embeddings for the newest papers)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from papertide.digests.mailer import OutboxMailer
from papertide.web.app import create_app
from tests.helpers import SAMPLE_PAPERS


@pytest.fixture
def client(sample_database: str, real_encoder: object, tmp_path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(encoder_provider=lambda: real_encoder, mailer=OutboxMailer(tmp_path / "outbox"))  # type: ignore[arg-type,return-value]
    with TestClient(app) as test_client:
        yield test_client


def titles(html: str) -> list[str]:
    return re.findall(r'<h3><a href="/papers/[^"]+">([^<]+)</a>', html)


def test_trending_lists_papers_in_trend_order_and_names_the_data_day(client: TestClient) -> None:
    response = client.get("/")
    api = client.get("/api/v1/trending", params={"period": "day", "limit": 30}).json()

    assert response.status_code == 200
    assert response.template.name == "pages/trending.html"  # type: ignore[attr-defined]
    scores = [row["score"] for row in api["results"]]
    assert scores == sorted(scores, reverse=True)
    assert titles(response.text)[:5] == [row["title"] for row in api["results"][:5]]
    assert titles(response.text)[0] == "EnvHarness: Awakening Static Worlds for Agent Learning"
    assert "The newest data is from <strong>21 Aug 2026</strong>" in response.text


def test_week_and_month_tabs_rank_more_papers(client: TestClient) -> None:
    day = client.get("/api/v1/trending", params={"period": "day", "limit": 100}).json()["results"]
    month = client.get("/api/v1/trending", params={"period": "month", "limit": 100}).json()["results"]
    page = client.get("/", params={"period": "month"})

    assert len(day) == 17
    assert len(month) == 100
    assert 'href="/?period=month" aria-current="page"' in page.text


def test_paper_page_shows_abstract_links_breakdown_and_similar(client: TestClient) -> None:
    response = client.get("/papers/2608.19880")

    assert response.status_code == 200
    html = response.text
    assert "LLM agents learn by interacting with environments" in html
    assert 'href="https://arxiv.org/pdf/2608.19880"' in html
    assert 'href="https://github.com/google-research/envharness"' in html
    assert "Why it is trending" in html
    assert response.context["detail"].scores["day"].components["upvotes"] == 163  # type: ignore[attr-defined]
    assert len(response.context["detail"].similar) > 0  # type: ignore[attr-defined]


def test_keyword_search_finds_a_paper_by_a_title_word(client: TestClient) -> None:
    response = client.get("/search", params={"q": "EnvHarness", "mode": "keyword"})

    assert response.status_code == 200
    assert titles(response.text)[0] == "EnvHarness: Awakening Static Worlds for Agent Learning"
    assert "<mark>" in response.text


def test_semantic_search_finds_a_paper_by_a_paraphrase(client: TestClient) -> None:
    query = "making the prompt processing stage faster for long inputs when serving language models"
    semantic = client.get("/api/v1/search", params={"q": query, "mode": "semantic", "limit": 3}).json()
    page = client.get("/search", params={"q": query, "mode": "semantic"})

    target = "FlashPrefill V2: Block-Sparse Prefill Attention for Long-Context LLM Serving"
    assert target in [row["title"] for row in semantic["results"]]
    assert target in titles(page.text)[:3]


def test_hybrid_is_the_default_and_fuses_both_lists(client: TestClient) -> None:
    body = client.get("/api/v1/search", params={"q": "EnvHarness agent environments"}).json()

    assert body["mode"] == "hybrid"
    top = body["results"][0]
    assert top["id"] == "2608.19880"
    assert top["keyword_rank"] == 1
    assert top["semantic_rank"] is not None


def test_api_returns_the_documented_shapes(client: TestClient) -> None:
    trending = client.get("/api/v1/trending", params={"period": "week", "limit": 2}).json()
    paper = client.get("/api/v1/papers/2608.19880").json()
    similar = client.get("/api/v1/papers/2608.19880/similar", params={"limit": 3}).json()

    assert set(trending["results"][0]) >= {"id", "title", "score", "components"}
    assert len(trending["results"]) == 2
    assert paper["id"] == "2608.19880"
    assert paper["trend"]["day"]["components"]["upvotes"] == 163
    assert paper["signals"]["github_stars"] == 8
    assert len(similar["results"]) == 3
    assert all(set(r) >= {"id", "title", "score", "abs_url", "code_url"} for r in similar["results"])
    assert "2608.19880" not in [r["id"] for r in similar["results"]]
    assert client.get("/healthz").json() == {"status": "ok", "papers": SAMPLE_PAPERS}
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/papers/9999.99999", 404, "No paper with id"),
        ("/api/v1/papers/9999.99999", 404, "No paper with id"),
        ("/search?q=" + "x" * 301, 422, "The query is too long"),
        ("/search?q=hello&mode=telepathy", 422, "Unknown search mode"),
        ("/api/v1/search?q=" + "x" * 301, 422, "at most 300 characters"),
        ("/api/v1/search?q=-speech", 422, "the query has no word to search for"),
        ("/api/v1/trending?period=year", 422, "period"),
        ("/?period=year", 422, "Some of the input was not valid"),
    ],
)
def test_bad_input_gets_a_clear_4xx(client: TestClient, path: str, status: int, text: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert text in response.text


def test_more_like_this_finds_a_paper_from_its_own_abstract(client: TestClient) -> None:
    abstract = client.get("/api/v1/papers/2608.19758").json()["abstract"]

    page = client.post("/search/like", data={"text": abstract})
    api = client.post("/api/v1/similar", json={"text": abstract, "limit": 3}).json()

    assert titles(page.text)[0].startswith("FlashPrefill V2")
    assert api["results"][0]["id"] == "2608.19758"
    assert client.post("/search/like", data={"text": "  "}).status_code == 422
    assert client.post("/api/v1/similar", json={"text": "x" * 5001}).status_code == 422


def test_keyword_mode_falls_back_to_any_word_and_survives_odd_characters(client: TestClient) -> None:
    found = client.get("/api/v1/search", params={"q": "EnvHarness zzzunknownword", "mode": "keyword"}).json()
    odd = client.get("/search", params={"q": "o'brien \\ : & | ! ( <-> \"", "mode": "keyword"})

    assert found["results"][0]["id"] == "2608.19880", "no abstract has both words; one of them is enough"
    assert odd.status_code == 200
