"""Votes from a digest's signed link (a scanner's GET records nothing) and from a paper page; the
digest in the browser from its signed link."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import signing
from papertide.config import get_settings
from papertide.digests import service as digest_service
from papertide.digests.service import ViewedDigest
from papertide.models import InterestProfile, PaperVote, Subscriber, SubscriberStatus
from papertide.signing import LinkPurpose, sign
from papertide.subscribers import preferences, repository, service
from papertide.web.app import create_app
from papertide.web.reader_cookie import COOKIE_NAME
from papertide.web.routes import digest_view
from tests.factories import make_paper
from tests.helpers import csrf_from

PAPER = "2601.99999"


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


def reader(session: Session, email: str, *profiles: str) -> tuple[int, list[int]]:
    """A confirmed subscriber with these profiles (committed): its id and the profiles' ids."""
    subscriber = Subscriber(
        email=email, status=SubscriberStatus.CONFIRMED, papers_per_digest=8, interest_mix=0.5
    )
    session.add(subscriber)
    session.flush()
    ids = [
        preferences.add_profile(session, subscriber=subscriber, name=name, phrases=name, categories="").id
        for name in profiles
    ]
    session.commit()
    return subscriber.id, ids


@pytest.fixture
def paper(session: Session) -> str:
    make_paper(session, id=PAPER, title="A paper about <b>speech</b>")
    session.commit()
    return PAPER


def vote_link(
    payload: dict[str, Any], *, purpose: LinkPurpose = LinkPurpose.VOTE, secret: str | None = None
) -> str:
    return "/vote/" + sign(secret or get_settings().resolved_secret_key(), purpose, payload)


def votes(session: Session) -> list[tuple[int, str, int]]:
    session.expire_all()
    return [(v.profile_id, v.paper_id, v.vote) for v in session.scalars(select(PaperVote))]


def stale(session: Session, profile_id: int) -> bool:
    session.expire_all()
    profile = session.get(InterestProfile, profile_id)
    assert profile is not None
    return profile.model_stale


def test_a_scanners_get_records_nothing_and_the_button_records_the_vote(
    client: TestClient, session: Session, paper: str
) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    link = vote_link({"s": subscriber, "p": speech, "paper": paper, "v": 1})

    page = client.get(link)
    client.get(link)  # link scanners follow every link, sometimes twice

    assert page.status_code == 200
    assert "More like this, for “speech”" in page.text
    assert "A paper about &lt;b&gt;speech&lt;/b&gt;" in page.text
    assert votes(session) == []
    assert not stale(session, speech)

    recorded = client.post(link)

    assert recorded.status_code == 200
    assert "Recorded: your “speech” section will show more papers like this one" in recorded.text
    assert votes(session) == [(speech, paper, 1)]
    assert stale(session, speech), "the digest run retrains the profile"


def test_the_latest_vote_stands(client: TestClient, session: Session, paper: str) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")

    client.post(vote_link({"s": subscriber, "p": speech, "paper": paper, "v": 1}))
    less = client.post(vote_link({"s": subscriber, "p": speech, "paper": paper, "v": -1}))

    assert "will show fewer papers like this one" in less.text
    assert votes(session) == [(speech, paper, -1)]


def test_a_trending_paper_asks_which_profile_it_teaches(
    client: TestClient, session: Session, paper: str
) -> None:
    subscriber, [speech, vision] = reader(session, "r@example.org", "speech", "vision")
    link = vote_link({"s": subscriber, "p": None, "paper": paper, "v": -1})

    page = client.get(link)
    recorded = client.post(link, data={"profile": str(vision)})

    assert "Less like this, for “speech”" in page.text
    assert "Less like this, for “vision”" in page.text
    assert recorded.status_code == 200
    assert votes(session) == [(vision, paper, -1)]
    assert not stale(session, speech)


def test_a_trending_vote_for_another_readers_profile_is_refused(
    client: TestClient, session: Session, paper: str
) -> None:
    subscriber, _ = reader(session, "r@example.org", "speech")
    _, [theirs] = reader(session, "other@example.org", "theirs")
    link = vote_link({"s": subscriber, "p": None, "paper": paper, "v": 1})

    refused = client.post(link, data={"profile": str(theirs)})
    unchosen = client.post(link)
    huge = client.post(link, data={"profile": "9" * 24})

    assert refused.status_code == 403
    assert "That profile is not one of yours, so no vote was recorded." in refused.text
    assert unchosen.status_code == 400
    assert huge.status_code == 403
    assert votes(session) == []


def test_a_vote_link_from_an_earlier_subscription_records_nothing(
    client: TestClient, session: Session, paper: str
) -> None:
    from datetime import UTC, datetime

    subscriber_id, [speech] = reader(session, "back@example.org", "speech")
    owner = session.get_one(Subscriber, subscriber_id)
    owner.confirmed_at = datetime(2026, 11, 1, tzinfo=UTC)
    session.commit()
    sent_then = {"s": subscriber_id, "c": preferences.subscription_stamp(owner), "p": speech, "paper": paper}
    owner.confirmed_at = datetime(2026, 11, 20, tzinfo=UTC)  # left, then signed up and confirmed again
    session.commit()
    sent_now = {**sent_then, "c": preferences.subscription_stamp(owner)}

    old = client.post(vote_link({**sent_then, "v": 1}))
    page = client.get(vote_link({**sent_then, "v": 1}))
    # A Trending paper's link names no profile: the reader picks one on the page.
    trending_then = {**sent_then, "p": None}
    old_trending = client.post(vote_link({**trending_then, "v": 1}), data={"profile": str(speech)})
    new = client.post(vote_link({**sent_now, "v": -1}))

    assert (old.status_code, page.status_code, old_trending.status_code) == (410, 410, 410)
    assert "earlier subscription of this address" in old.text
    assert new.status_code == 200
    assert votes(session) == [(speech, paper, -1)], "only the new subscription's link voted"


@pytest.mark.parametrize(
    "how", ["tampered", "other key", "other purpose", "bad payload", "bad profile", "bad stamp"]
)
def test_a_forged_vote_link_is_404_and_records_nothing(
    client: TestClient, session: Session, paper: str, how: str
) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    payload = {"s": subscriber, "p": speech, "paper": paper, "v": 1}
    link = {
        "tampered": vote_link(payload)[:-2] + "xx",
        "other key": vote_link(payload, secret="someone else's key"),
        "other purpose": vote_link(payload, purpose=LinkPurpose.VIEW),
        "bad payload": vote_link({**payload, "v": 5}),
        "bad profile": vote_link({**payload, "p": str(speech)}),
        "bad stamp": vote_link({**payload, "c": "1"}),
    }[how]

    for response in (client.get(link), client.post(link)):
        assert response.status_code == 404
        assert "This vote link is not valid" in response.text
    assert votes(session) == []


def test_an_expired_vote_link_is_410_and_says_so(
    client: TestClient, session: Session, paper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    link = vote_link({"s": subscriber, "p": speech, "paper": paper, "v": 1})
    monkeypatch.setitem(signing.MAX_AGE_SECONDS, LinkPurpose.VOTE, -1)  # every link is past its age

    for response in (client.get(link), client.post(link)):
        assert response.status_code == 410
        assert "This vote link has expired" in response.text
    assert votes(session) == []


def test_a_vote_for_a_deleted_profile_is_410_and_says_why(
    client: TestClient, session: Session, paper: str
) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    link = vote_link({"s": subscriber, "p": speech, "paper": paper, "v": 1})
    owner = session.get(Subscriber, subscriber)
    assert owner is not None
    preferences.delete_profile(session, subscriber=owner, profile_id=speech)
    session.commit()

    for response in (client.get(link), client.post(link)):
        assert response.status_code == 410
        assert "The interest profile this paper was sent for has been deleted" in response.text
    assert votes(session) == []


def test_a_vote_on_an_unknown_paper_is_404(client: TestClient, session: Session) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    link = vote_link({"s": subscriber, "p": speech, "paper": "0000.00000", "v": 1})

    assert client.get(link).status_code == 404
    assert client.post(link).status_code == 404


# --- the paper page ------------------------------------------------------------------------------


def marked_as_reader(client: TestClient, session: Session, email: str, *profiles: str) -> list[int]:
    """Open a manage link in this client, as a reader does: the page sets the reader cookie."""
    subscriber_id, ids = reader(session, email, *profiles)
    owner = session.get(Subscriber, subscriber_id)
    assert owner is not None
    token = service.new_manage_token(session, owner)
    session.commit()
    assert client.get(f"/manage/{token}").status_code == 200
    return ids


def test_a_paper_page_offers_votes_only_to_a_reader(client: TestClient, session: Session, paper: str) -> None:
    stranger = client.get(f"/papers/{paper}")
    assert 'action="/papers/2601.99999/vote"' not in stranger.text
    assert "to teach it with “more like this” and “less like this”" in stranger.text

    speech, vision = marked_as_reader(client, session, "r@example.org", "speech", "vision")
    page = client.get(f"/papers/{paper}")

    assert 'action="/papers/2601.99999/vote"' in page.text
    assert f'<option value="{speech}">speech</option><option value="{vision}">vision</option>' in page.text


def test_a_readers_vote_from_the_paper_page_is_recorded(
    client: TestClient, session: Session, paper: str
) -> None:
    [speech, vision] = marked_as_reader(client, session, "r@example.org", "speech", "vision")
    csrf = csrf_from(client.get(f"/papers/{paper}").text)

    response = client.post(f"/papers/{paper}/vote", data={"vote": "1", "profile": str(vision), "csrf": csrf})

    assert response.status_code == 200
    assert "Recorded: your “vision” section will show more papers like this one" in response.text
    assert votes(session) == [(vision, paper, 1)]
    assert stale(session, vision)
    assert not stale(session, speech)


def test_a_paper_page_vote_is_refused_without_csrf_cookie_or_own_profile(
    client: TestClient, session: Session, paper: str
) -> None:
    [speech] = marked_as_reader(client, session, "r@example.org", "speech")
    _, [theirs] = reader(session, "other@example.org", "theirs")
    csrf = csrf_from(client.get(f"/papers/{paper}").text)
    url = f"/papers/{paper}/vote"

    no_csrf = client.post(url, data={"vote": "1", "profile": str(speech)})
    not_theirs = client.post(url, data={"vote": "1", "profile": str(theirs), "csrf": csrf})
    bad_vote = client.post(url, data={"vote": "2", "profile": str(speech), "csrf": csrf})
    no_way = client.post(url, data={"vote": "0", "profile": str(speech), "csrf": csrf})  # neither button
    client.cookies.clear()
    no_cookie = client.post(url, data={"vote": "1", "profile": str(speech), "csrf": csrf})
    client.cookies.set(COOKIE_NAME, "forged")
    forged_cookie = client.post(url, data={"vote": "1", "profile": str(speech), "csrf": csrf})

    assert no_csrf.status_code == 400
    assert not_theirs.status_code == 403
    assert bad_vote.status_code == no_way.status_code == 400
    assert forged_cookie.status_code == 403
    assert no_cookie.status_code == 403
    assert "open the manage link from your digest first" in no_cookie.text
    assert votes(session) == []


# --- view in browser ----------------------------------------------------------------------------


def view_link(delivery_id: int, *, purpose: LinkPurpose = LinkPurpose.VIEW) -> str:
    return "/digest/" + sign(get_settings().resolved_secret_key(), purpose, {"d": delivery_id})


def test_the_view_link_shows_the_digest_html_with_styles_and_no_script(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []

    def view_html(session: Session, *, delivery_id: int, settings: object) -> ViewedDigest | None:
        asked.append(delivery_id)
        html = '<html><body style="color:#123"><style>p{margin:0}</style><p>Trending</p></body></html>'
        return ViewedDigest(html=html, reader_key="k")

    monkeypatch.setattr(digest_service, "view_html", view_html)

    response = client.get(view_link(42))

    assert response.status_code == 200
    assert asked == [42]
    assert "<p>Trending</p>" in response.text
    policy = response.headers["content-security-policy"]
    assert policy == digest_view.EMAIL_POLICY
    assert "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy
    assert policy.startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "private, no-store"


def test_a_forged_expired_or_empty_view_link_shows_no_digest(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digest_service, "view_html", lambda session, *, delivery_id, settings: None)

    assert client.get(view_link(42)).status_code == 404, "no such delivery, or it carried nothing"
    assert client.get(view_link(42, purpose=LinkPurpose.VOTE)).status_code == 404
    assert client.get("/digest/not-a-signed-link").status_code == 404
    monkeypatch.setitem(signing.MAX_AGE_SECONDS, LinkPurpose.VIEW, -1)
    expired = client.get(view_link(42))
    assert expired.status_code == 410
    assert "This digest link has expired" in expired.text


def test_the_view_route_asks_the_digest_service_for_a_delivery_that_does_not_exist(
    client: TestClient,
) -> None:
    """The real view_html, not a stand-in: an unknown delivery is a 404, never a 500."""
    assert client.get(view_link(987654)).status_code == 404


def test_no_profile_means_no_vote_buttons(client: TestClient, session: Session, paper: str) -> None:
    subscriber, _ = reader(session, "r@example.org")
    assert repository.profiles(session, subscriber) == []

    page = client.get(vote_link({"s": subscriber, "p": None, "paper": paper, "v": 1}))

    assert page.status_code == 200
    assert "You have no interest profiles to teach" in page.text
    assert "<button" not in page.text.split("<main>")[1]


def test_the_paper_pages_vote_form_works_for_an_id_with_url_characters(
    client: TestClient, session: Session
) -> None:
    """A JSONL id is kept as written ("openreview:forum?id=Xy12"): the page's links and its vote form
    must quote it, or the form posts to /papers/openreview:forum and the vote is lost."""
    odd = "openreview:forum?id=Xy12#v2"
    make_paper(session, id=odd, title="An OpenReview paper")
    session.commit()
    [speech] = marked_as_reader(client, session, "r@example.org", "speech")
    page = client.get("/papers/" + quote(odd, safe=""))
    action = re.search(r'<form action="([^"]+)" method="post" id="vote"', page.text)
    assert action is not None

    response = client.post(
        html.unescape(action.group(1)),
        data={"vote": "1", "profile": str(speech), "csrf": csrf_from(page.text)},
    )

    assert response.status_code == 200
    assert votes(session) == [(speech, odd, 1)]
    back = re.search(r'<a href="([^"]+)">Back to the paper</a>', response.text)
    assert back is not None
    assert client.get(html.unescape(back.group(1))).status_code == 200
