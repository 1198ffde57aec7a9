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
from papertide.search.highlight import highlight
from papertide.web.app import create_app
from tests.factories import FakeEncoder, make_paper
from tests.helpers import keyword_index_now

ODD_ABSTRACT = (
    "Speech <script>alert(1)</script> synthesis from text, with <mark> stray tags around speech models."
)


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
    keyword_index_now()
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


def test_an_abstract_with_markup_is_escaped_in_the_highlight(client: TestClient) -> None:
    page = client.get("/search", params={"q": "speech", "mode": "keyword"}).text

    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert marks_balanced(page)


@given(
    st.lists(
        st.sampled_from(["speech", " ", "<b>", "&", "mark", "</mark>", "\x02", "é", ".", "\n"]), max_size=80
    ).map("".join)
)
def test_highlight_always_closes_what_it_opens_and_escapes_the_rest(abstract: str) -> None:
    html = highlight(abstract, wanted={"speech", "mark"}, terms=lambda word: [word.lower()])

    assert marks_balanced(html)
    assert "<b>" not in html
    assert "<mark>mark" not in html.replace("<mark>mark</mark>", "")
    assert re.sub(r"</?mark>", "", html).count("<") == 0  # every other < is escaped


def test_a_long_abstract_shows_its_best_stretch_with_the_words_marked() -> None:
    abstract = " ".join(["filler"] * 100 + ["speech", "synthesis", "for", "speech"] + ["filler"] * 100)

    html = highlight(abstract, wanted={"speech"}, terms=lambda word: [word.lower()])

    assert html.count("<mark>speech</mark>") == 2
    assert html.startswith("… ")
    assert html.endswith(" …")
    assert len(html.split()) < 50


@pytest.mark.parametrize(
    ("abstract", "shown"),
    [
        ("(Preprint) Speech synthesis.", "(Preprint) <mark>Speech</mark> synthesis."),
        ('"Speech" is hard.', "&#34;<mark>Speech</mark>&#34; is hard."),
        ("<<>>", "&lt;&lt;&gt;&gt;"),
        ("", ""),
    ],
)
def test_a_short_abstract_is_shown_whole_from_its_first_character(abstract: str, shown: str) -> None:
    assert highlight(abstract, wanted={"speech"}, terms=lambda word: [word.lower()]) == shown
