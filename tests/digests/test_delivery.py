"""A digest run against a real SMTP server (aiosmtpd): the ledger commits `sending` before the
hand-off and holds no transaction during it; 4xx replies come back later with the same message;
a 5xx for a recipient suppresses the address; two senders at once send each digest once."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from papertide import db
from papertide.db import database_url
from papertide.digests.mailer import Envelope, MailSession, SmtpMailer
from papertide.models import (
    DeliveryStatus,
    DigestDelivery,
    InterestProfile,
    JobRun,
    MailSuppression,
    Subscriber,
    SubscriberStatus,
)
from papertide.subscribers import service as subscriber_service
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.factories import FakeEncoder
from tests.helpers import Inbox, confirmed_sign_up, csrf_from, digest_ready, link_token, smtp_server

DAY = date(2026, 11, 24)


class Replying(Inbox):
    """Answers RCPT for some addresses, or DATA for the first few messages, with a set reply."""

    def __init__(self, *, rcpt: dict[str, str] | None = None, data: list[str] | None = None) -> None:
        super().__init__()
        self.rcpt = rcpt or {}
        self.data = list(data or [])

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.data:
            return self.data.pop(0)
        return await super().handle_DATA(server, session, envelope)


def ledger(session: Session) -> dict[str, DigestDelivery]:
    """Every delivery, by the subscriber's address."""
    session.expire_all()
    rows = session.scalars(select(DigestDelivery).order_by(DigestDelivery.id)).all()
    emails = {s.id: s.email for s in session.scalars(select(Subscriber))}
    return {emails[r.subscriber_id]: r for r in rows}


def psycopg_url() -> str:
    return database_url().replace("postgresql+psycopg://", "postgresql://", 1)


class Watching:
    """An SMTP mailer that looks at the database from outside while each message is with the
    mail server."""

    def __init__(self, url: str) -> None:
        self.smtp = SmtpMailer(url)
        self.seen: list[tuple[str, int, bool]] = []

    def send(self, message: EmailMessage) -> None:
        self.smtp.send(message)

    @contextmanager
    def session(self) -> Iterator[MailSession]:
        with self.smtp.session() as post:
            yield WatchedSession(self, post)

    def look(self, message_id: str) -> None:
        with psycopg.connect(psycopg_url(), autocommit=True) as conn:
            open_transactions = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            ).fetchone()
            with conn.transaction():
                try:
                    row = conn.execute(
                        "SELECT status FROM digest_delivery WHERE message_id = %s FOR UPDATE NOWAIT",
                        (message_id,),
                    ).fetchone()
                    status, unlocked = (str(row[0]) if row else "not committed"), True
                except psycopg.errors.LockNotAvailable:
                    status, unlocked = "locked", False
        self.seen.append((status, int(open_transactions[0]) if open_transactions else -1, unlocked))


class WatchedSession:
    def __init__(self, watching: Watching, post: MailSession) -> None:
        self.watching = watching
        self.post = post

    def send(self, envelope: Envelope) -> None:
        headers = BytesParser(policy=policy.default).parsebytes(envelope.data, headersonly=True)
        self.watching.look(str(headers["Message-ID"]))
        self.post.send(envelope)


def test_no_transaction_is_open_while_the_mail_server_has_the_message(
    database: str, session: Session
) -> None:
    digest_ready(["a@example.org", "b@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mailer = Watching(f"smtp://127.0.0.1:{port}")
        result = jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None)

    assert result.sent == 2
    # Committed as `sending` before the hand-off, row unlocked, no session idle in a transaction.
    assert mailer.seen == [("sending", 0, True), ("sending", 0, True)]


def test_a_digest_carries_a_message_id_derived_from_its_delivery(database: str, session: Session) -> None:
    digest_ready(["a@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        jobs.send_digests(digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None)

    row = ledger(session)["a@example.org"]
    assert inbox.messages[0]["Message-ID"] == row.message_id
    assert re.fullmatch(rf"<digest-{row.id}-20261124\.[a-z2-7]{{16}}@localhost>", str(row.message_id))


def test_a_4xx_reply_is_retried_after_a_backoff_with_the_same_message(
    database: str, session: Session
) -> None:
    digest_ready(["a@example.org", "b@example.org"])
    now = datetime.now(UTC)
    inbox = Replying(data=["451 4.3.0 Mailbox busy, try again later"] * 2)
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        first = jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None, now=now)
        deferred = ledger(session)
        early = jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=4))
        later = jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=5))

    assert (first.sent, first.deferred, first.failed) == (0, 2, 0)
    assert {r.status for r in deferred.values()} == {DeliveryStatus.DEFERRED}
    assert {r.next_attempt_at for r in deferred.values()} == {now + timedelta(minutes=5)}
    assert "451 4.3.0 Mailbox busy" in (deferred["a@example.org"].error or "")
    assert early is None, "nothing is due before the backoff ends"
    assert later is not None
    assert later.sent == 2
    assert sorted(str(m["Message-ID"]) for m in inbox.messages) == sorted(
        str(r.message_id) for r in deferred.values()
    ), "the retry sends the message composed for the first attempt"
    assert {r.status for r in ledger(session).values()} == {DeliveryStatus.SENT}


def test_the_next_days_run_also_sends_what_an_earlier_date_left_deferred(
    database: str, session: Session
) -> None:
    digest_ready(["a@example.org"])
    now = datetime.now(UTC)
    inbox = Replying(data=["421 4.7.0 Too many connections, try again later"])
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None, now=now)
        next_day = jobs.send_digests(
            digest_date=DAY + timedelta(days=1), mailer=mailer, encoder=None, now=now + timedelta(hours=1)
        )

    assert next_day.sent == 2
    assert [str(m["Subject"]).rpartition(" for ")[2] for m in inbox.messages] == ["Tue 24 Nov", "Wed 25 Nov"]


def test_a_5xx_for_a_recipient_suppresses_the_address_and_shows_it_masked_on_status(
    database: str, session: Session
) -> None:
    digest_ready(["gone@example.org", "here@example.org"])
    inbox = Replying(rcpt={"gone@example.org": "550 5.1.1 <gone@example.org>: Recipient address rejected"})
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        first = jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None)
        second = jobs.send_digests(digest_date=DAY + timedelta(days=1), mailer=mailer, encoder=None)
    page = TestClient(create_app(encoder_provider=lambda: None)).get("/status").text

    assert (first.sent, first.failed) == (1, 1)
    assert ledger(session)["gone@example.org"].status == DeliveryStatus.FAILED
    assert second.sent == 1, "the suppressed address gets no further digest"
    assert [m["To"] for m in inbox.messages] == ["here@example.org", "here@example.org"]
    assert "1 suppressed address" in page
    assert "g***@example.org" in page
    assert "550 5.1.1 &lt;g***@example.org&gt;: Recipient address rejected" in page
    assert "gone@example.org" not in page


def test_a_suppressed_reader_is_told_so_and_a_link_mailed_since_starts_the_digests_again(
    mail_client: TestClient, smtp: tuple[Inbox, SmtpMailer], session: Session
) -> None:
    """One 5.1.1 on a bad day at the reader's provider suppresses the address. Their manage page
    must say so (not promise a digest that never comes); a manage link mailed *after* the refusal
    reached them, so opening it lifts the suppression, and the next run sends their digest. A link
    from before the refusal proves nothing and lifts nothing."""
    inbox = smtp[0]
    digest_ready([])
    _, confirmed = confirmed_sign_up(mail_client, inbox, "reader@example.org")
    old_manage = re.search(r'href="(/manage/[^"]+)" id="manage"', confirmed.text)
    assert old_manage, "the confirmed page links the manage page"
    bouncing = Replying(rcpt={"reader@example.org": "550 5.1.1 <reader@example.org>: mailbox unavailable"})
    with smtp_server(bouncing) as port:
        jobs.send_digests(digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None)

    page = mail_client.get(old_manage.group(1)).text
    assert 'id="suppressed"' in page
    assert "550 5.1.1 &lt;reader@example.org&gt;: mailbox unavailable" in page
    assert 'id="next-digest"' not in page, "no digest is promised to a suppressed address"
    assert session.scalars(select(MailSuppression.email)).all() == ["reader@example.org"]

    form = mail_client.get("/subscribe")
    mail_client.post("/subscribe", data={"email": "reader@example.org", "csrf": csrf_from(form.text)})
    page = mail_client.get(f"/manage/{link_token(inbox.messages[-1], 'manage')}").text
    assert 'id="suppressed"' not in page
    assert 'id="next-digest"' in page
    session.expire_all()
    assert session.scalars(select(MailSuppression)).all() == []
    before = len(inbox.messages)
    result = jobs.send_digests(digest_date=DAY + timedelta(days=1), mailer=smtp[1], encoder=None)
    assert result.sent == 1
    assert [str(m["To"]) for m in inbox.messages[before:]] == ["reader@example.org"]


def test_confirming_a_sign_up_mailed_after_a_suppression_lifts_it(
    mail_client: TestClient, inbox: Inbox, session: Session
) -> None:
    """An address refused for good under an earlier subscription signs up again: the confirmation
    reached it, so once confirmed it gets digests."""
    session.add(MailSuppression(email="back@example.org", reason="550 5.1.1 no such user"))
    session.commit()
    digest_ready([])
    _, confirmed = confirmed_sign_up(mail_client, inbox, "back@example.org")

    assert 'id="next-digest"' in confirmed.text
    session.expire_all()
    assert session.scalars(select(MailSuppression)).all() == []


def test_a_relay_refusing_everyone_without_an_enhanced_code_fails_and_suppresses_nobody(
    database: str, session: Session
) -> None:
    """Exim's default refusal of a relay it does not serve, word for word: `550 relay not
    permitted`. Every recipient alike: nobody suppressed, no digest failed for good; all wait for a
    retry inside the window (the operator fixes SMTP_URL meanwhile)."""
    readers = [f"r{i}@example.org" for i in range(4)]
    digest_ready(readers)
    inbox = Replying(rcpt=dict.fromkeys(readers, "550 relay not permitted"))
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    assert (result.sent, result.failed, result.deferred) == (0, 0, 4)
    assert {row.status for row in ledger(session).values()} == {DeliveryStatus.DEFERRED}
    assert session.scalars(select(MailSuppression)).all() == []


def test_addresses_a_server_without_smtputf8_cannot_take_fail_alone_and_the_run_goes_on(
    database: str, session: Session
) -> None:
    """The sign-up form takes josé@example.org; a relay without SMTPUTF8 cannot carry it. That is
    this address's failure, known before the server is asked, not the server's: three in a row
    must not trip the breaker and hold back everyone after them."""
    international = ["josé@example.org", "zoë@example.org", "åsa@example.org"]
    digest_ready([*international, "a@example.org", "b@example.org"])
    inbox = Inbox()
    with smtp_server(inbox, smtputf8=False) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    assert result.stopped is None
    assert (result.sent, result.failed, result.deferred) == (2, 3, 0)
    assert sorted(str(m["To"]) for m in inbox.messages) == ["a@example.org", "b@example.org"]
    rows = ledger(session)
    for address in international:
        row = rows[address]
        assert (row.status, row.next_attempt_at) == (DeliveryStatus.FAILED, None), "not retried"
        assert f"cannot take mail to {address}" in (row.error or "")
        assert "SMTPUTF8" in (row.error or "")
    assert session.scalars(select(MailSuppression)).all() == [], "the address itself may be fine"


def test_a_domain_beyond_ascii_reaches_a_server_without_smtputf8_in_its_ascii_form(
    database: str, session: Session
) -> None:
    """reader@bücher.example is reader@xn--bcher-kva.example to every mail server: written so, it
    needs no SMTPUTF8, and a relay without it delivers the digest instead of failing it for good."""
    digest_ready(["reader@bücher.example"])
    inbox = Inbox()
    with smtp_server(inbox, smtputf8=False) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    assert (result.sent, result.failed) == (1, 0)
    assert inbox.recipients == [["reader@xn--bcher-kva.example"]]
    assert str(inbox.messages[0]["To"]) == "reader@xn--bcher-kva.example"


def test_an_address_beyond_ascii_is_written_as_itself_in_the_to_header(
    database: str, session: Session
) -> None:
    """With SMTPUTF8 the digest reaches josé@example.org, and its To header carries the address in
    UTF-8 (RFC 6532), never an encoded word inside it (RFC 2047 §5 forbids it; mail clients show
    "=?utf-8?q?jos=C3=A9?=@example.org"). The From, an ASCII address, keeps its encoded name."""
    digest_ready(["josé@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:  # aiosmtpd offers SMTPUTF8
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    assert result.sent == 1
    head = inbox.raw[0].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    to_line = next(line for line in head.splitlines() if line.lower().startswith(b"to:"))
    assert to_line.strip() == "To: josé@example.org".encode()
    assert str(inbox.messages[0]["To"]) == "josé@example.org"


def test_two_senders_at_once_send_each_digest_once(database: str, session: Session) -> None:
    emails = [f"r{i}@example.org" for i in range(6)]
    digest_ready(emails)
    inbox = Slow()
    results = []
    with smtp_server(inbox) as port:
        threads = [
            threading.Thread(
                target=lambda: results.append(
                    jobs.send_digests(digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"))
                )
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert sorted(m["To"] for m in inbox.messages) == emails
    assert sum(r.sent for r in results) == 6
    runs = session.scalars(select(JobRun).where(JobRun.job == "digest")).all()
    assert len(runs) == 2, "both runs finish (their rescoring collided before: duplicate key)"


class Slow(Inbox):
    """Takes a moment per message, so that two senders overlap."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


class ExplodingEncoder:
    """The model fails for whoever needs it (a subscriber with interests)."""

    dim = 384

    @property
    def name(self) -> str:
        raise RuntimeError("CUDA fell over")

    def encode(self, texts: list[str]) -> object:
        raise RuntimeError("CUDA fell over")


def test_a_delivery_that_cannot_be_composed_is_put_off_and_the_others_go_out(
    database: str, session: Session
) -> None:
    digest_ready(["a@example.org", "b@example.org"])
    with db.session_factory()() as setup:
        reader = setup.scalars(select(Subscriber).where(Subscriber.email == "a@example.org")).one()
        setup.add(InterestProfile(subscriber_id=reader.id, name="speech", phrases=["speech"]))
        setup.commit()
    inbox = Inbox()
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY,
            mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"),
            encoder=ExplodingEncoder(),  # type: ignore[arg-type]
        )

    rows = ledger(session)
    assert (result.sent, result.deferred) == (1, 1)
    assert [m["To"] for m in inbox.messages] == ["b@example.org"]
    assert rows["a@example.org"].status == DeliveryStatus.DEFERRED
    assert "CUDA fell over" in (rows["a@example.org"].error or "")
    assert rows["a@example.org"].next_attempt_at is not None


def test_an_unsubscribe_closes_a_delivery_left_open_so_a_later_return_never_gets_it(
    database: str, session: Session
) -> None:
    digest_ready(["a@example.org"])
    now = datetime.now(UTC)
    inbox = Replying(data=["451 4.3.0 try again later"])
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None, now=now)
        with db.session_factory()() as change:
            # The sender died mid-hand-off (left `sending`), then the reader unsubscribed.
            change.execute(update(DigestDelivery).values(status=DeliveryStatus.SENDING))
            change.execute(update(Subscriber).values(status=SubscriberStatus.UNSUBSCRIBED))
            change.commit()
        jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=10))
        with db.session_factory()() as change:
            change.execute(update(Subscriber).values(status=SubscriberStatus.CONFIRMED))  # back, weeks later
            change.commit()
        jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=20))

    row = ledger(session)["a@example.org"]
    assert inbox.messages == []
    assert row.status == DeliveryStatus.FAILED
    assert "unsubscribed" in (row.error or "")


def test_a_digest_put_off_before_an_unsubscribe_never_goes_to_the_addresss_next_subscription(
    database: str, session: Session
) -> None:
    """Its links belong to the old subscription (its one-click unsubscribe answers 410 now), and
    the new subscription starts with its own digests."""
    digest_ready(["a@example.org"])
    now = datetime.now(UTC)
    inbox = Replying(data=["451 4.3.0 try again later"])
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None, now=now)  # deferred
        with db.session_factory()() as change:
            reader = change.scalars(select(Subscriber)).one()
            subscriber_service.stop(change, subscriber=reader, now=now + timedelta(minutes=1))
            change.commit()
        with db.session_factory()() as change:  # signs up again and confirms before the retry
            token = subscriber_service.subscribe(
                change, email="a@example.org", interests="", frequency="daily"
            ).confirm_token
            change.commit()
        assert token is not None
        with db.session_factory()() as change:
            subscriber_service.confirm(change, token, now=now + timedelta(minutes=10))
            change.commit()
        jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=15))

    row = ledger(session)["a@example.org"]
    assert inbox.messages == []
    assert row.status == DeliveryStatus.FAILED
    assert "unsubscribed" in (row.error or "")


class Connections(Inbox):
    """Counts the connections the messages came on, and closes each after `every` messages, the
    way a server with an idle timeout or a limit per connection does: at the next MAIL, with a
    421 or without a word."""

    def __init__(self, *, every: int | None = None, say: str | None = None) -> None:
        super().__init__()
        self.every, self.say = every, say
        self.connections = 0
        self.carried: dict[int, int] = {}

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # type: ignore[attr-defined]
        self.connections += 1
        return responses

    async def handle_MAIL(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        if self.every is not None and self.carried.get(id(session), 0) >= self.every:
            transport = server.transport  # type: ignore[attr-defined]
            if self.say is None:
                transport.close()
                return "250 OK"  # never arrives: the connection is gone
            asyncio.get_running_loop().call_soon(transport.close)
            return self.say
        envelope.mail_from = address  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.carried[id(session)] = self.carried.get(id(session), 0) + 1
        return await super().handle_DATA(server, session, envelope)


def test_one_smtp_connection_carries_every_digest_of_a_run(database: str, session: Session) -> None:
    emails = [f"r{i}@example.org" for i in range(5)]
    digest_ready(emails)
    inbox = Connections()
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    assert result.sent == 5
    assert sorted(m["To"] for m in inbox.messages) == emails
    assert inbox.connections == 1, "one connection (one EHLO, one login) for the whole run"


@pytest.mark.parametrize("say", [None, "421 4.7.0 Too many messages on one connection, closing"])
def test_a_connection_the_server_drops_mid_run_is_opened_again_and_no_digest_is_lost_or_doubled(
    database: str, session: Session, say: str | None
) -> None:
    emails = [f"r{i}@example.org" for i in range(7)]
    digest_ready(emails)
    inbox = Connections(every=3, say=say)
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    assert (result.sent, result.deferred, result.failed) == (7, 0, 0)
    assert sorted(m["To"] for m in inbox.messages) == emails, "each reader exactly once"
    assert inbox.connections == 3
    assert {r.status for r in ledger(session).values()} == {DeliveryStatus.SENT}


def test_a_run_encodes_its_readers_phrases_once_each_in_one_call_to_the_model(
    database: str, session: Session, fake_encoder: FakeEncoder
) -> None:
    """One call to the model for the whole run: per reader, its fixed cost per call made a run of
    10,000 readers spend minutes in the model."""
    digest_ready(["a@example.org", "b@example.org", "c@example.org", "d@example.org"])
    with db.session_factory()() as setup:
        readers = {s.email: s.id for s in setup.scalars(select(Subscriber))}
        for email, phrases in [
            ("a@example.org", ["world models", "speech synthesis"]),
            ("b@example.org", ["world models"]),
            ("c@example.org", ["diffusion models"]),
        ]:
            setup.add(InterestProfile(subscriber_id=readers[email], name="mine", phrases=phrases))
        setup.commit()
    jobs.embed(encoder=fake_encoder)
    fake_encoder.calls.clear()
    inbox = Inbox()
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=fake_encoder
        )

    assert result.sent == 4
    assert fake_encoder.calls == [["diffusion models", "speech synthesis", "world models"]]


class RecordedMeanwhile(Watching):
    """While each message is with the mail server, another sender (one that resumed the delivery
    after this one's lock was lost) records it failed."""

    def look(self, message_id: str) -> None:
        with psycopg.connect(psycopg_url(), autocommit=True) as conn:
            conn.execute(
                "UPDATE digest_delivery SET status = 'failed', error = 'recorded by the other sender'"
                " WHERE message_id = %s",
                (message_id,),
            )


def test_an_outcome_another_sender_recorded_meanwhile_is_kept_not_overwritten(
    database: str, session: Session
) -> None:
    digest_ready(["a@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=RecordedMeanwhile(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    row = ledger(session)["a@example.org"]
    assert len(inbox.messages) == 1
    assert (row.status, row.error) == (DeliveryStatus.FAILED, "recorded by the other sender")
    assert (result.sent, result.failed) == (0, 1), "the run reports what the ledger holds"
