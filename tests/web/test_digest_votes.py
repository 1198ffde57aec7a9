"""Votes from a sent digest's links, `/vote/<signed digest>/<rank>/<more|less>`: the digest is signed
once, the item is found in the ledger by its rank, a scanner's GET records nothing, and the vote
lands in the profile whose section carried the paper."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from papertide import db, signing
from papertide.config import get_settings
from papertide.digests import build
from papertide.models import DeliveryStatus, DigestDelivery, DigestItem, Subscriber
from papertide.signing import LinkPurpose, sign
from papertide.subscribers import preferences
from papertide.subscribers import repository as subscriber_repository
from papertide.web.app import create_app
from tests.factories import make_paper
from tests.web.test_votes import reader, stale, votes

SPEECH_PAPER, TRENDING_PAPER = "2601.11111", "2601.22222"


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


def sent_digest(
    session: Session, subscriber_id: int, speech: int, *, created_at: datetime | None = None
) -> int:
    """A sent digest (committed): the speech section's paper at rank 1, a Trending paper at rank 2."""
    make_paper(session, id=SPEECH_PAPER, title="A paper about <b>speech</b>")
    make_paper(session, id=TRENDING_PAPER, title="A trending paper")
    delivery = DigestDelivery(
        subscriber_id=subscriber_id,
        digest_date=date(2026, 11, 24),
        status=DeliveryStatus.SENT,
        created_at=created_at or datetime.now(UTC),
    )
    session.add(delivery)
    session.flush()
    session.add_all(
        [
            DigestItem(
                delivery_id=delivery.id,
                paper_id=SPEECH_PAPER,
                rank=1,
                reason="matches 'speech'",
                section="speech",
                profile_id=speech,
            ),
            DigestItem(
                delivery_id=delivery.id,
                paper_id=TRENDING_PAPER,
                rank=2,
                reason="#1 this week",
                section="Trending",
            ),
        ]
    )
    session.commit()
    return delivery.id


def link(
    delivery_id: object,
    rank: object = 1,
    direction: str = "more",
    *,
    key: object = None,
    purpose: LinkPurpose | None = None,
) -> str:
    """The link as a digest carries it; `key`: the reader key it signs (default: the present one
    of the delivery's reader)."""
    if key is None:
        key = reader_key_of(delivery_id)
    payload = {"d": delivery_id, "r": key}
    signed = sign(get_settings().resolved_secret_key(), purpose or LinkPurpose.DIGEST_VOTE, payload)
    return f"/vote/{signed}/{rank}/{direction}"


def reader_key_of(delivery_id: object) -> str:
    with db.session_factory()() as session:
        delivery = (
            session.get(DigestDelivery, delivery_id)
            if type(delivery_id) is int and delivery_id < 2**63
            else None
        )
        if delivery is None:
            return "no-such-reader"
        owner = session.get_one(Subscriber, delivery.subscriber_id)
        return preferences.reader_key(owner.id, preferences.subscription_stamp(owner))


def test_a_scanners_get_records_nothing_and_the_button_votes_in_the_items_profile(
    client: TestClient, session: Session
) -> None:
    subscriber, [speech, _] = reader(session, "r@example.org", "speech", "vision")
    more = link(sent_digest(session, subscriber, speech), 1, "more")

    page = client.get(more)
    client.get(more)  # link scanners follow every link, sometimes twice

    assert page.status_code == 200
    assert "More like this, for “speech”" in page.text
    assert "A paper about &lt;b&gt;speech&lt;/b&gt;" in page.text
    assert f'action="{more}"' in page.text
    assert votes(session) == []

    assert client.post(more).status_code == 200
    assert votes(session) == [(speech, SPEECH_PAPER, 1)]
    assert stale(session, speech), "the digest run retrains the profile"


def test_less_like_this_from_the_same_digest_replaces_the_vote(client: TestClient, session: Session) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    delivery = sent_digest(session, subscriber, speech)

    client.post(link(delivery, 1, "more"))
    less = client.post(link(delivery, 1, "less"))

    assert "will show fewer papers like this one" in less.text
    assert votes(session) == [(speech, SPEECH_PAPER, -1)]


def test_a_trending_item_asks_which_profile_it_teaches(client: TestClient, session: Session) -> None:
    subscriber, [speech, vision] = reader(session, "r@example.org", "speech", "vision")
    _, [theirs] = reader(session, "other@example.org", "theirs")
    trending = link(sent_digest(session, subscriber, speech), 2, "less")

    page = client.get(trending)
    refused = client.post(trending, data={"profile": str(theirs)})
    recorded = client.post(trending, data={"profile": str(vision)})

    assert "Less like this, for “speech”" in page.text
    assert "Less like this, for “vision”" in page.text
    assert refused.status_code == 403
    assert recorded.status_code == 200
    assert votes(session) == [(vision, TRENDING_PAPER, -1)]


def test_a_digest_of_an_earlier_subscription_votes_for_nobody(client: TestClient, session: Session) -> None:
    subscriber, [speech] = reader(session, "back@example.org", "speech")
    owner = session.get_one(Subscriber, subscriber)
    owner.confirmed_at = datetime.now(UTC) - timedelta(days=20)
    session.commit()
    delivery = sent_digest(session, subscriber, speech, created_at=owner.confirmed_at)
    sent_then = link(delivery)
    # Left, then signed up and confirmed again: even within minutes of the old digest's making.
    owner.confirmed_at = datetime.now(UTC) - timedelta(days=20) + timedelta(minutes=1)
    session.commit()

    for response in (client.get(sent_then), client.post(sent_then)):
        assert response.status_code == 410
        assert "earlier subscription of this address" in response.text
    assert client.post(link(delivery)).status_code == 200, "a digest of the present subscription votes"
    assert votes(session) == [(speech, SPEECH_PAPER, 1)]


def test_a_link_whose_delivery_id_names_another_readers_digest_votes_for_nobody(
    client: TestClient, session: Session
) -> None:
    """A database restored from a backup, the secret key kept: an old email's delivery id may name
    another reader's digest now. The link signs whose digest it was."""
    alice, _ = reader(session, "alice@example.org", "speech")
    bob, [bobs, _] = reader(session, "bob@example.org", "speech", "vision")
    delivery = sent_digest(session, bob, bobs)
    alices_old_link = link(delivery, 2, "less", key=reader_key_of_subscriber(session, alice))

    page = client.get(alices_old_link)
    vote = client.post(alices_old_link, data={"profile": str(bobs)})

    assert (page.status_code, vote.status_code) == (410, 410)
    assert "vision" not in page.text, "another reader's profiles are not shown"
    assert votes(session) == []


def view_link(delivery_id: int, key: str | None) -> str:
    payload: dict[str, object] = {"d": delivery_id} if key is None else {"d": delivery_id, "r": key}
    return "/digest/" + sign(get_settings().resolved_secret_key(), LinkPurpose.VIEW, payload)


def test_a_view_link_shows_its_readers_digest_and_nobody_elses(client: TestClient, session: Session) -> None:
    """The view link signs whose digest it was, as the vote links do: after a restore from a
    backup reissued the id, or once the address has left and come back, it shows nothing."""
    alice, _ = reader(session, "alice@example.org", "speech")
    bob, [bobs, _] = reader(session, "bob@example.org", "speech", "vision")
    delivery = sent_digest(session, bob, bobs)

    own = client.get(view_link(delivery, reader_key_of(delivery)))
    alices_old_link = client.get(view_link(delivery, reader_key_of_subscriber(session, alice)))
    before_reader_keys = client.get(view_link(delivery, None))

    assert own.status_code == 200
    assert "A paper about &lt;b&gt;speech&lt;/b&gt;" in own.text
    assert alices_old_link.status_code == 410
    assert "earlier subscription" in alices_old_link.text
    assert "speech" not in alices_old_link.text
    assert before_reader_keys.status_code == 200, "a link sent before view links named their reader"
    assert client.get(view_link(delivery, "")).status_code == 410


def test_a_sent_digests_view_link_names_its_reader(session: Session) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    owner = session.get_one(Subscriber, subscriber)
    delivery = sent_digest(session, subscriber, speech)
    signed = build.view_url(get_settings(), subscriber=owner, delivery_id=delivery).rsplit("/", 1)[1]

    verified = signing.verify(get_settings().resolved_secret_key(), LinkPurpose.VIEW, signed)
    assert verified.payload == {"d": delivery, "r": reader_key_of(delivery)}


def reader_key_of_subscriber(session: Session, subscriber_id: int) -> str:
    owner = session.get_one(Subscriber, subscriber_id)
    return preferences.reader_key(owner.id, preferences.subscription_stamp(owner))


def test_a_vote_for_a_deleted_profile_is_410_and_says_why(client: TestClient, session: Session) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    delivery = sent_digest(session, subscriber, speech)
    preferences.delete_profile(session, subscriber=session.get_one(Subscriber, subscriber), profile_id=speech)
    session.commit()

    for response in (client.get(link(delivery)), client.post(link(delivery))):
        assert response.status_code == 410
        assert "The interest profile this paper was sent for has been deleted" in response.text
    assert votes(session) == []


@pytest.mark.parametrize(
    "how",
    [
        "tampered",
        "other purpose",
        "no such rank",
        "rank zero",
        "rank not a number",
        "rank too long",
        "another direction",
        "no such delivery",
        "delivery past bigint",
        "delivery not a number",
        "no reader key",
    ],
)
def test_a_link_that_names_no_item_of_a_digest_is_404_and_records_nothing(
    client: TestClient, session: Session, how: str
) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    delivery = sent_digest(session, subscriber, speech)
    bad = {
        "tampered": link(delivery).replace("/1/more", "xx/1/more"),
        "other purpose": link(delivery, purpose=LinkPurpose.VIEW),  # the forwardable view link's key
        "no such rank": link(delivery, 3),
        "rank zero": link(delivery, 0),
        "rank not a number": link(delivery, "\N{FULLWIDTH DIGIT ONE}"),  # str.isdigit says yes
        "rank too long": link(delivery, "0" * 40 + "1"),
        "another direction": link(delivery, 1, "most"),
        "no such delivery": link(delivery + 1),
        "delivery past bigint": link(2**64),
        "delivery not a number": link("1"),
        "no reader key": link(delivery, key=7),
    }[how]

    for response in (client.get(bad), client.post(bad)):
        assert response.status_code == 404
        assert "This vote link is not valid" in response.text
    assert votes(session) == []


def test_an_expired_digest_link_is_410_and_says_so(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscriber, [speech] = reader(session, "r@example.org", "speech")
    expired = link(sent_digest(session, subscriber, speech))
    monkeypatch.setitem(signing.MAX_AGE_SECONDS, LinkPurpose.DIGEST_VOTE, -1)  # every link is past its age

    for response in (client.get(expired), client.post(expired)):
        assert response.status_code == 410
        assert "This vote link has expired" in response.text
    assert votes(session) == []


def test_a_vote_whose_profile_is_deleted_in_another_tab_meanwhile_is_410_not_500(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vote's request has read the item and its profile; the manage page deletes the profile
    before the vote is stored."""
    subscriber, [speech, _] = reader(session, "r@example.org", "speech", "vision")
    more = link(sent_digest(session, subscriber, speech), 1, "more")
    record_vote = preferences.record_vote

    def deleted_in_another_tab_first(s: Session, **kwargs: Any) -> None:
        with db.session_factory()() as manage:
            owner = subscriber_repository.lock(manage, subscriber)
            assert owner is not None
            preferences.delete_profile(manage, subscriber=owner, profile_id=speech)
            manage.commit()
        record_vote(s, **kwargs)

    monkeypatch.setattr(preferences, "record_vote", deleted_in_another_tab_first)
    with TestClient(create_app(encoder_provider=lambda: None), raise_server_exceptions=False) as client:
        answer = client.post(more)

    assert answer.status_code == 410
    assert "has been deleted" in answer.text
    assert votes(session) == []
