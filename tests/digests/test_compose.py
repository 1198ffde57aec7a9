"""Digest composition and rendering are pure: no database needed."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from papertide.digests.compose import TRENDING, PoolPaper, ProfileFit, compose_sections, reason
from papertide.digests.render import (
    RenderedPaper,
    RenderedSection,
    digest_message,
    digest_message_id,
    paper_parts,
)
from papertide.models import Paper

POOL = [
    PoolPaper("popular", 10.0, {"upvotes": 90}, rank=1),
    PoolPaper("tts", 6.0, {"upvotes": 12}, rank=2),
    PoolPaper("video", 4.0, {}, rank=3),
    PoolPaper("tts-small", 1.0, {}, rank=4),
]


def fit(name: str, profile_id: int, **why: str) -> ProfileFit:
    """A profile that the papers named in `why` belong to, closer in the order given."""
    named = {key.replace("_", "-"): reason for key, reason in why.items()}
    order = list(named)
    relevance = [float(len(order) - order.index(p.paper_id)) if p.paper_id in named else 0.0 for p in POOL]
    return ProfileFit(profile_id, name, relevance, [named.get(p.paper_id) for p in POOL])


def compose(fits: list[ProfileFit], *, sent: frozenset[str] = frozenset(), mix: float = 0.5, **kw: int):  # type: ignore[no-untyped-def]
    return compose_sections(
        POOL,
        fits,
        already_seen=set(sent),
        mix=mix,
        per_section=kw.get("per_section", 2),
        trending=kw.get("trending", 2),
        period="week",
    )


def test_each_profile_is_its_own_section_then_trending_without_repeats() -> None:
    speech = fit("speech", 1, tts="matches 'speech synthesis'", tts_small="matches 'speech synthesis'")
    world = fit("world models", 2, video="matches 'world models'", tts="matches 'world models'")

    sections = compose([speech, world])

    assert [(s.title, s.profile_id) for s in sections] == [
        ("speech", 1),
        ("world models", 2),
        (TRENDING, None),
    ]
    assert [e.paper_id for e in sections[0].entries] == ["tts", "tts-small"]
    assert [e.paper_id for e in sections[1].entries] == ["video"]  # tts went in the first section
    assert [e.paper_id for e in sections[2].entries] == ["popular"]


def test_a_paper_that_fits_no_profile_never_lands_in_its_section() -> None:
    sections = compose([fit("speech", 1, tts="matches 'speech synthesis'")], per_section=5)

    assert [e.paper_id for e in sections[0].entries] == ["tts"]


def test_never_a_paper_already_sent_and_no_empty_digest() -> None:
    speech = fit("speech", 1, tts="matches 'speech synthesis'")

    assert [s.title for s in compose([speech], sent=frozenset({"tts"}))] == [TRENDING]
    everything = frozenset(p.paper_id for p in POOL)
    assert compose([speech], sent=everything) == []


def test_the_mix_weighs_closeness_against_trend_inside_a_section() -> None:
    # tts-small is the closest match, tts the more popular one.
    speech = fit("speech", 1, tts_small="matches 'tts'", tts="matches 'tts'")

    by_trend = compose([speech], mix=0.0)[0].entries
    by_interest = compose([speech], mix=1.0)[0].entries

    assert [e.paper_id for e in by_trend] == ["tts", "tts-small"]
    assert [e.paper_id for e in by_interest] == ["tts-small", "tts"]


def test_a_section_holds_no_more_papers_than_the_reader_asked_for() -> None:
    speech = fit("speech", 1, tts="a", tts_small="b", video="c")

    assert [e.paper_id for e in compose([speech], per_section=1, trending=0)[0].entries] == ["tts"]


def test_a_mix_between_weighs_trend_and_closeness_as_ranks_not_raw_scores() -> None:
    # Trend scores run 1-10, and this profile's closeness up to 300: raw, one side would decide
    # whatever the mix. As ranks in the pool, a mix of 3/4 follows closeness and 1/4 the trend.
    relevance = [1.0, 2.0, 0.0, 300.0]  # popular, tts, video, tts-small
    why = ["matches 'a'", "matches 'a'", None, "matches 'a'"]
    speech = ProfileFit(1, "speech", relevance, why)

    def order(mix: float) -> list[str]:
        return [e.paper_id for e in compose([speech], mix=mix, per_section=3, trending=0)[0].entries]

    assert order(0.75) == ["tts-small", "tts", "popular"]
    assert order(0.25) == ["popular", "tts", "tts-small"]


def test_a_reason_leaves_out_counts_of_zero() -> None:
    quiet = PoolPaper("quiet", 1.0, {"upvotes": 0, "github_stars": 0, "comments": 0}, rank=1)

    assert reason(quiet, period="day") == "#1 today"


def test_reasons_say_why_and_where_the_paper_stands_in_trending() -> None:
    sections = compose([fit("speech", 1, tts="matches 'speech synthesis'")], trending=1)

    assert sections[0].entries[0].reason == "matches 'speech synthesis' · #2 this week · 12 upvotes"
    assert sections[1].entries[0].reason == "#1 this week · 90 upvotes"


def test_a_reason_counts_in_the_right_number() -> None:
    one = PoolPaper("one", 1.0, {"upvotes": 1, "github_stars": 1, "comments": 1}, rank=4)
    many = PoolPaper("many", 1.0, {"upvotes": 1204, "github_stars": 8, "comments": 2}, rank=1)

    assert reason(one, period="day") == "#4 today · 1 upvote · 1 GitHub star · 1 comment"
    assert reason(many, period="week") == "#1 this week · 1,204 upvotes · 8 GitHub stars · 2 comments"


def test_no_trending_section_when_the_reader_asked_for_none() -> None:
    sections = compose([fit("speech", 1, tts="matches 'speech synthesis'")], trending=0)

    assert [s.title for s in sections] == ["speech"]


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
        sections=[
            RenderedSection(
                "Trending", [RenderedPaper(paper, "5 upvotes", paper_parts(paper, "https://pt.example"))]
            )
        ],
        base_url="https://pt.example",
        unsubscribe_url="https://pt.example/unsubscribe/tok",
        manage_url="https://pt.example/manage/m",
        view_url="https://pt.example/digest/v",
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
    assert 'href="https://pt.example/manage/m"' in html
    assert 'href="https://pt.example/digest/v"' in html


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("papertide <digest@example.org>", "@example.org>"),
        ("digest@mail.example.org", "@mail.example.org>"),
        ("papertide", "@pt.example>"),  # no address: the site's host
    ],
)
def test_a_digest_message_id_is_derived_from_its_delivery(sender: str, expected: str) -> None:
    made = [
        digest_message_id(
            delivery_id=42,
            digest_date=date(2026, 11, 26),
            sender=sender,
            base_url="https://pt.example",
            secret="key one",
        )
        for _ in range(2)
    ]
    assert made[0] == made[1], "a resend carries the same id"
    assert re.fullmatch(r"<digest-42-20261126\.[a-z2-7]{16}" + re.escape(expected), made[0]), made[0]
    other_key = digest_message_id(
        delivery_id=42,
        digest_date=date(2026, 11, 26),
        sender=sender,
        base_url="https://pt.example",
        secret="key two",
    )
    assert other_key != made[0], "the tag is the site key's: nobody without it can write one"


def test_a_message_id_on_a_site_at_an_ipv6_address_is_a_domain_literal() -> None:
    """RFC 5322 §3.6.4: after the @ a dot-atom or a [literal]; "::1" is neither."""
    made = digest_message_id(
        delivery_id=42,
        digest_date=date(2026, 11, 26),
        sender="papertide",
        base_url="http://[::1]:8000",
        secret="k",
    )
    assert made.endswith("@[::1]>")
    literal = digest_message_id(
        delivery_id=42,
        digest_date=date(2026, 11, 26),
        sender="digest@[IPv6:2001:db8::1]",
        base_url="https://pt.example",
        secret="k",
    )
    assert literal.endswith("@[IPv6:2001:db8::1]>")
