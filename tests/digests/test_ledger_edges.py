"""Pausing around a digest run, `papertide digest send` with no date, and two senders on one
reader, against a real SMTP server (aiosmtpd): a paused reader's due digest is dropped, never
sent; each reader's digest is dated with their own local date; two digests of one reader never
share a paper."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from papertide import db
from papertide.config import get_settings
from papertide.digests import readers as readers_module
from papertide.digests import service as digest_service
from papertide.digests.candidates import DigestRun
from papertide.digests.mailer import Envelope, MailSession, SmtpMailer
from papertide.digests.readers import Reader
from papertide.models import DeliveryStatus, DigestDelivery, DigestItem, Subscriber, TokenPurpose
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers import service as subscriber_service
from papertide.subscribers.service import LinkState
from papertide.worker import jobs
from tests.helpers import Inbox, digest_ready, lock_waiters, smtp_server, wait_until

DAY = date(2026, 11, 24)


def pause(email: str, *, paused: bool = True) -> None:
    """What the manage page's pause (or resume) button commits, from another connection."""
    with db.session_factory()() as other:
        at = datetime.now(UTC) if paused else None
        other.execute(update(Subscriber).where(Subscriber.email == email).values(paused_at=at))
        other.commit()


class PausingDuringTheRun:
    """An SMTP mailer during whose hand-off of `first`'s digest the reader `then` pauses."""

    def __init__(self, url: str, *, first: str, then: str) -> None:
        self.smtp = SmtpMailer(url)
        self.first, self.then = first, then

    def send(self, message: EmailMessage) -> None:
        self.smtp.send(message)

    @contextmanager
    def session(self) -> Iterator[MailSession]:
        with self.smtp.session() as post:
            yield _Pausing(self, post)


class _Pausing:
    def __init__(self, mailer: PausingDuringTheRun, post: MailSession) -> None:
        self.mailer = mailer
        self.post = post

    def send(self, envelope: Envelope) -> None:
        if envelope.recipient == self.mailer.first:
            pause(self.mailer.then)
        self.post.send(envelope)


def ledger_dates(session: Session) -> list[tuple[str, date]]:
    stmt = select(Subscriber.email, DigestDelivery.digest_date).join(
        Subscriber, Subscriber.id == DigestDelivery.subscriber_id
    )
    return sorted((email, day) for email, day in session.execute(stmt))


def rows(session: Session) -> dict[str, DigestDelivery]:
    session.expire_all()
    stmt = select(Subscriber.email, DigestDelivery).join(
        Subscriber, Subscriber.id == DigestDelivery.subscriber_id
    )
    return {row[0]: row[1] for row in session.execute(stmt)}


def test_a_reader_who_pauses_while_a_run_is_sending_gets_nothing(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "DIGEST_BATCH", 1)  # as when the list is longer than one batch (50)
    digest_ready(["a@example.org", "b@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mailer = PausingDuringTheRun(f"smtp://127.0.0.1:{port}", first="a@example.org", then="b@example.org")
        result = jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None)

    assert [m["To"] for m in inbox.messages] == ["a@example.org"]
    assert result.sent == 1
    dropped = rows(session)["b@example.org"]
    assert dropped.status == DeliveryStatus.FAILED
    assert "paused" in (dropped.error or "")
    assert dropped.message is None


def test_a_paused_readers_deferred_digest_is_dropped_at_the_next_run_not_kept(
    database: str, session: Session
) -> None:
    digest_ready(["a@example.org"])
    now = datetime.now(UTC)
    inbox = Replying451Once()
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None, now=now)
        assert rows(session)["a@example.org"].status == DeliveryStatus.DEFERRED
        pause("a@example.org")
        jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=5))
        pause("a@example.org", paused=False)
        jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=10))

    assert inbox.messages == []
    assert rows(session)["a@example.org"].status == DeliveryStatus.FAILED


def test_a_pause_undone_before_any_run_looked_leaves_the_deferred_digest_to_go(
    database: str, session: Session
) -> None:
    # What docs/digest.md#when-it-arrives says: no run saw the reader paused, so nothing was dropped.
    digest_ready(["a@example.org"])
    now = datetime.now(UTC)
    inbox = Replying451Once()
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None, now=now)
        pause("a@example.org")
        pause("a@example.org", paused=False)
        retried = jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=5))

    assert retried is not None
    assert retried.sent == 1
    assert [m["To"] for m in inbox.messages] == ["a@example.org"]


class Replying451Once(Inbox):
    """Defers the first message with a 451, then takes every message."""

    def __init__(self) -> None:
        super().__init__()
        self.deferred = False

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if not self.deferred:
            self.deferred = True
            return "451 4.3.0 Mailbox busy, try again later"
        return await super().handle_DATA(server, session, envelope)


def test_digest_send_with_no_date_uses_each_readers_local_date(database: str, session: Session) -> None:
    # 05:00 UTC on 27 Nov is 21:00 on 26 Nov in Los Angeles and 14:00 on 27 Nov in Tokyo.
    digest_ready(["la@example.org", "jp@example.org", "utc@example.org"])
    for email, zone in (("la@example.org", "America/Los_Angeles"), ("jp@example.org", "Asia/Tokyo")):
        session.execute(update(Subscriber).where(Subscriber.email == email).values(time_zone=zone))
    session.commit()
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        result = jobs.send_digests(mailer=mailer, encoder=None, now=datetime(2026, 11, 27, 5, 0, tzinfo=UTC))
        # 07:00 in Los Angeles on 27 Nov: that date's digest is still to come, and comes.
        morning = jobs.send_scheduled_digests(
            mailer=mailer, encoder=None, now=datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
        )

    assert result.sent == 3
    assert ledger_dates(session) == [
        ("jp@example.org", date(2026, 11, 27)),
        ("la@example.org", date(2026, 11, 26)),  # not tomorrow's digest tonight
        ("la@example.org", date(2026, 11, 27)),
        ("utc@example.org", date(2026, 11, 27)),
    ]
    assert morning is not None
    assert morning.sent == 1
    subjects = [
        str(m["Subject"]).rpartition(" for ")[2] for m in inbox.messages if m["To"] == "la@example.org"
    ]
    assert subjects == ["Thu 26 Nov", "Fri 27 Nov"]


def test_two_senders_never_compose_one_readers_two_open_dates_at_once(
    database: str, session: Session
) -> None:
    """After an outage a reader has two dates due; two senders claim one each. The second must
    not compose until the first has committed its papers, or both digests carry the same ones."""
    digest_ready(["a@example.org"], papers=12, per_digest=3)
    jobs.score()
    for day in (DAY - timedelta(days=1), DAY):
        digest_service.prepare_deliveries(session, digest_date=day)
    session.commit()
    with _a_sender() as (first, first_locks), _a_sender() as (second, second_locks):
        earlier = _start(first, first_locks)  # composed, its papers not yet committed
        later = _start(second, second_locks)  # the reader's row is locked: their other date is left
        assert [h.delivery_id for h in earlier.hand_offs] == [earlier.last_id]
        assert later.last_id is None
        first.commit()  # the earlier date is with the mail server now
        second.rollback()

        again = _start(second, second_locks, size=2)  # a later pass, from the start: the one left
        assert len(again.hand_offs) == 1
        assert again.hand_offs[0].delivery_id != earlier.last_id
        second.commit()
        digest_service.release(second_locks, again)
        digest_service.release(first_locks, earlier)

    papers = {
        day: {
            paper
            for (paper,) in session.execute(select(DigestItem.paper_id).where(DigestItem.delivery_id == d.id))
        }
        for d in session.scalars(select(DigestDelivery))
        for day in [d.digest_date]
    }
    assert [len(p) for p in papers.values()] == [3, 3]
    assert not papers[DAY] & papers[DAY - timedelta(days=1)]


@contextmanager
def _a_sender() -> Iterator[tuple[Session, Connection]]:
    """A sender's session and the autocommit connection that holds its hand-off locks, as
    worker.jobs opens them."""
    engine = db.get_engine()
    with (
        db.session_factory()() as session,
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as locks,
    ):
        yield session, locks


def _start(session: Session, locks: Connection, *, size: int = 1) -> digest_service.Batch:
    return digest_service.start_batch(
        session,
        locks=locks,
        now=datetime.now(UTC),
        after=0,
        size=size,
        settings=get_settings(),
        run=DigestRun(encoder=lambda: None),
    )


def test_a_digest_put_back_unsent_is_not_repeated_by_the_readers_next_date(
    database: str, session: Session
) -> None:
    """The circuit breaker puts a composed digest back to `pending` (it keeps its message and goes as
    it is later); the outage lasts into the next day: that day's digest must not repeat its papers."""
    digest_ready(["a@example.org"], papers=12, per_digest=3)
    jobs.score()
    digest_service.prepare_deliveries(session, digest_date=DAY - timedelta(days=1))
    session.commit()
    with _a_sender() as (sender, locks):
        first = _start(sender, locks)
        sender.commit()
        digest_service.put_back(sender, first.hand_offs)  # the mail server is down
        sender.commit()
        digest_service.release(locks, first)
        digest_service.prepare_deliveries(session, digest_date=DAY)
        session.commit()
        both = _start(sender, locks, size=5)  # the first again, as stored, and the next day's
        sender.commit()
        digest_service.release(locks, both)

    assert len(both.hand_offs) == 2
    session.expire_all()
    papers = {
        d.digest_date: set(session.scalars(select(DigestItem.paper_id).where(DigestItem.delivery_id == d.id)))
        for d in session.scalars(select(DigestDelivery))
    }
    assert [len(p) for p in papers.values()] == [3, 3]
    assert not papers[DAY] & papers[DAY - timedelta(days=1)]


def _unsubscribe_from_the_manage_page(email: str) -> None:
    """What the manage page's Unsubscribe commits: the reader's row locked, then stop()."""
    with db.session_factory()() as web:
        reader_id = web.scalars(select(Subscriber.id).where(Subscriber.email == email)).one()
        reader = subscriber_repository.lock(web, reader_id)
        assert reader is not None
        subscriber_service.stop(web, subscriber=reader, now=datetime.now(UTC))
        web.commit()


def test_an_unsubscribe_while_a_batch_composes_retires_the_links_of_its_digest(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader unsubscribes after the batch claimed their delivery and before it stored their
    digest's manage and unsubscribe links: those links must not outlive the unsubscribe (they
    would open, and end, the address's next subscription). The unsubscribe waits for the batch."""
    digest_ready(["a@example.org"])
    jobs.score()
    digest_service.prepare_deliveries(session, digest_date=DAY)
    session.commit()
    leaving = threading.Thread(target=_unsubscribe_from_the_manage_page, args=("a@example.org",))
    readers: dict[int, Reader] = {}
    real_load_readers = readers_module.load_readers

    def reader_leaves_now(s: Session, subscribers: list[Subscriber]) -> dict[int, Reader]:
        leaving.start()
        wait_until(
            lambda: not leaving.is_alive() or lock_waiters() > 0,
            timeout=30,
            what="the unsubscribe to commit or to wait for the batch",
        )
        readers.update(real_load_readers(s, subscribers))
        return readers

    monkeypatch.setattr(digest_service, "load_readers", reader_leaves_now)
    with _a_sender() as (sender, locks):
        batch = _start(sender, locks)
        sender.commit()
        digest_service.release(locks, batch)
    leaving.join(timeout=30)

    assert [h.envelope is not None for h in batch.hand_offs] == [True]  # the digest was made
    [reader] = readers.values()
    session.expire_all()
    links = [
        subscriber_service.read_link(session, reader.manage_token, TokenPurpose.MANAGE),
        subscriber_service.read_link(session, reader.unsubscribe_token, TokenPurpose.UNSUBSCRIBE),
    ]
    assert [link.state if link else None for link in links] == [LinkState.USED, LinkState.USED]


class _KilledAfterTheServerTookIt:
    """The mail server takes the message; the sender is killed before it records `sent`."""

    def __init__(self, smtp: SmtpMailer) -> None:
        self.smtp = smtp

    def send(self, message: EmailMessage) -> None:
        self.smtp.send(message)

    @contextmanager
    def session(self) -> Iterator[MailSession]:
        with self.smtp.session() as post:
            yield _Dying(post)


class _Dying:
    def __init__(self, post: MailSession) -> None:
        self.post = post

    def send(self, envelope: Envelope) -> None:
        self.post.send(envelope)
        raise KeyboardInterrupt  # as a kill -9 after the server's 250


def _papers_in(raw: bytes) -> set[bytes]:
    return set(re.findall(rb"/papers/(\d{4}\.\d{5})", raw))


def test_a_digest_the_server_took_is_not_repeated_after_its_unknown_hand_off_is_closed(
    database: str, session: Session
) -> None:
    """Left in hand-off by a killed sender, then closed (the reader paused): its papers were
    probably delivered, and the reader's next digest after resuming must not repeat them."""
    digest_ready(["a@example.org"], papers=12, per_digest=3)
    inbox = Inbox()
    now = datetime.now(UTC)
    with smtp_server(inbox) as port:
        smtp = SmtpMailer(f"smtp://127.0.0.1:{port}")
        with pytest.raises(KeyboardInterrupt):
            jobs.send_digests(
                digest_date=DAY, mailer=_KilledAfterTheServerTookIt(smtp), encoder=None, now=now
            )
        assert session.scalars(select(DigestDelivery.status)).one() == DeliveryStatus.SENDING
        pause("a@example.org")
        jobs.retry_digests(mailer=smtp, encoder=None, now=now + timedelta(minutes=5))
        assert rows(session)["a@example.org"].status == DeliveryStatus.FAILED  # closed: paused
        pause("a@example.org", paused=False)
        jobs.send_digests(
            digest_date=DAY + timedelta(days=1), mailer=smtp, encoder=None, now=now + timedelta(days=1)
        )

    first, second = (_papers_in(raw) for raw in inbox.raw)
    assert len(first) == len(second) == 3
    assert not first & second
