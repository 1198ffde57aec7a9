"""The digest steps: fill the ledger; start a hand-off (claim, compose, mark `sending`); record how
it ended. Each test runs inside one rolled-back transaction."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import repository as digest_repository
from papertide.digests import service
from papertide.digests.candidates import DigestRun
from papertide.digests.mailer import Envelope, MailError, MailFailure
from papertide.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestItem,
    MailSuppression,
    Subscriber,
    SubscriberStatus,
)
from papertide.ranking import service as ranking_service
from papertide.ranking.trending import TrendParams
from papertide.subscribers import repository as subscriber_repository
from tests.factories import make_paper

DAY = date(2026, 11, 24)  # a Tuesday: daily subscribers are due
NOW = datetime.now(UTC)
SETTINGS = Settings(base_url="http://testserver", secret_key="k", mail_from="papertide <digest@example.org>")
TRY_LATER = MailError("451 try again later", kind=MailFailure.TEMPORARY, code=451)


@pytest.fixture
def locks(shared_engine: Engine) -> Iterator[Connection]:
    """The hand-off locks' own autocommit connection, as worker.jobs opens it."""
    with shared_engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


@pytest.fixture
def ledger(tx_session: Session) -> list[int]:
    """Scored papers, two confirmed subscribers and their deliveries for DAY; returns the subscribers."""
    for _ in range(8):
        make_paper(tx_session, announced_at=datetime(2026, 11, 23, tzinfo=UTC))
    ranking_service.compute_scores(tx_session, now=datetime(2026, 11, 24, tzinfo=UTC), params=TrendParams())
    ids = [confirmed_subscriber(tx_session, email) for email in ("ann@example.org", "bob@example.org")]
    assert service.prepare_deliveries(tx_session, digest_date=DAY) == 2
    return ids


def confirmed_subscriber(session: Session, email: str) -> int:
    subscriber = subscriber_repository.add(session, email=email, papers_per_digest=3, interest_mix=0.5)
    subscriber.status = SubscriberStatus.CONFIRMED
    session.flush()
    return subscriber.id


def start(
    session: Session, locks: Connection, *, now: datetime = NOW, after: int = 0, size: int = 1
) -> service.Batch:
    return service.start_batch(
        session,
        locks=locks,
        now=now,
        after=after,
        size=size,
        settings=SETTINGS,
        run=DigestRun(encoder=lambda: None),
    )


def started(session: Session, locks: Connection, **kwargs: Any) -> service.HandOff:
    batch = start(session, locks, **kwargs)
    assert len(batch.hand_offs) == 1
    assert batch.hand_offs[0].envelope is not None
    return batch.hand_offs[0]


def message(hand_off: service.HandOff) -> EmailMessage:
    """The message as the mail server gets it."""
    assert hand_off.envelope is not None
    return BytesParser(policy=policy.default).parsebytes(hand_off.envelope.data)


def release(locks: Connection, *hand_offs: service.HandOff) -> None:
    service.release(locks, service.Batch(locked=[h.delivery_id for h in hand_offs]))


def finish(
    session: Session,
    locks: Connection,
    hand_off: service.HandOff,
    error: MailError | None,
    now: datetime = NOW,
) -> service.Delivered:
    delivered = service.record_outcome(session, hand_off=hand_off, error=error, now=now, settings=SETTINGS)
    release(locks, hand_off)
    return delivered


def delivery(session: Session, delivery_id: int) -> DigestDelivery:
    session.flush()
    session.expire_all()
    row = session.get(DigestDelivery, delivery_id)
    assert row is not None
    return row


def test_a_delivery_is_composed_and_marked_sending_before_its_hand_off(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    hand_off = started(tx_session, locks)
    row = delivery(tx_session, hand_off.delivery_id)

    assert (row.status, row.attempts) == (DeliveryStatus.SENDING, 1)
    assert row.message_id == message(hand_off)["Message-ID"]
    assert re.fullmatch(rf"<digest-{row.id}-20261124\.[a-z2-7]{{16}}@example\.org>", str(row.message_id))
    assert row.message is not None
    assert hand_off.envelope == Envelope("digest@example.org", "ann@example.org", row.message), (
        "the stored bytes go to the mail server as they are"
    )
    items = tx_session.scalars(select(DigestItem.paper_id).where(DigestItem.delivery_id == row.id)).all()
    assert items, "the papers are stored with the message, before it goes out"
    assert message(hand_off)["Subject"] == f"papertide: {len(items)} papers for Tue 24 Nov"

    assert finish(tx_session, locks, hand_off, None).status == DeliveryStatus.SENT
    row = delivery(tx_session, hand_off.delivery_id)
    assert (row.status, row.sent_at, row.message) == (DeliveryStatus.SENT, NOW, None)


def test_a_temporary_failure_defers_the_same_message_with_a_backoff(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    first = started(tx_session, locks)
    assert finish(tx_session, locks, first, TRY_LATER).status == DeliveryStatus.DEFERRED
    row = delivery(tx_session, first.delivery_id)
    assert (row.next_attempt_at, row.error) == (NOW + timedelta(minutes=5), "451 try again later")

    other = started(tx_session, locks, now=NOW + timedelta(minutes=4))
    assert other.delivery_id != first.delivery_id, "not due before its backoff ends"
    finish(tx_session, locks, other, None)
    assert start(tx_session, locks, now=NOW + timedelta(minutes=4)).hand_offs == []

    again = started(tx_session, locks, now=NOW + timedelta(minutes=5))
    assert again.delivery_id == first.delivery_id
    assert again.attempt == 2
    assert again.envelope == first.envelope, "the same bytes: the same Message-ID and the same papers"
    finish(tx_session, locks, again, TRY_LATER, now=NOW + timedelta(minutes=5))
    assert delivery(tx_session, first.delivery_id).next_attempt_at == NOW + timedelta(minutes=15)


def test_backoff_doubles_up_to_two_hours() -> None:
    delays = [service.retry_delay(attempts) for attempts in range(1, 9)]
    assert [d // timedelta(minutes=1) for d in delays] == [5, 10, 20, 40, 80, 120, 120, 120]


def test_a_temporary_failure_past_the_retry_window_fails_for_good(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    hand_off = started(tx_session, locks)
    window_ends = delivery(tx_session, hand_off.delivery_id).created_at + timedelta(hours=24)

    late = finish(tx_session, locks, hand_off, TRY_LATER, now=window_ends - timedelta(minutes=1))
    expired = service.expire_overdue(tx_session, now=window_ends + timedelta(seconds=1), settings=SETTINGS)

    assert (late.status, late.error) == (
        DeliveryStatus.FAILED,
        "gave up after 1 attempts: 451 try again later",
    )
    assert expired == 1, "the other delivery, never tried, expires with the window"
    rows = tx_session.scalars(select(DigestDelivery).order_by(DigestDelivery.id)).all()
    assert [r.status for r in rows] == [DeliveryStatus.FAILED, DeliveryStatus.FAILED]
    assert rows[1].error == "not delivered within 24 h: never tried"


@pytest.mark.parametrize(
    ("before_the_end", "status"), [(6, DeliveryStatus.DEFERRED), (5, DeliveryStatus.FAILED)]
)
def test_a_retry_is_kept_only_if_it_comes_before_the_window_ends(
    tx_session: Session, locks: Connection, ledger: list[int], before_the_end: int, status: DeliveryStatus
) -> None:
    """The first retry comes 5 minutes later: 6 minutes before the window ends it is still tried,
    5 minutes before it would come as the window closes, and the reader is told nothing more."""
    hand_off = started(tx_session, locks)
    window_ends = delivery(tx_session, hand_off.delivery_id).created_at + timedelta(hours=24)

    outcome = finish(
        tx_session, locks, hand_off, TRY_LATER, now=window_ends - timedelta(minutes=before_the_end)
    )

    assert outcome.status == status


def test_a_hand_off_a_dead_sender_left_fails_with_the_window_and_a_live_senders_is_left(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    """Not resent days late (the scheduler was down): past the window a hand-off whose sender died
    is closed, saying the server may have it. One whose sender is alive (its hand-off lock held)
    is that sender's to record."""
    dead = started(tx_session, locks)
    release(locks, dead)  # its sender died: the lock went with its connection
    live = started(tx_session, locks, after=dead.delivery_id)  # with the mail server now
    window_ends = delivery(tx_session, dead.delivery_id).created_at + timedelta(hours=24)

    before = service.expire_overdue(tx_session, now=window_ends - timedelta(minutes=1), settings=SETTINGS)
    expired = service.expire_overdue(tx_session, now=window_ends + timedelta(seconds=1), settings=SETTINGS)

    assert (before, expired) == (0, 1)
    closed = delivery(tx_session, dead.delivery_id)
    assert closed.status == DeliveryStatus.FAILED
    assert closed.error == (
        "not delivered within 24 h: left in hand-off by a sender that died (the mail server may have taken it)"
    )
    assert delivery(tx_session, live.delivery_id).status == DeliveryStatus.SENDING
    release(locks, live)


def test_a_delivery_left_in_hand_off_is_resent_unchanged(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    died = started(tx_session, locks)
    release(locks, died)  # the sender died: its connection, and so its lock, are gone

    resent = started(tx_session, locks)

    assert resent.delivery_id == died.delivery_id
    assert (resent.resend, resent.attempt) == (True, 2)
    assert resent.envelope == died.envelope


def test_a_delivery_another_live_sender_is_handing_off_is_skipped(
    tx_session: Session, locks: Connection, ledger: list[int], shared_engine: Engine
) -> None:
    first = started(tx_session, locks)
    with shared_engine.connect() as other_locks:
        other = other_locks.execution_options(isolation_level="AUTOCOMMIT")
        batch = start(tx_session, other, size=10)
        assert [h.delivery_id for h in batch.hand_offs] != [first.delivery_id]
        assert len(batch.hand_offs) == 1, "the first is still held: skipped"
        assert batch.last_id == batch.hand_offs[0].delivery_id > first.delivery_id
        release(other, *batch.hand_offs)


def test_a_permanent_refusal_of_the_recipient_fails_the_delivery_and_suppresses_the_address(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    no_such_user = MailError(
        "SMTP refused mail",
        kind=MailFailure.RECIPIENT,
        code=550,
        reply="550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown",
    )
    hand_off = started(tx_session, locks)
    assert finish(tx_session, locks, hand_off, no_such_user).status == DeliveryStatus.FAILED

    suppressed = tx_session.scalars(select(MailSuppression)).one()
    assert (suppressed.email, suppressed.delivery_id) == ("ann@example.org", hand_off.delivery_id)
    assert service.prepare_deliveries(tx_session, digest_date=DAY + timedelta(days=1)) == 1
    health = service.delivery_health(tx_session)
    assert health.suppressed == 1
    assert [(s.email, s.reason) for s in health.recent] == [
        ("a***@example.org", "550 5.1.1 <a***@example.org>: Recipient address rejected: User unknown")
    ]


def test_a_permanent_refusal_of_the_message_fails_it_without_suppressing_anyone(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    rejected = MailError("554 message rejected", kind=MailFailure.PERMANENT, code=554)
    hand_off = started(tx_session, locks)

    assert finish(tx_session, locks, hand_off, rejected).status == DeliveryStatus.FAILED
    assert tx_session.scalars(select(MailSuppression)).all() == []


def test_nothing_new_to_send_is_recorded_empty_and_sends_nothing(
    tx_session: Session, locks: Connection
) -> None:
    confirmed_subscriber(tx_session, "cy@example.org")  # no scored papers at all
    service.prepare_deliveries(tx_session, digest_date=DAY)

    (hand_off,) = start(tx_session, locks).hand_offs

    assert hand_off.envelope is None
    assert delivery(tx_session, hand_off.delivery_id).status == DeliveryStatus.EMPTY
    release(locks, hand_off)
    assert start(tx_session, locks).last_id is None


@pytest.mark.parametrize(
    ("email", "masked"),
    [("alice@example.org", "a***@example.org"), ("a@b.co", "a***@b.co"), ("no-at-sign", "***")],
)
def test_addresses_on_the_status_page_are_masked(email: str, masked: str) -> None:
    assert service.mask_address(email) == masked


def test_a_batch_composes_several_deliveries_in_one_step_and_the_next_claim_starts_after_it(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    batch = start(tx_session, locks, size=10)
    ids = [h.delivery_id for h in batch.hand_offs]

    assert [h.recipient for h in batch.hand_offs] == ["ann@example.org", "bob@example.org"]
    assert [delivery(tx_session, i).status for i in ids] == [DeliveryStatus.SENDING] * 2
    assert len({message(h)["Message-ID"] for h in batch.hand_offs}) == 2, "one message per reader"
    assert (batch.last_id, sorted(batch.locked)) == (max(ids), sorted(ids))
    release(locks, *batch.hand_offs)
    released = start(tx_session, locks, size=10, after=ids[0])
    assert [h.delivery_id for h in released.hand_offs] == [ids[1]], "a cursor, not a list of ids tried"
    assert released.hand_offs[0].resend, "left `sending` with its lock free: resumed as it was"


def test_hand_offs_put_back_before_the_mail_server_saw_them_go_later_as_the_same_message(
    tx_session: Session, locks: Connection, ledger: list[int]
) -> None:
    """What the circuit breaker does with the rest of a batch: it waits, composed, as it was."""
    batch = start(tx_session, locks, size=10)
    service.put_back(tx_session, batch.hand_offs)
    release(locks, *batch.hand_offs)

    rows = [delivery(tx_session, h.delivery_id) for h in batch.hand_offs]
    assert [(r.status, r.attempts) for r in rows] == [(DeliveryStatus.PENDING, 0)] * 2
    again = start(tx_session, locks, size=10)
    assert [h.envelope for h in again.hand_offs] == [h.envelope for h in batch.hand_offs]
    assert [(h.resend, h.attempt) for h in again.hand_offs] == [(False, 1)] * 2


def test_a_delivery_made_within_clock_skew_of_a_confirmation_is_still_sent(
    tx_session: Session, ledger: list[int], locks: Connection
) -> None:
    """A web host whose clock runs a little ahead of the database's must not close a new reader's digest."""
    ann = tx_session.get(Subscriber, ledger[0])
    assert ann is not None
    ann.confirmed_at = NOW + timedelta(minutes=2)
    batch = start(tx_session, locks, size=2, now=NOW + timedelta(minutes=5))
    release(locks, *batch.hand_offs)

    assert sorted(h.recipient for h in batch.hand_offs) == ["ann@example.org", "bob@example.org"]


def test_a_delivery_claimed_after_its_reader_unsubscribed_and_confirmed_again_is_closed_unsent(
    tx_session: Session, ledger: list[int], locks: Connection
) -> None:
    """The unsubscribe and the new confirmation both fell between two runs' looks at the ledger."""
    ann = tx_session.get(Subscriber, ledger[0])
    assert ann is not None
    # The new subscription's, made longer after the row than two hosts' clocks may disagree by.
    ann.confirmed_at = NOW + digest_repository.CONFIRMATION_SKEW + timedelta(minutes=5)
    batch = start(tx_session, locks, size=2, now=NOW + timedelta(minutes=15))
    release(locks, *batch.hand_offs)

    assert [h.recipient for h in batch.hand_offs] == ["bob@example.org"]
    closed = tx_session.scalars(select(DigestDelivery).where(DigestDelivery.subscriber_id == ann.id)).one()
    assert closed.status == DeliveryStatus.FAILED
    assert "earlier subscription" in (closed.error or "")
