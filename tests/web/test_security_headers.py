"""Security headers on every answer (issue 8, item 5): a CSP with no script, nosniff, no framing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from papertide.config import get_settings
from papertide.web.app import create_app
from papertide.web.headers import style_hash

# A page, the API, an error page, a validation error, an oversized body, health.
REQUESTS = [
    ("GET", "/", None),
    ("GET", "/search?q=speech&mode=keyword", None),
    ("GET", "/subscribe", None),
    ("GET", "/papers/0000.00000", None),
    ("GET", "/api/v1/trending", None),
    ("GET", "/api/v1/papers/0000.00000", None),
    ("GET", "/api/v1/search?q=", None),
    ("POST", "/api/v1/similar", "x" * 100_000),
    ("GET", "/healthz", None),
    ("GET", "/no-such-page", None),
]


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


def directives(policy: str) -> dict[str, str]:
    return {
        part.split()[0]: part.partition(" ")[2] for part in (p.strip() for p in policy.split(";")) if part
    }


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for method, url, body in REQUESTS:
        response = client.request(method, url, content=body)
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", url
        assert headers["x-frame-options"] == "DENY", url
        assert headers["referrer-policy"] == "same-origin", url
        policy = directives(headers["content-security-policy"])
        assert policy["default-src"] == "'none'", url
        assert "script-src" not in policy, f"{url}: no script may run (default-src 'none' covers it)"
        assert policy["frame-ancestors"] == "'none'", url
        assert "strict-transport-security" not in headers, f"{url}: HSTS only behind https"


def test_the_pages_one_style_element_is_allowed_by_its_hash(client: TestClient) -> None:
    page = client.get("/")
    policy = directives(page.headers["content-security-policy"])

    assert "<script" not in page.text
    assert policy["style-src"] == style_hash()
    assert "'unsafe-inline'" not in policy["style-src"]


def test_hsts_is_sent_when_the_site_is_served_over_https(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "https://papers.example.org")
    get_settings.cache_clear()
    try:
        with TestClient(create_app(encoder_provider=lambda: None)) as client:
            response = client.get("/api/v1/trending")
    finally:
        get_settings.cache_clear()
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_the_api_docs_page_gets_the_policy_it_needs(client: TestClient) -> None:
    response = client.get("/docs")
    policy = directives(response.headers["content-security-policy"])

    assert response.status_code == 200
    assert policy["script-src"].startswith("'self' 'sha256-")  # our files and the start script
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
