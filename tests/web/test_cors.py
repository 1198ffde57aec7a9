"""The read-only endpoints answer any origin (no credentials), so a browser extension or a static
page can use them; the HTML pages and POST routes do not."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from papertide.web.app import create_app
from papertide.worker import jobs
from tests.factories import make_paper
from tests.helpers import serving
from tests.web.test_browser import phone_page

ORIGIN = "https://static.example"


@pytest.fixture
def client(database: str, session: Session) -> Iterator[TestClient]:
    for n in range(3):
        make_paper(session, title=f"Open paper {n}")
    session.commit()
    jobs.score()
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/trending?period=month&limit=1",
        "/api/v1/topics",
        "/api/v1/papers/no-such-paper",  # errors too, so a script can read why
        "/api/v1/trending?week=2026-W54",
        "/feeds/trending.atom",
        "/healthz",
        "/openapi.json",
    ],
)
def test_read_only_gets_allow_any_origin_without_credentials(client: TestClient, url: str) -> None:
    for method in ("GET", "HEAD"):
        response = client.request(method, url, headers={"Origin": ORIGIN})

        assert response.status_code < 500
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        assert "Link" in response.headers["access-control-expose-headers"]


@pytest.mark.parametrize("url", ["/", "/search?q=speech", "/topics", "/subscribe", "/papers/2601.00001"])
def test_html_pages_send_no_cors_headers(client: TestClient, url: str) -> None:
    response = client.get(url, headers={"Origin": ORIGIN})

    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_post_routes_send_no_cors_headers(client: TestClient) -> None:
    response = client.post("/api/v1/similar", json={"text": "speech"}, headers={"Origin": ORIGIN})

    assert "access-control-allow-origin" not in response.headers


def test_a_preflight_for_a_get_is_answered(client: TestClient) -> None:
    response = client.options(
        "/api/v1/search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET, HEAD"
    assert "If-None-Match" in response.headers["access-control-allow-headers"]
    assert int(response.headers["access-control-max-age"]) > 0


@pytest.mark.parametrize(
    ("url", "method"),
    [("/api/v1/similar", "POST"), ("/api/v1/trending", "DELETE"), ("/subscribe", "POST"), ("/", "GET")],
)
def test_a_preflight_for_anything_else_is_not_allowed(client: TestClient, url: str, method: str) -> None:
    response = client.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": method})

    assert "access-control-allow-origin" not in response.headers


SCRIPT = """async ([api]) => {
  const read = async (url, options) => {
    try { const r = await fetch(url, options); return [r.status, r.headers.get("link")]; }
    catch (error) { return ["blocked", String(error)]; }
  };
  return [
    await read(api + "/api/v1/trending?period=month&limit=1"),
    await read(api + "/"),
    await read(api + "/api/v1/trending?period=month&limit=1", {headers: {"If-None-Match": '"x"'}}),
  ];
}"""


def static_site() -> Starlette:
    """Another site on this machine (another port: another origin), with a page and no policy of ours."""
    return Starlette(routes=[Route("/", lambda _: HTMLResponse("<p>elsewhere</p>"))])


@pytest.mark.browser
def test_a_page_on_another_origin_reads_the_api_but_not_the_pages(client: TestClient) -> None:
    with serving(create_app(encoder_provider=lambda: None)) as api, serving(static_site()) as elsewhere:
        for page in phone_page():
            page.goto(elsewhere + "/")  # type: ignore[attr-defined]
            api_answer, page_answer, conditional = page.evaluate(SCRIPT, [api])  # type: ignore[attr-defined]

    assert api_answer[0] == 200, api_answer
    assert 'rel="next"' in api_answer[1], json.dumps(api_answer)  # Link is exposed to scripts
    assert conditional[0] == 200, conditional  # a header that needs a preflight: answered
    assert page_answer[0] == "blocked"
