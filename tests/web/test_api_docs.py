"""/docs works with no internet: Swagger UI comes from this site's own files, under a policy that
allows nothing from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from papertide.web import api_docs
from papertide.web.app import create_app
from tests.helpers import serving
from tests.web.test_browser import phone_page


@pytest.fixture
def docs_server(database: str) -> Iterator[str]:
    with serving(create_app(encoder_provider=lambda: None)) as url:
        yield url


@pytest.mark.browser
def test_docs_render_every_operation_with_no_outside_request(docs_server: str) -> None:
    here = urlsplit(docs_server).netloc
    outside: list[str] = []
    refused: list[str] = []

    def only_here(route):  # type: ignore[no-untyped-def]
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != here:
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    for opened in phone_page():
        page: Any = opened  # a Playwright Page (phone_page is typed loosely)
        page.route("**/*", only_here)
        page.on("console", lambda message: refused.append(message.text))
        page.goto(docs_server + "/docs")
        page.get_by_text("/api/v1/search", exact=True).first.wait_for(state="visible", timeout=20_000)
        rendered = page.locator(".opblock-summary-path").all_inner_texts()
        page.get_by_text("/api/v1/trending", exact=True).first.click()
        page.get_by_text("papers listed in this ISO week, as YYYY-Www").wait_for(state="visible")
        # "Try it out" calls the API from the page: connect-src 'self' lets it.
        page.get_by_role("button", name="Try it out").click()
        page.get_by_role("button", name="Execute").click()
        answer = page.locator(".live-responses-table tr.response .response-col_status").first
        answer.wait_for(state="visible", timeout=20_000)
        status = answer.inner_text()

    assert outside == []
    assert [text for text in refused if "Content Security Policy" in text] == []
    assert status.strip() == "200"
    assert {"/api/v1/trending", "/api/v1/search", "/api/v1/topics", "/healthz"} <= set(rendered)


def test_docs_page_names_only_our_own_files(database: str) -> None:
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        page = client.get("/docs")
        assets = [
            client.get(f"{api_docs.ASSETS_PATH}/{name}")
            for name in ("swagger-ui-bundle.js", "swagger-ui.css")
        ]
        redoc = client.get("/redoc")

    assert page.status_code == 200
    assert "http" not in page.text.replace('content="width=device-width', "")  # no absolute URL at all
    assert all(asset.status_code == 200 and len(asset.content) > 100_000 for asset in assets)
    policy = page.headers["content-security-policy"]
    assert "http" not in policy
    assert "'unsafe-inline'" not in policy
    assert redoc.status_code == 404
