"""Digest steps: fill the ledger for a date; start one hand-off (claim, compose, mark `sending`);
record how it ended. The message itself goes to the mail server between the two, with no
transaction open (docs/operations.md#digests has the states).

The rule for the unknown case: a delivery found in `sending` with its hand-off lock free was left
by a sender that died during or after the hand-off, so the mail server may have it. It is sent
again as the same stored message (same Message-ID, same papers), never composed anew: a receiving
server that has it already can drop the copy by its Message-ID.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import repository
from papertide.digests.compose import Candidate, compose
from papertide.digests.mailer import MailError, MailFailure
from papertide.digests.render import MAIL_POLICY, RenderedPaper, digest_message, digest_message_id
from papertide.embeddings.encoder import Encoder
from papertide.models import DeliveryStatus, DigestDelivery, Frequency, Subscriber, TokenPurpose
from papertide.ranking import repository as ranking_repository
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers import service as subscriber_service

log = logging.getLogger(__name__)
CANDIDATE_POOL = 200
PERIOD_FOR = {Frequency.DAILY: "week", Frequency.WEEKLY: "month"}
FIRST_RETRY = timedelta(minutes=5)  # then 10, 20, 40 ... minutes
LONGEST_RETRY = timedelta(hours=2)


@dataclass
class DigestRunResult:
    sent: int = 0
    empty: int = 0
    deferred: int = 0  # a temporary failure: the same message goes again after a backoff
    failed: int = 0  # for good: a permanent 5xx, or the retry window closed
    errors: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the run ended before every due delivery was tried

    def add(self, delivered: Delivered) -> None:
        if delivered.status == DeliveryStatus.SENT:
            self.sent += 1
        elif delivered.status == DeliveryStatus.EMPTY:
            self.empty += 1
        elif delivered.status == DeliveryStatus.DEFERRED:
            self.deferred += 1
            self.errors.append(delivered.error or "")
        else:
            self.failed += 1
            self.errors.append(delivered.error or "")

    @property
    def counts(self) -> dict[str, int]:
        return {"sent": self.sent, "empty": self.empty, "deferred": self.deferred, "failed": self.failed}


@dataclass
class Delivered:
    """How one claimed delivery ended."""

    delivery_id: int
    status: DeliveryStatus
    error: str | None = None


@dataclass(frozen=True)
class HandOff:
    """A delivery committed as `sending`: its message goes to the mail server outside any transaction."""

    delivery_id: int
    recipient: str
    message: EmailMessage | None  # None: nothing new to send, the delivery is already `empty`
    attempt: int
    resend: bool  # an earlier hand-off of this very message ended unknown (the sender died)


def frequencies_due(digest_date: date) -> list[str]:
    """Daily subscribers every day; weekly ones on Mondays."""
    return [Frequency.DAILY, Frequency.WEEKLY] if digest_date.weekday() == 0 else [Frequency.DAILY]


def prepare_deliveries(session: Session, *, digest_date: date) -> int:
    """One ledger row for every subscriber due on `digest_date`; returns how many are due."""
    confirmed = subscriber_repository.confirmed(session, frequencies=frequencies_due(digest_date))
    suppressed = repository.suppressed_emails(session, [s.email for s in confirmed])
    due = [s for s in confirmed if s.email not in suppressed]
    repository.ensure_deliveries(session, subscriber_ids=[s.id for s in due], digest_date=digest_date)
    return len(due)


def expire_overdue(session: Session, *, now: datetime, settings: Settings) -> int:
    """Close what can no longer go: past the retry window (the ledger row is older than
    DIGEST_RETRY_HOURS), or for a subscriber who has left or been suppressed since."""
    window = timedelta(hours=settings.digest_retry_hours)
    reason = f"not delivered within {settings.digest_retry_hours:g} h"
    expired = repository.expire_overdue(session, created_before=now - window, reason=reason)
    gone = "closed: the subscriber unsubscribed or was suppressed before it went out"
    return expired + repository.close_for_gone_subscribers(session, reason=gone)


def due_count(session: Session, *, now: datetime) -> int:
    """Deliveries of any date that a run would try now."""
    return repository.due_count(session, now=now)


def start_next(
    session: Session,
    *,
    locks: Connection,
    now: datetime,
    exclude: Sequence[int],
    settings: Settings,
    encoder: Callable[[], Encoder | None],
) -> HandOff | None:
    """Claim the next due delivery, compose it if it never was, and mark it `sending`; None when
    nothing is due.

    The caller commits before handing the message over, and holds the hand-off lock `locks` took
    until it has recorded the outcome: a concurrent sender skips a delivery another live sender
    has with the mail server, and resumes one whose sender died (its lock went with its connection).
    """
    busy: list[int] = []
    while (claimed := repository.claim_due(session, now=now, exclude=[*exclude, *busy])) is not None:
        delivery, subscriber = claimed
        if repository.try_hand_off_lock(locks, delivery.id):
            try:
                return _mark_sending(session, delivery, subscriber, settings=settings, encoder=encoder)
            except Exception as error:
                repository.release_hand_off_lock(locks, delivery.id)
                raise ComposeFailed(delivery.id, error) from error
        busy.append(delivery.id)
    return None


class ComposeFailed(Exception):
    """Composing one delivery raised (the model, a bad row): that delivery is put off, and the run
    goes on with the next, so one bad delivery never blocks everyone after it."""

    def __init__(self, delivery_id: int, error: Exception) -> None:
        super().__init__(f"composing delivery {delivery_id} failed: {type(error).__name__}: {error}")
        self.delivery_id = delivery_id


def put_off(
    session: Session, *, delivery_id: int, error: str, now: datetime, settings: Settings
) -> Delivered:
    """A delivery that could not be composed: try it again after a backoff, inside the retry window."""
    delivery = repository.lock_for_record(session, delivery_id)
    if delivery is None:
        return Delivered(delivery_id=delivery_id, status=DeliveryStatus.FAILED, error=error)
    delivery.attempts += 1
    return _defer_or_give_up(delivery, error, now=now, settings=settings)


def release(locks: Connection, hand_off: HandOff) -> None:
    """Give up the hand-off lock, once the outcome is committed (or the step failed)."""
    repository.release_hand_off_lock(locks, hand_off.delivery_id)


def _mark_sending(
    session: Session,
    delivery: DigestDelivery,
    subscriber: Subscriber,
    *,
    settings: Settings,
    encoder: Callable[[], Encoder | None],
) -> HandOff:
    # Composed once: a retry, and the resend of an unknown hand-off, send the stored bytes, so the
    # Message-ID and the papers never change once a delivery has reached `sending`.
    if delivery.message is None and not _compose(session, delivery, subscriber, settings, encoder):
        delivery.status = DeliveryStatus.EMPTY
        return HandOff(delivery.id, subscriber.email, message=None, attempt=delivery.attempts, resend=False)
    resend = delivery.status == DeliveryStatus.SENDING
    if resend:
        log.warning(
            "delivery %s was left in hand-off by a sender that died; resending %s unchanged",
            delivery.id,
            delivery.message_id,
        )
    delivery.status = DeliveryStatus.SENDING
    delivery.attempts += 1
    delivery.next_attempt_at = None
    message = BytesParser(policy=MAIL_POLICY).parsebytes(delivery.message or b"")
    return HandOff(delivery.id, subscriber.email, message=message, attempt=delivery.attempts, resend=resend)


def _compose(
    session: Session,
    delivery: DigestDelivery,
    subscriber: Subscriber,
    settings: Settings,
    encoder: Callable[[], Encoder | None],
) -> bool:
    """Build the digest and store it on the delivery; False when there is nothing new to send."""
    message_id = digest_message_id(
        delivery_id=delivery.id,
        digest_date=delivery.digest_date,
        sender=settings.mail_from,
        base_url=settings.base_url,
    )
    built = build_digest(
        session,
        subscriber=subscriber,
        digest_date=delivery.digest_date,
        settings=settings,
        # The model loads only for a subscriber with interests, never for a run that needs none.
        encoder=encoder() if subscriber.interests else None,
        message_id=message_id,
    )
    if built is None:
        return False
    message, items, as_of = built
    delivery.message = bytes(message)
    delivery.message_id = message_id
    delivery.as_of_date = as_of
    repository.add_items(session, delivery_id=delivery.id, items=items)
    return True


def record_outcome(
    session: Session, *, hand_off: HandOff, error: MailError | None, now: datetime, settings: Settings
) -> Delivered:
    """`sent`; or `deferred` with a backoff inside the retry window; or `failed` for good (a
    permanent reply, which also suppresses the address when it was the recipient's)."""
    delivery = repository.lock_for_record(session, hand_off.delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.SENDING:
        # Recorded already by a sender that resumed it after this one's lock was lost (a database
        # restart drops the connection that held it): the ledger keeps what it has.
        status = DeliveryStatus(delivery.status) if delivery else DeliveryStatus.FAILED
        return Delivered(delivery_id=hand_off.delivery_id, status=status)
    if error is None:
        _finish(delivery, DeliveryStatus.SENT, error=None)
        delivery.sent_at = now
        return Delivered(delivery_id=delivery.id, status=DeliveryStatus.SENT)
    text = str(error)
    log.error("digest %s to subscriber %s failed: %s", delivery.id, delivery.subscriber_id, text)
    if error.kind == MailFailure.RECIPIENT:
        repository.suppress(
            session, email=hand_off.recipient, reason=error.reply or text, delivery_id=delivery.id
        )
    if error.permanent:
        _finish(delivery, DeliveryStatus.FAILED, error=text)
        return Delivered(delivery_id=delivery.id, status=DeliveryStatus.FAILED, error=text)
    return _defer_or_give_up(delivery, text, now=now, settings=settings)


def _defer_or_give_up(
    delivery: DigestDelivery, error: str, *, now: datetime, settings: Settings
) -> Delivered:
    """`deferred` until after the backoff for its attempts, or `failed` when that is past the window."""
    next_at = now + retry_delay(delivery.attempts)
    if next_at >= delivery.created_at + timedelta(hours=settings.digest_retry_hours):
        text = f"gave up after {delivery.attempts} attempts: {error}"
        _finish(delivery, DeliveryStatus.FAILED, error=text)
        return Delivered(delivery_id=delivery.id, status=DeliveryStatus.FAILED, error=text)
    delivery.status = DeliveryStatus.DEFERRED
    delivery.next_attempt_at = next_at
    delivery.error = error
    return Delivered(delivery_id=delivery.id, status=DeliveryStatus.DEFERRED, error=error)


def _finish(delivery: DigestDelivery, status: DeliveryStatus, *, error: str | None) -> None:
    delivery.status = status
    delivery.error = error
    delivery.next_attempt_at = None
    delivery.message = None  # kept only while it may have to go again


def retry_delay(attempts: int) -> timedelta:
    """5 minutes after the first failed attempt, doubling, at most LONGEST_RETRY."""
    doublings = min(max(attempts - 1, 0), 16)  # bounded: the cap is reached long before
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


def build_digest(
    session: Session,
    *,
    subscriber: Subscriber,
    digest_date: date,
    settings: Settings,
    encoder: Encoder | None,
    message_id: str | None = None,
) -> tuple[EmailMessage, list[tuple[str, str]], date | None] | None:
    """The message and its (paper_id, reason) items, or None when there is nothing new to send.

    `message_id` is the delivery's (render.digest_message_id); only a preview, which is never
    sent, goes without one.
    """
    period = PERIOD_FOR.get(Frequency(subscriber.frequency), "week")
    ranked = ranking_repository.trending(session, period=period, limit=CANDIDATE_POOL)
    if not ranked:
        return None
    similarity = _similarities(session, [p.id for p, _ in ranked], subscriber.interests, encoder)
    candidates = [
        Candidate(
            paper_id=p.id, trend_score=s.score, components=s.components, similarity=similarity.get(p.id, {})
        )
        for p, s in ranked
    ]
    entries = compose(
        candidates,
        already_sent=repository.sent_paper_ids(session, subscriber_id=subscriber.id),
        interests=subscriber.interests,
        mix=subscriber.interest_mix,
        limit=subscriber.papers_per_digest,
    )
    if not entries:
        return None
    papers = {p.id: p for p, _ in ranked}
    as_of = ranked[0][1].as_of.date()
    token = subscriber_service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    message = digest_message(
        message_id=message_id,
        sender=settings.mail_from,
        to=subscriber.email,
        digest_date=digest_date,
        as_of=as_of if as_of < digest_date else None,
        papers=[RenderedPaper(paper=papers[e.paper_id], reason=e.reason) for e in entries],
        base_url=settings.base_url,
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{token}",
    )
    return message, [(e.paper_id, e.reason) for e in entries], as_of


def _similarities(
    session: Session, paper_ids: list[str], interests: list[str], encoder: Encoder | None
) -> dict[str, dict[str, float]]:
    """Cosine similarity of each candidate to each interest phrase (vectors are unit length)."""
    if not interests or encoder is None:
        return {}
    vectors = repository.embeddings_for(session, paper_ids, model=encoder.name)
    if not vectors:
        return {}
    phrases = encoder.encode(interests)
    return {
        pid: {phrase: float(vec @ phrases[i]) for i, phrase in enumerate(interests)}
        for pid, vec in vectors.items()
    }


@dataclass(frozen=True)
class SuppressedAddress:
    email: str  # masked: the status page is public
    reason: str
    at: datetime


@dataclass(frozen=True)
class DeliveryHealth:
    """What /status shows about delivery: what waits, and which addresses get no more digests."""

    waiting: dict[str, int]
    suppressed: int
    recent: list[SuppressedAddress]


def delivery_health(session: Session, *, recent: int = 5) -> DeliveryHealth:
    """Counts of open deliveries, and the newest suppressions with their addresses masked."""
    rows = repository.recent_suppressions(session, limit=recent)
    return DeliveryHealth(
        waiting=repository.count_by_status(session, [DeliveryStatus.DEFERRED, DeliveryStatus.SENDING]),
        suppressed=repository.suppression_count(session),
        recent=[
            SuppressedAddress(email=mask_address(r.email), reason=mask_addresses(r.reason), at=r.created_at)
            for r in rows
        ],
    )


_ADDRESS = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")


def mask_address(email: str) -> str:
    """`alice@example.org` -> `a***@example.org`: enough for the owner to recognise, not to harvest."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


def mask_addresses(text: str) -> str:
    """Every address in a server's reply, masked (replies often quote the recipient)."""
    return _ADDRESS.sub(lambda match: mask_address(match.group(0)), text)
