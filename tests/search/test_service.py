"""Search: keyword mode never loads the model; highlights stay well-formed whatever the abstract holds."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from papertide.embeddings.encoder import Encoder
from papertide.search import service as search_service
from papertide.search.schemas import SearchMode, SearchQuery
from papertide.web.app import create_app
from tests.factories import FakeEncoder, make_paper

# Control characters a source can send: \x02 and \x03 are the headline's own match sentinels.
ODD_ABSTRACT = "Speech \x02synthesis from text, with \x03 stray control characters \x02 around speech models."


class RecordingProvider:
    """An encoder provider that remembers each call (the real one loads the model on its first)."""

    def __init__(self) -> None:
        self.calls = 0
        self.encoder = FakeEncoder()

    def __call__(self) -> Encoder | None:
        self.calls += 1
        return self.encoder


def marks_balanced(html: str) -> bool:
    """Every <mark> closes before the next opens, and nothing is left open."""
    depth = 0
    for tag in re.findall(r"</?mark>", html):
        depth += 1 if tag == "<mark>" else -1
        if depth not in (0, 1):
            return False
    return depth == 0


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
def client(database: str, session: Session, provider: RecordingProvider) -> Iterator[TestClient]:
    make_paper(session, id="2601.90001", title="Speech synthesis", abstract=ODD_ABSTRACT)
    session.commit()
    with TestClient(create_app(encoder_provider=provider)) as test_client:
        yield test_client


def test_keyword_search_never_asks_for_the_model(client: TestClient, provider: RecordingProvider) -> None:
    page = client.get("/search", params={"q": "speech", "mode": "keyword"})
    api = client.get("/api/v1/search", params={"q": "speech", "mode": "keyword"})

    assert page.status_code == api.status_code == 200
    assert api.json()["results"][0]["id"] == "2601.90001"
    assert provider.calls == 0, "a keyword search loaded the embedding model"


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_the_other_modes_do_use_the_model(client: TestClient, provider: RecordingProvider, mode: str) -> None:
    assert client.get("/api/v1/search", params={"q": "speech", "mode": mode}).status_code == 200
    assert provider.calls == 1
    assert provider.encoder.encoded_texts == ["speech"]


def test_an_invalid_passage_does_not_load_the_model(client: TestClient, provider: RecordingProvider) -> None:
    assert client.post("/search/like", data={"text": "   "}).status_code == 422
    assert provider.calls == 0


def test_an_abstract_holding_the_sentinels_leaves_no_mark_open(client: TestClient) -> None:
    page = client.get("/search", params={"q": "speech", "mode": "keyword"})

    assert page.status_code == 200
    assert "<mark>Speech</mark>" in page.text
    assert marks_balanced(page.text)
    assert "\x02" not in page.text
    assert "\x03" not in page.text


def test_the_headline_strips_the_sentinels_from_the_abstract(tx_session: Session) -> None:
    make_paper(tx_session, id="2601.90002", title="Speech synthesis", abstract=ODD_ABSTRACT)
    query = SearchQuery(q="speech", mode=SearchMode.KEYWORD)

    [hit] = search_service.search(tx_session, query, encoder=None)

    assert hit.highlight is not None
    assert hit.highlight.count("<mark>") == 2, "the two matches of 'speech', nothing else"
    assert marks_balanced(hit.highlight)
    assert "synthesis from text, with  stray control characters  around" in hit.highlight


@given(st.text(alphabet=st.sampled_from("ab<&\x02\x03"), max_size=30))
def test_highlight_always_closes_what_it_opens_and_escapes_the_rest(headline: str) -> None:
    html = search_service.highlight(headline)

    assert marks_balanced(html)
    assert "<" not in re.sub(r"</?mark>", "", html), "only <mark> tags reach the page"
