"""Digest composition and rendering are pure: no database needed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from papertide.digests.compose import Candidate, compose
from papertide.digests.render import RenderedPaper, digest_message, digest_message_id
from papertide.models import Paper


def candidate(pid: str, trend: float, upvotes: int = 0, **similarity: float) -> Candidate:
    return Candidate(
        paper_id=pid,
        trend_score=trend,
        components={"upvotes": upvotes},
        similarity={k.replace("_", " "): v for k, v in similarity.items()},
    )


def test_never_a_paper_already_sent_and_no_empty_digest() -> None:
    pool = [candidate("a", 3.0), candidate("b", 2.0)]
    assert [e.paper_id for e in compose(pool, already_sent={"a"}, interests=[], mix=0.5, limit=5)] == ["b"]
    assert compose(pool, already_sent={"a", "b"}, interests=[], mix=0.5, limit=5) == []


def test_interests_lift_matching_papers_and_say_why() -> None:
    pool = [
        candidate("popular", 10.0, upvotes=90, speech_synthesis=0.05),
        candidate("match", 4.0, upvotes=12, speech_synthesis=0.72),
    ]

    by_trend = compose(pool, already_sent=set(), interests=[], mix=0.5, limit=2)
    blended = compose(pool, already_sent=set(), interests=["speech synthesis"], mix=0.8, limit=2)

    assert [e.paper_id for e in by_trend] == ["popular", "match"]
    assert [e.paper_id for e in blended] == ["match", "popular"]
    assert blended[0].reason == "12 upvotes · matches 'speech synthesis'"
    assert blended[1].reason == "90 upvotes"


def test_digest_message_is_multipart_with_one_click_unsubscribe() -> None:
    paper = Paper(
        id="2608.19880",
        title="A <b>bold</b> title",
        abstract="Abstract.",
        authors=["A. Author"],
        published_at=datetime(2026, 8, 20, tzinfo=UTC),
    )
    message = digest_message(
        message_id="<digest-7-20261126@localhost>",
        sender="papertide <digest@localhost>",
        to="r@example.org",
        digest_date=date(2026, 11, 26),
        as_of=date(2026, 8, 21),
        papers=[RenderedPaper(paper, "5 upvotes")],
        base_url="https://pt.example",
        unsubscribe_url="https://pt.example/unsubscribe/tok",
    )

    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert message["Message-ID"] == "<digest-7-20261126@localhost>"
    assert message["List-Unsubscribe"] == "<https://pt.example/unsubscribe/tok>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "A &lt;b&gt;bold&lt;/b&gt; title" in html
    assert 'href="https://pt.example/unsubscribe/tok"' in html
    assert "https://pt.example/papers/2608.19880" in text
    assert "5 upvotes" in text


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("papertide <digest@example.org>", "<digest-42-20261126@example.org>"),
        ("digest@mail.example.org", "<digest-42-20261126@mail.example.org>"),
        ("papertide", "<digest-42-20261126@pt.example>"),  # no address: the site's host
    ],
)
def test_a_digest_message_id_is_derived_from_its_delivery(sender: str, expected: str) -> None:
    made = [
        digest_message_id(
            delivery_id=42, digest_date=date(2026, 11, 26), sender=sender, base_url="https://pt.example"
        )
        for _ in range(2)
    ]
    assert made == [expected, expected]
