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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from papertide.config import Settings, get_settings
from papertide.digests import build, repository, schedule
from papertide.digests.build import build_digest
from papertide.digests.candidates import DigestRun
from papertide.digests.compose import TRENDING
from papertide.digests.mailer import Envelope, MailError, MailFailure
from papertide.digests.readers import Reader, load_readers
from papertide.digests.render import digest_message_id, mail_address, wire_address
from papertide.models import DeliveryStatus, DigestDelivery, Subscriber
from papertide.subscribers import preferences
from papertide.subscribers import repository as subscriber_repository

log = logging.getLogger(__name__)
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

    def merge(self, counts: dict[str, int]) -> None:
        """Another sender's `counts` (its errors are in its own run record)."""
        for name in self.counts:
            setattr(self, name, getattr(self, name) + counts.get(name, 0))


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
    envelope: Envelope | None  # None: nothing new to send, the delivery is already `empty`
    attempt: int
    resend: bool  # an earlier hand-off of this very message ended unknown (the sender died)
    # (status, attempts, next_attempt_at) before this run took it: put_back() restores them.
    before: tuple[str, int, datetime | None]


@dataclass
class Batch:
    """Deliveries claimed together: those this sender now hands over, in id order, and the
    hand-off locks it holds for them until their outcomes are committed."""

    hand_offs: list[HandOff] = field(default_factory=list)
    locked: list[int] = field(default_factory=list)
    last_id: int | None = None  # the highest id claimed; None: nothing was due after the cursor


def prepare_deliveries(
    session: Session,
    *,
    now: datetime | None = None,
    digest_date: date | None = None,
    settings: Settings | None = None,
) -> int:
    """Add a ledger row for every subscriber due; returns how many were added.

    On the schedule (`digest_date` None) a subscriber is due once their local send hour has come on
    one of their send days, and the row carries their local date: every run in the same local day
    finds the row there and adds none, so each reader gets one digest per local date, across DST
    changes too. A date whose send hour no pass saw (a restart, a long DIGEST_CRON) is caught up at
    the next pass while it is inside the retry window. With `digest_date` (`papertide digest send
    --date`) everyone whose send days include that date is due on it, whatever the hour, once their
    own local date has reached it.
    """
    at = now or datetime.now(UTC)
    if digest_date is not None:
        return repository.add_deliveries_on(
            session, digest_date=digest_date, local=_local_times(session, at), now=at
        )
    window = timedelta(hours=(settings or get_settings()).digest_retry_hours)
    seen_until = repository.last_pass(session)
    slots = [
        slot
        for zone, hour in repository.subscriber_schedules(session)
        if (slot := schedule.due_slot(zone, hour, now=at, window=window, seen_until=seen_until))
    ]
    added = repository.add_due_deliveries(session, slots=slots, now=at)
    repository.record_pass(session, at=at)
    return added


def next_digest(session: Session, subscriber: Subscriber, *, now: datetime) -> str | None:
    """When the reader's next digest is due, as the manage and confirmed pages say it: "Sun 29 Nov,
    09:00", or "within 15 minutes" when its hour has come and the next pass makes it; None while
    paused or suppressed, or for a zone Python cannot load. (A day with nothing new for the reader
    sends none.)"""
    if subscriber.paused_at is not None or suppression(session, subscriber.email) is not None:
        return None
    local = schedule.local_time(subscriber.time_zone, now)
    if local is None:
        return None
    made = repository.delivery_dates_from(session, subscriber_id=subscriber.id, first=local.day)
    due = schedule.next_due(
        subscriber.time_zone,
        subscriber.send_hour,
        subscriber.send_days,
        now=now,
        made=made,
        last_made=repository.newest_on_time(session, subscriber_id=subscriber.id),
        resumed_at=subscriber.resumed_at,
        pause_began_at=subscriber.pause_began_at,
    )
    if due is None:
        return None
    if due <= now:
        return "at the next scheduler pass, within minutes"
    return f"{due:%a %d %b}, {due:%H:%M}"


@dataclass(frozen=True)
class Suppression:
    """Why an address gets no digests: a mail server refused it for good (5.1.x, 5.2.1)."""

    since: datetime
    reply: str


def suppression(session: Session, email: str) -> Suppression | None:
    row = repository.suppression_of(session, email)
    return None if row is None else Suppression(since=row.created_at, reply=row.reason)


def mail_reached(session: Session, *, subscriber: Subscriber, link_made_at: datetime) -> bool:
    """A link mailed to the reader was opened, so mail made at `link_made_at` reached them. If it was
    made after the address was suppressed, the address has taken mail since (the refusal was a bad
    day at the reader's provider, or a mailbox made again): the suppression is lifted and the
    digests start again; a link from before the refusal proves nothing. The time is kept
    (`mail_reached_at`), so a bounce that comes back later about an older digest does not suppress
    the address again (feedback.py). Whether a suppression was lifted."""
    if subscriber.mail_reached_at is None or subscriber.mail_reached_at < link_made_at:
        subscriber.mail_reached_at = link_made_at
    email = subscriber.email
    lifted = repository.lift_suppression(session, email=email, before=link_made_at)
    if lifted:
        log.info("a link mailed after its suppression was opened: %s gets digests again", mask_address(email))
    return lifted


def prepare_deliveries_now(session: Session, *, now: datetime) -> int:
    """`papertide digest send` with no date: a row dated with each reader's own local date now, on
    their send days, whatever their hour; the scheduled pass later that local day adds none."""
    return repository.add_deliveries_today(session, local=_local_times(session, now), now=now)


def _local_times(session: Session, now: datetime) -> list[repository.LocalTime]:
    """The clock now in each zone a subscriber has (one Python can load)."""
    return [t for zone in repository.subscriber_time_zones(session) if (t := schedule.local_time(zone, now))]


def expire_overdue(session: Session, *, now: datetime, settings: Settings) -> int:
    """Close what can no longer go: past the retry window (the ledger row is older than
    DIGEST_RETRY_HOURS), or for a subscriber who has left or been suppressed since. Returns how
    many the window closed: digests their readers never got, which a run counts as failed (the
    closes for readers who left are nobody's loss and are not counted)."""
    window = timedelta(hours=settings.digest_retry_hours)
    reason = f"not delivered within {settings.digest_retry_hours:g} h"
    expired = repository.expire_overdue(session, created_before=now - window, reason=reason)
    repository.close_for_gone_subscribers(session, reason=GONE)
    return expired


GONE = "closed: the subscriber unsubscribed, paused or was suppressed before it went out"
PAUSED = "closed: the subscriber paused before it went out"
EARLIER_SUBSCRIPTION = "closed: made for an earlier subscription of the address (unsubscribed since)"


def due_count(session: Session, *, now: datetime) -> int:
    """Deliveries of any date that a run would try now."""
    return repository.due_count(session, now=now)


def warm_up(session: Session, *, run: DigestRun, now: datetime) -> int:
    """Have every phrase the due digests will match ready before the first is composed: the vectors
    earlier runs stored, and the rest encoded in one call to the model and stored for the next runs
    (committed with the caller's transaction); returns how many phrases. The model costs about as
    much per call as per few hundred short phrases, so one reader at a time (a call each) cost more
    than all the rest of the run."""
    model = run.model_name
    if model is None:
        return 0
    due = repository.due_phrases(session, now=now, model=model)
    run.remember_phrases({phrase: vector for phrase, vector in due if vector is not None})
    new = [phrase for phrase, vector in due if vector is None]
    vectors = run.phrase_vectors(new)
    if vectors is not None:
        repository.store_phrase_vectors(session, model=model, phrases=new, vectors=vectors)
    return len(due)


def prune_phrase_vectors(session: Session) -> int:
    """Forget the stored vectors of phrases no profile holds any more (the scheduler's chore)."""
    return repository.prune_phrase_vectors(session)


def start_batch(
    session: Session,
    *,
    locks: Connection,
    now: datetime,
    after: int,
    size: int,
    settings: Settings,
    run: DigestRun,
    in_hand_off: bool = True,
) -> Batch:
    """Claim up to `size` due deliveries with ids above `after`, compose those never composed, and
    mark each `sending`; an empty batch (`last_id` None) when nothing is due after `after`.
    `in_hand_off` False: not those left `sending` (repository.claim_batch).

    The caller commits before handing any message over, and holds the hand-off locks `locks` took
    until it has recorded the outcomes (release()): a concurrent sender skips a delivery another
    live sender has with the mail server, and resumes one whose sender died (its locks went with
    its connection). One transaction for the whole batch: one claim, one commit, and the
    subscribers' rows written together, instead of one of each per digest.
    """
    claimed = repository.claim_batch(session, now=now, after=after, limit=size, in_hand_off=in_hand_off)
    if not claimed:
        return Batch()
    batch = Batch(last_id=claimed[-1][0].id)
    held = _try_hand_off_locks(locks, [delivery.id for delivery, _ in claimed])
    batch.locked = sorted(held)
    # Those not held: another live sender has them with the mail server.
    mine = [(delivery, subscriber) for delivery, subscriber in claimed if delivery.id in held]
    # A reader who paused after the row was added (during this very run, too) gets nothing: their
    # due digest is dropped, not kept for their return (docs/digest.md#when-it-arrives); nor does a
    # digest made before an unsubscribe go to the address's later subscription. Closed here, under
    # the hand-off lock, so a `sending` row another live sender has is never touched.
    still = []
    for delivery, subscriber in mine:
        if reason := _closed_since(delivery, subscriber):
            _finish(delivery, DeliveryStatus.FAILED, error=reason)
        else:
            still.append((delivery, subscriber))
    try:
        to_compose = [subscriber for delivery, subscriber in still if delivery.message is None]
        work = _Composing(settings, run, readers=load_readers(session, to_compose))
        batch.hand_offs = [_start(session, delivery, subscriber, work) for delivery, subscriber in still]
        repository.add_items(session, work.items)
    except BaseException:
        release(locks, batch)
        raise
    return batch


class LockSessionEnded(Exception):
    """The session that holds the run's hand-off locks has ended (a sender learns it when it next
    needs that session): this sender must take no more deliveries."""


@contextmanager
def _on_lock_session(locks: Connection) -> Iterator[None]:
    """Statements on the session that holds the run's hand-off locks: LockSessionEnded when that
    session is gone (found so before, or by this statement), any other error as it is. Never
    connected again: a new session would hold none of the locks."""
    if locks.invalidated:
        raise LockSessionEnded
    try:
        yield
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        raise LockSessionEnded from error


def _try_hand_off_locks(locks: Connection, delivery_ids: list[int]) -> set[int]:
    with _on_lock_session(locks):
        return repository.try_hand_off_locks(locks, delivery_ids)


def made_for_earlier_subscription(delivery: DigestDelivery, subscriber: Subscriber) -> bool:
    """The delivery was made before the reader's current confirmation (they left and came back)."""
    confirmed = subscriber.confirmed_at
    return confirmed is not None and delivery.created_at < confirmed - repository.CONFIRMATION_SKEW


def _closed_since(delivery: DigestDelivery, subscriber: Subscriber) -> str | None:
    """Why this claimed delivery must not go any more, or None."""
    if subscriber.paused_at is not None:
        return PAUSED
    if made_for_earlier_subscription(delivery, subscriber):
        return EARLIER_SUBSCRIPTION
    return None


@dataclass
class _Composing:
    """What the digests of one batch share: the run's caches, their readers, the papers to store."""

    settings: Settings
    run: DigestRun
    readers: dict[int, Reader]
    items: list[dict[str, object]] = field(default_factory=list)


def _start(session: Session, delivery: DigestDelivery, subscriber: Subscriber, work: _Composing) -> HandOff:
    claimed = (delivery.status, delivery.attempts)
    try:
        return _mark_sending(session, delivery, subscriber, work)
    except Exception as error:
        raise ComposeFailed(delivery.id, error, claimed=claimed) from error


class ComposeFailed(Exception):
    """Composing one delivery raised (the model, a bad row): the batch's transaction is rolled back,
    that delivery is put off, and the run goes on (the others of the batch are claimed again), so
    one bad delivery never blocks everyone after it."""

    def __init__(self, delivery_id: int, error: Exception, *, claimed: tuple[str, int]) -> None:
        super().__init__(f"composing delivery {delivery_id} failed: {type(error).__name__}: {error}")
        self.delivery_id = delivery_id
        self.claimed = claimed  # (status, attempts) as claimed: put_off acts only on that row still


def put_off(
    session: Session, *, failed: ComposeFailed, now: datetime, settings: Settings
) -> Delivered | None:
    """A delivery that could not be composed: try it again after a backoff, inside the retry window.

    None when it is no longer as this run claimed it: the rollback let its locks go, and another
    sender may have claimed, sent and recorded it since (or put it off itself); that is kept."""
    delivery = repository.lock_for_record(session, failed.delivery_id)
    if delivery is None:
        return Delivered(delivery_id=failed.delivery_id, status=DeliveryStatus.FAILED, error=str(failed))
    if (delivery.status, delivery.attempts) != failed.claimed:
        return None
    delivery.attempts += 1
    return _defer_or_give_up(delivery, str(failed), now=now, settings=settings)


def put_back(session: Session, hand_offs: Sequence[HandOff], *, locks_lost: bool = False) -> None:
    """Hand-offs that never reached the mail server (the run stopped first: the breaker) go back
    to how they were, with the message they were composed with: the next run sends those bytes.

    `locks_lost`: the run's hand-off locks went with their connection, so another sender may have
    resumed some of these already; only those whose lock can be taken now are put back."""
    ids = [hand_off.delivery_id for hand_off in hand_offs]
    ours = set(repository.try_hand_off_xact_locks(session, ids) if locks_lost else ids)
    for hand_off in hand_offs:
        if hand_off.delivery_id not in ours:
            continue
        delivery = repository.lock_for_record(session, hand_off.delivery_id)
        if delivery is not None and delivery.status == DeliveryStatus.SENDING:
            delivery.status, delivery.attempts, delivery.next_attempt_at = hand_off.before


def release(locks: Connection, batch: Batch) -> None:
    """Give up the batch's hand-off locks, once its outcomes are committed (or the step failed).

    On a connection whose session has ended the locks are gone with it: nothing to give up, and
    no reason to fail a run (or hide the error that ended it) over that."""
    held, batch.locked = batch.locked, []
    try:
        with _on_lock_session(locks):
            repository.release_hand_off_locks(locks, held)
    except LockSessionEnded:
        log.info("the hand-off locks' session had ended; its locks went with it")


def holds_hand_off_locks(locks: Connection) -> bool:
    """Whether the session holding the run's hand-off locks is still there (and so its locks).

    A session-level lock lives exactly as long as its session; a session can end under a live
    sender (pg_terminate_backend, idle_session_timeout, a proxy's idle cut), and then a second
    sender takes the deliveries for ones a dead sender left: this sender must send no more."""
    try:
        with _on_lock_session(locks):
            repository.check_connection(locks)
    except LockSessionEnded:
        return False
    return True


def keep_open(connection: Connection) -> None:
    """A run's own connection is exempt from idle_session_timeout (repository.keep_session)."""
    repository.keep_session(connection)


def _mark_sending(
    session: Session, delivery: DigestDelivery, subscriber: Subscriber, work: _Composing
) -> HandOff:
    before = (delivery.status, delivery.attempts, delivery.next_attempt_at)
    # Composed once: a retry, and the resend of an unknown hand-off, send the stored bytes, so the
    # Message-ID and the papers never change once a delivery has reached `sending`.
    if delivery.message is None and not _compose(session, delivery, subscriber, work):
        delivery.status = DeliveryStatus.EMPTY
        return HandOff(delivery.id, subscriber.email, None, delivery.attempts, resend=False, before=before)
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
    envelope = Envelope(
        sender=envelope_sender(work.settings),
        recipient=wire_address(subscriber.email),
        data=delivery.message or b"",
    )
    return HandOff(delivery.id, subscriber.email, envelope, delivery.attempts, resend=resend, before=before)


def envelope_sender(settings: Settings) -> str:
    """MAIL FROM: the address of MAIL_FROM (`papertide <digest@example.org>` -> digest@example.org)."""
    return mail_address(settings.mail_from) or settings.mail_from


def _compose(session: Session, delivery: DigestDelivery, subscriber: Subscriber, work: _Composing) -> bool:
    """Build the digest and store it on the delivery; False when there is nothing new to send."""
    settings = work.settings
    message_id = digest_message_id(
        delivery_id=delivery.id,
        digest_date=delivery.digest_date,
        sender=settings.mail_from,
        base_url=settings.base_url,
        secret=settings.resolved_secret_key(),
    )
    reader = work.readers[subscriber.id]
    built = build_digest(
        session,
        subscriber=subscriber,
        digest_date=delivery.digest_date,
        settings=settings,
        run=work.run,
        delivery_id=delivery.id,
        message_id=message_id,
        reader=reader,
    )
    if built is None:
        return False
    delivery.message = bytes(built.message)
    delivery.message_id = message_id
    delivery.as_of_date = built.as_of
    # A second digest of this reader in the same batch (an earlier date) never repeats these.
    reader.already_seen.update(paper_id for paper_id, *_ in built.items)
    work.items.extend(
        {
            "delivery_id": delivery.id,
            "paper_id": paper_id,
            "rank": rank,
            "reason": reason,
            "section": section,
            "profile_id": profile_id,
        }
        for rank, (paper_id, reason, section, profile_id) in enumerate(built.items, start=1)
    )
    return True


def record_sent_holding_locks(locks: Connection, *, hand_off: HandOff, now: datetime) -> Delivered | None:
    """A message the server took, recorded `sent` by one autocommitted statement on the session
    that holds the run's hand-off locks (the common outcome, so it doubles as that session's
    liveness check). None when the delivery is not `sending` any more, or that session has ended
    (the locks with it: holds_hand_off_locks now says so): record_outcome decides then."""
    try:
        with _on_lock_session(locks):
            recorded = repository.record_sent(locks, delivery_id=hand_off.delivery_id, now=now)
    except LockSessionEnded:
        log.warning("the hand-off locks' session ended by the time a message went out")
        return None
    return Delivered(delivery_id=hand_off.delivery_id, status=DeliveryStatus.SENT) if recorded else None


def record_outcome(
    session: Session, *, hand_off: HandOff, error: MailError | None, now: datetime, settings: Settings
) -> Delivered:
    """`sent`; or `deferred` with a backoff inside the retry window; or `failed` for good (a
    permanent reply, which also suppresses the address when it was the recipient's)."""
    if error is None and repository.record_sent(session, delivery_id=hand_off.delivery_id, now=now):
        return Delivered(delivery_id=hand_off.delivery_id, status=DeliveryStatus.SENT)
    delivery = repository.lock_for_record(session, hand_off.delivery_id)
    if (
        delivery is None
        or delivery.status != DeliveryStatus.SENDING
        or delivery.attempts != hand_off.attempt
        or error is None
    ):
        # Recorded already, or handed over again, by a sender that resumed it after this one's lock
        # was lost (a database restart or an idle-killer ends the session that held it): a late
        # failure of this hand-off must not overwrite that one's outcome, which may be a 250. The
        # ledger keeps what it has. (A 250 is recorded whichever hand-off it answers, above.)
        status = DeliveryStatus(delivery.status) if delivery else DeliveryStatus.FAILED
        return Delivered(delivery_id=hand_off.delivery_id, status=status)
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


@dataclass(frozen=True)
class VotedItem:
    """The digest item a vote link names (`/vote/<signed>/<rank>/<more|less>`)."""

    subscriber_id: int
    paper_id: str
    profile_id: int | None  # None: from the Trending section, or a profile deleted since
    profile_gone: bool  # sent in a profile's section, and that profile has been deleted
    reader_key: str  # of the subscriber's present subscription: a link signed with another votes for nobody


def voted_item(session: Session, *, delivery_id: int, rank: int) -> VotedItem | None:
    """The item at `rank` of a delivery, or None (no such delivery or rank)."""
    row = repository.digest_item_at(session, delivery_id=delivery_id, rank=rank)
    if row is None:
        return None
    return VotedItem(
        subscriber_id=row.subscriber_id,
        paper_id=row.paper_id,
        profile_id=row.profile_id,
        profile_gone=row.profile_id is None and row.section != TRENDING,
        reader_key=preferences.reader_key(row.subscriber_id, preferences.stamp_of(row.confirmed_at)),
    )


@dataclass(frozen=True)
class ViewedDigest:
    """A delivery's digest as a web page, with whose subscription it is now (as VotedItem's)."""

    html: str
    reader_key: str  # of the delivery's subscriber's present subscription


def view_html(session: Session, *, delivery_id: int, settings: Settings) -> ViewedDigest | None:
    """The digest a delivery carried, as a web page (view in browser); None when it carried nothing."""
    html = build.view_html(session, delivery_id=delivery_id, settings=settings)
    delivery = repository.get_delivery(session, delivery_id)
    if html is None or delivery is None:
        return None
    subscriber = subscriber_repository.get(session, delivery.subscriber_id)
    if subscriber is None:
        return None
    return ViewedDigest(html=html, reader_key=preferences.reader_key_of(subscriber))
