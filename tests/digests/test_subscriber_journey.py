"""The whole subscriber journey against a real SMTP server (aiosmtpd) in the test process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.digests.mailer import SmtpMailer
from papertide.models import DigestDelivery, DigestItem, Subscriber, SubscriberStatus, SubscriberToken
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.helpers import Inbox, csrf_from, free_port, link_token, subscribe_and_confirm, subscriber_by_email

DAY_ONE = date(2026, 11, 24)
DAY_TWO = date(2026, 11, 25)


@pytest.fixture
def client(
    sample_database: str, real_encoder: object, smtp: tuple[Inbox, SmtpMailer]
) -> Iterator[TestClient]:
    app = create_app(encoder_provider=lambda: real_encoder, mailer=smtp[1])  # type: ignore[arg-type,return-value]
    with TestClient(app) as test_client:
        yield test_client


def test_subscribe_confirm_digest_once_unsubscribe(
    client: TestClient, smtp: tuple[Inbox, SmtpMailer], real_encoder: object, session: Session
) -> None:
    inbox, mailer = smtp
    form = client.get("/subscribe")
    sent = client.post(
        "/subscribe",
        data={
            "email": "Reader@Example.org",
            "interests": "language model agents, video generation",
            "frequency": "daily",
            "csrf": csrf_from(form.text),
        },
    )
    assert sent.status_code == 200
    assert "Check your inbox" in sent.text

    # Only the confirmation arrives, and a digest run sends nothing to an unconfirmed address.
    assert jobs.send_digests(digest_date=DAY_ONE, mailer=mailer, encoder=real_encoder).sent == 0  # type: ignore[arg-type]
    assert [m["Subject"] for m in inbox.messages] == ["Confirm your papertide digest"]
    confirm_token = link_token(inbox.messages[0], "confirm")

    page = client.get(f"/confirm/{confirm_token}")  # what a mail scanner does: confirms nothing
    assert subscriber_by_email(session, "reader@example.org").status == SubscriberStatus.PENDING
    confirmed = client.post(f"/confirm/{confirm_token}", data={"csrf": csrf_from(page.text)})
    assert confirmed.status_code == 200
    assert subscriber_by_email(session, "reader@example.org").status == SubscriberStatus.CONFIRMED

    first = jobs.send_digests(digest_date=DAY_ONE, mailer=mailer, encoder=real_encoder)  # type: ignore[arg-type]
    assert first.sent == 1
    digest = inbox.messages[-1]
    assert digest["To"] == "reader@example.org"
    assert digest.get_content_type() == "multipart/alternative"
    assert {part.get_content_type() for part in digest.iter_parts()} == {"text/plain", "text/html"}
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(digest["List-Unsubscribe"]).strip().startswith("<http://testserver/unsubscribe/")
    text = digest.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "upvotes" in text
    assert "The newest data is from 21 Aug 2026" in text
    unsubscribe_token = link_token(digest, "unsubscribe")

    assert jobs.send_digests(digest_date=DAY_ONE, mailer=mailer, encoder=real_encoder).sent == 0  # type: ignore[arg-type]
    assert len(inbox.messages) == 2

    client.get(f"/unsubscribe/{unsubscribe_token}")  # a GET changes nothing
    assert subscriber_by_email(session, "reader@example.org").status == SubscriberStatus.CONFIRMED

    one_click = client.post(
        f"/unsubscribe/{unsubscribe_token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    assert subscriber_by_email(session, "reader@example.org").status == SubscriberStatus.UNSUBSCRIBED
    assert jobs.send_digests(digest_date=DAY_TWO, mailer=mailer, encoder=real_encoder).sent == 0  # type: ignore[arg-type]
    assert len(inbox.messages) == 2


def test_the_next_digest_never_repeats_a_paper(
    client: TestClient, smtp: tuple[Inbox, SmtpMailer], session: Session, fake_encoder: object
) -> None:
    inbox, mailer = smtp
    subscribe_and_confirm(client, inbox, "a@example.org")

    for day in (DAY_ONE, DAY_TWO):
        assert jobs.send_digests(digest_date=day, mailer=mailer, encoder=fake_encoder).sent == 1  # type: ignore[arg-type]

    session.expire_all()
    sent_ids = list(session.scalars(select(DigestItem.paper_id)))
    assert len(sent_ids) == 16
    assert len(set(sent_ids)) == 16


def test_an_smtp_failure_is_recorded_and_retried_by_a_later_run(
    client: TestClient, smtp: tuple[Inbox, SmtpMailer], session: Session, fake_encoder: object
) -> None:
    inbox, mailer = smtp
    subscribe_and_confirm(client, inbox, "b@example.org")
    now = datetime.now(UTC)

    broken = SmtpMailer(f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    failed = jobs.send_digests(digest_date=DAY_ONE, mailer=broken, encoder=fake_encoder, now=now)  # type: ignore[arg-type]
    assert (failed.sent, failed.deferred, failed.failed) == (0, 1, 0)
    assert "refused mail to b@example.org" in failed.errors[0]
    session.expire_all()
    assert session.scalars(select(DigestDelivery.status)).one() == "deferred"

    retried = jobs.send_digests(
        digest_date=DAY_ONE,
        mailer=mailer,
        encoder=fake_encoder,  # type: ignore[arg-type]
        now=now + timedelta(minutes=5),
    )
    assert retried.sent == 1
    assert len(inbox.messages) == 2


def test_subscribing_again_looks_the_same_and_mails_a_confirmed_address_its_manage_link(
    client: TestClient, smtp: tuple[Inbox, SmtpMailer], session: Session
) -> None:
    inbox, _ = smtp
    token = subscribe_and_confirm(client, inbox, "c@example.org")
    form = client.get("/subscribe")

    again = client.post("/subscribe", data={"email": "c@example.org", "csrf": csrf_from(form.text)})
    fresh = client.post("/subscribe", data={"email": "d@example.org", "csrf": csrf_from(form.text)})

    assert again.text.replace("c@example.org", "X") == fresh.text.replace("d@example.org", "X")
    # The confirmed address gets a link to change its digest; the new one a confirmation.
    assert [(m["To"], m["Subject"]) for m in inbox.messages[1:]] == [
        ("c@example.org", "Manage your papertide digest"),
        ("d@example.org", "Confirm your papertide digest"),
    ]
    assert client.get(f"/manage/{link_token(inbox.messages[1], 'manage')}").status_code == 200
    assert all(len(t.token_hash) == 64 for t in session.scalars(select(SubscriberToken)))
    assert token not in {t.token_hash for t in session.scalars(select(SubscriberToken))}


@pytest.mark.parametrize(
    ("method", "path", "data", "status", "text"),
    [
        (
            "post",
            "/subscribe",
            {"email": "not-an-email", "csrf": "VALID"},
            422,
            "That email address is not valid",
        ),
        # Valid addresses whose encoded word a To header decodes to another address (or to two):
        # the email would go to victim@example.com past its hourly limit, or carry a Bcc line.
        (
            "post",
            "/subscribe",
            {"email": "=?utf-8?q?victim?=@example.com", "csrf": "VALID"},
            422,
            "it would read as another address",
        ),
        (
            "post",
            "/subscribe",
            {"email": "=?utf-8?q?a=0d=0abcc=3a_evil=40evil=2eorg?=@example.com", "csrf": "VALID"},
            422,
            "it would read as another address",
        ),
        ("post", "/subscribe", {"email": "e@example.org"}, 400, "security token is missing"),
        (
            "post",
            "/subscribe",
            {"email": "e@example.org", "csrf": "forged"},
            400,
            "security token is not valid",
        ),
        (
            "post",
            "/subscribe",
            {"email": "e@example.org", "frequency": "hourly", "csrf": "VALID"},
            422,
            "daily or weekly",
        ),
        ("get", "/confirm/unknown-token", None, 404, "This link is not valid"),
        ("post", "/confirm/unknown-token", {"csrf": "VALID_CONFIRM"}, 404, "This link is not valid"),
        ("get", "/unsubscribe/unknown-token", None, 404, "This link is not valid"),
        ("post", "/unsubscribe/unknown-token", None, 404, "This link is not valid"),
    ],
)
def test_bad_subscriber_input_gets_a_clear_4xx_and_stores_nothing(
    client: TestClient,
    smtp: tuple[Inbox, SmtpMailer],
    session: Session,
    method: str,
    path: str,
    data: dict[str, str] | None,
    status: int,
    text: str,
) -> None:
    from papertide.config import get_settings
    from papertide.web.deps import csrf_token

    if data:
        tokens = {
            "VALID": csrf_token(get_settings(), "subscribe"),
            "VALID_CONFIRM": csrf_token(get_settings(), "confirm"),
        }
        data = {key: tokens.get(value, value) for key, value in data.items()}
    response = client.request(method.upper(), path, data=data)

    assert response.status_code == status
    assert text in response.text
    assert smtp[0].messages == []
    assert session.scalars(select(Subscriber)).all() == []


def test_an_address_the_email_cannot_carry_is_a_clear_refusal_not_a_crash() -> None:
    """The confirmation is written inside the sign-up's transaction: should the email package
    refuse the address (a CR or LF in a header), the sign-up is refused by name and rolled back."""
    from papertide.config import get_settings
    from papertide.models import Frequency
    from papertide.subscribers import service as subscriber_service
    from papertide.web.routes.subscribe import _email_for

    outcome = subscriber_service.SubscribeOutcome(
        subscriber=Subscriber(email="a\r\nbcc: evil@evil.org"),
        confirm_token="t",
        manage_token="m",
        interests=[],
        frequency=Frequency.DAILY,
    )
    with pytest.raises(subscriber_service.SubscriptionError, match="cannot be written in an email's To line"):
        _email_for(get_settings(), outcome)
