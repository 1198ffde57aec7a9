"""A trailing slash is redirected to the path without it, and nothing the client sent but the path
and query goes into the Location header: not its Host, not a scheme, never another site."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from papertide.web.app import create_app


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/subscribe/", "/subscribe"),
        ("/api/v1/trending/?window=week&x=%3Cb%3E", "/api/v1/trending?window=week&x=%3Cb%3E"),
        ("/topics//", "/topics"),
        ("/%2F%2Fevil.example/", "/evil.example"),  # "//evil.example" would be another site
        ("/%5Cevil.example/", "/evil.example"),  # so would "/\\evil.example" to a browser
        ("/a b<c>/", "/a%20b%3Cc%3E"),
        ("/a%23b/", "/a%23b"),  # a "#" kept as data, not a fragment
        ("/100%25/", "/100%25"),
    ],
)
def test_a_trailing_slash_redirects_to_the_path_on_this_site(
    client: TestClient, path: str, location: str
) -> None:
    response = client.get(path, headers={"Host": "evil.example:1234"}, follow_redirects=False)

    assert response.status_code == 307
    assert response.headers["location"] == location


def test_a_form_posted_with_a_trailing_slash_is_sent_on_with_its_method(client: TestClient) -> None:
    response = client.post("/subscribe/", data={"email": "a@example.org"}, follow_redirects=False)

    assert response.status_code == 307  # the browser posts the same form to /subscribe
    assert response.headers["location"] == "/subscribe"


def test_the_redirect_leads_to_the_page(client: TestClient) -> None:
    assert client.get("/subscribe/").status_code == 200
    assert client.get("/no-such-page/").status_code == 404
