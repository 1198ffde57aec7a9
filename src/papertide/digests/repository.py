"""SQL for the delivery ledger, its hand-off locks and the suppressed addresses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    TIMESTAMP,
    Boolean,
    Connection,
    Date,
    Integer,
    Row,
    Text,
    and_,
    case,
    column,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    tablesample,
    text,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from papertide import bulk
from papertide.embeddings.repository import from_vector_bytes, vector_bytes
from papertide.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestItem,
    DigestPass,
    InterestProfile,
    MailSuppression,
    Paper,
    PaperEmbedding,
    PaperVote,
    PhraseEmbedding,
    Subscriber,
    SubscriberStatus,
)

# Not yet ended: never tried, with the mail server (or left there by a dead sender), or waiting to retry.
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
# The papers a subscriber has had or is about to get: a later digest never repeats them (nor those of
# a digest composed and put back `pending`: sent_paper_ids_of).
CARRIED = (DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
# pg_try_advisory_lock(int, int): this first key names "a digest hand-off", the second is the delivery.
HAND_OFF_LOCK = 0x64696773  # "digs"


@dataclass(frozen=True)
class LocalTime:
    """What the clock shows in one time zone now."""

    zone: str
    day: date
    hour: int
    isodow: int  # Monday = 1


@dataclass(frozen=True)
class DueSlot:
    """The digest of local date `day` is due now for the readers of this zone and send hour; it is
    not added for a reader with a digest created at or after `taken_since` (one per local day, and
    none within hours of the last: docs/operations.md#when-digests-go-out)."""

    zone: str
    hour: int
    day: date
    isodow: int
    catch_up: bool  # `day` is the previous local date: its send time went by with no pass to see it
    due_at: datetime
    taken_since: datetime


# A delivery made before the subscriber's current confirmation belongs to an earlier subscription.
# created_at is the database's clock, confirmed_at the web app's: a delivery counts as earlier only
# when it is older by more than this, so a web host whose clock runs ahead cannot close a new
# reader's first digest (a deferred digest is minutes old at least when its reader comes back).
CONFIRMATION_SKEW = timedelta(minutes=5)
# The same margin between a sender's clock, which stamps a delivery's `sent_at`, and the database's,
# which stamps a link's creation: a link counts as made after a digest went out only when it is
# newer by more than this (the digest's own links are made while it is composed, just before).
SENT_CLOCK_SKEW = timedelta(minutes=5)


def subscriber_time_zones(session: Session) -> list[str]:
    """The zones of the readers who may be due (a few hundred names at most, however many readers)."""
    stmt = select(Subscriber.time_zone).where(
        Subscriber.status == SubscriberStatus.CONFIRMED, Subscriber.paused_at.is_(None)
    )
    return list(session.scalars(stmt.distinct()))


def subscriber_schedules(session: Session) -> list[tuple[str, int]]:
    """The (zone, send hour) pairs of the readers who may be due: at most 24 per zone."""
    stmt = select(Subscriber.time_zone, Subscriber.send_hour).where(
        Subscriber.status == SubscriberStatus.CONFIRMED, Subscriber.paused_at.is_(None)
    )
    return [(zone, hour) for zone, hour in session.execute(stmt.distinct())]


_SCHEDULED_PASS = "scheduled"


def last_pass(session: Session) -> datetime | None:
    """When the scheduler's digest pass last ran; None before the first."""
    return session.scalar(select(DigestPass.last_at).where(DigestPass.name == _SCHEDULED_PASS))


def record_pass(session: Session, *, at: datetime) -> None:
    """Note that a pass ran at `at` (two schedulers at once: the later time stands)."""
    stmt = insert(DigestPass).values(name=_SCHEDULED_PASS, last_at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"], set_={"last_at": func.greatest(DigestPass.last_at, stmt.excluded.last_at)}
    )
    session.execute(stmt)


def delivery_dates_from(session: Session, *, subscriber_id: int, first: date) -> set[date]:
    """The dates from `first` on whose digest the reader has already (sent or on its way)."""
    stmt = select(DigestDelivery.digest_date).where(
        DigestDelivery.subscriber_id == subscriber_id, DigestDelivery.digest_date >= first
    )
    return set(session.scalars(stmt))


def newest_on_time(session: Session, *, subscriber_id: int) -> tuple[datetime, date] | None:
    """When the reader's newest digest not made late was created, and its date."""
    stmt = (
        select(DigestDelivery.created_at, DigestDelivery.digest_date)
        .where(DigestDelivery.subscriber_id == subscriber_id, ~DigestDelivery.made_late)
        .order_by(DigestDelivery.created_at.desc())
        .limit(1)
    )
    row = session.execute(stmt).first()
    return None if row is None else (row[0], row[1])


def add_due_deliveries(session: Session, *, slots: Sequence[DueSlot], now: datetime) -> int:
    """One pending ledger row for each reader with a due slot (their zone and send hour) on one of
    their send days, unless a digest of theirs was created since the slot's `taken_since`; a row
    that exists already (same reader and local date) is left as it is. Returns how many were added."""
    if not slots:
        return 0
    clock = values(
        column("zone", Text),
        column("hour", Integer),
        column("day", Date),
        column("isodow", Integer),
        column("catch_up", Boolean),
        column("due_at", TIMESTAMP(timezone=True)),
        column("taken_since", TIMESTAMP(timezone=True)),
        name="clock",
    ).data([(t.zone, t.hour, t.day, t.isodow, t.catch_up, t.due_at, t.taken_since) for t in slots])
    due = (
        select(
            Subscriber.id, clock.c.day, literal(DeliveryStatus.PENDING.value), literal(now), clock.c.catch_up
        )
        .join(clock, and_(clock.c.zone == Subscriber.time_zone, clock.c.hour == Subscriber.send_hour))
        .where(
            *_may_receive(),
            clock.c.isodow == func.any(Subscriber.send_days),
            # A missed date is caught up only for a reader who was subscribed when it was due.
            or_(
                ~clock.c.catch_up,
                Subscriber.confirmed_at.is_(None),
                Subscriber.confirmed_at <= clock.c.due_at,
            ),
            # Nor, today's or a missed date's, for one paused then: a pause drops what falls in it,
            # and resuming (later the same day, too) does not bring it back. A pause that began
            # after the hour (no pass between) did not hold it.
            or_(
                Subscriber.resumed_at.is_(None),
                Subscriber.resumed_at <= clock.c.due_at,
                Subscriber.pause_began_at > clock.c.due_at,
            ),
            ~exists().where(
                DigestDelivery.subscriber_id == Subscriber.id,
                DigestDelivery.created_at >= clock.c.taken_since,
                # A digest made late (a catch-up at 00:15 after an outage, a backfill by hand) was
                # an earlier date's, and stands in for no other: the outage costs no second date.
                ~DigestDelivery.made_late,
                # Only a digest dated near this date stands in: a backfill of an older date by hand
                # (`digest send --date`) made this morning is not today's digest. Two days back, not
                # one: a catch-up made in the small hours is dated the old zone's day before, which
                # after a move a day east (Honolulu to Kiritimati) is two days before this one.
                DigestDelivery.digest_date >= clock.c.day - 2,
            ),
        )
    )
    return _insert_deliveries(session, due)


def add_deliveries_on(
    session: Session, *, digest_date: date, local: Sequence[LocalTime], now: datetime
) -> int:
    """A ledger row dated `digest_date` for every reader whose send days include its weekday,
    whatever their hour, and whose own local date (`local`: the clock in each zone now) has reached
    it (`papertide digest send --date`): a date not begun for a reader would be their digest of a
    day to come, sent today, and that day would then have none. A row for a date already over for
    its reader is a backfill, made late."""
    if not local:
        return 0
    clock = values(column("zone", Text), column("day", Date), name="clock").data(
        [(t.zone, t.day) for t in local]
    )
    due = (
        select(
            Subscriber.id,
            literal(digest_date),
            literal(DeliveryStatus.PENDING.value),
            literal(now),
            clock.c.day > digest_date,
        )
        .join(clock, clock.c.zone == Subscriber.time_zone)
        .where(
            *_may_receive(),
            literal(digest_date.isoweekday()) == func.any(Subscriber.send_days),
            clock.c.day >= digest_date,
        )
    )
    return _insert_deliveries(session, due)


def add_deliveries_today(session: Session, *, local: Sequence[LocalTime], now: datetime) -> int:
    """A ledger row dated with each reader's local date now (`local`: the clock in each of their
    zones) when it is one of their send days, whatever their hour (`papertide digest send`)."""
    if not local:
        return 0
    clock = values(column("zone", Text), column("day", Date), column("isodow", Integer), name="clock").data(
        [(t.zone, t.day, t.isodow) for t in local]
    )
    due = (
        select(Subscriber.id, clock.c.day, literal(DeliveryStatus.PENDING.value), literal(now), false())
        .join(clock, clock.c.zone == Subscriber.time_zone)
        .where(*_may_receive(), clock.c.isodow == func.any(Subscriber.send_days))
    )
    return _insert_deliveries(session, due)


def _may_receive() -> list[Any]:
    return [
        Subscriber.status == SubscriberStatus.CONFIRMED,
        Subscriber.paused_at.is_(None),
        _not_suppressed(),
    ]


def _insert_deliveries(session: Session, due: Any) -> int:
    # created_at is the pass's own clock (the same instant as the database's in production): the
    # retry window and the "a digest created since" rule of add_due_deliveries read it. In
    # subscriber order: ids follow it, and a run sends in id order (a table scan's order is the
    # heap's, which reuses the space of deleted rows).
    stmt = (
        insert(DigestDelivery)
        .from_select(
            ["subscriber_id", "digest_date", "status", "created_at", "made_late"], due.order_by(Subscriber.id)
        )
        .on_conflict_do_nothing(index_elements=["subscriber_id", "digest_date"])
        .returning(DigestDelivery.id)
    )
    return len(session.execute(stmt).all())


def _not_suppressed() -> Any:
    return ~exists().where(MailSuppression.email == Subscriber.email)


def _due(now: datetime) -> Any:
    """Open and due: never tried, left in hand-off, or deferred until a time that has come."""
    return or_(
        DigestDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        and_(DigestDelivery.status == DeliveryStatus.DEFERRED, DigestDelivery.next_attempt_at <= now),
    )


def claim_batch(
    session: Session, *, now: datetime, after: int, limit: int, in_hand_off: bool = True
) -> list[tuple[DigestDelivery, Subscriber]]:
    """Row-lock the next `limit` due deliveries, of any date, with ids above `after`, in id order,
    for confirmed, unsuppressed subscribers; rows another transaction has locked are skipped.
    Those of readers paused since are claimed too: the caller closes them under the claim's locks.
    `in_hand_off` False leaves out `sending` rows: those of a live sender (whose `sent` would wait
    on this claim's row locks) as well as a dead one's, which a later claim takes.

    The subscribers' rows are locked too, until the batch commits, which gives two rules:
    - an unsubscribe (or any change on the manage page, which locks the row) waits for the batch,
      then retires the links its digests carry: landing between this claim and the insert of those
      links, it left them live, and they opened (and ended) the address's next subscription;
    - one sender composes a reader's digests at a time: a second sender skips the reader's other
      open date (after an outage, a backfill) until the first has committed its papers, so a later
      pass composes it without them.
    NO KEY UPDATE: inserts that only point at the row (a sign-up's token, the day's delivery rows)
    neither wait for the batch nor make it skip the reader.

    A moving cursor (`after`) rather than a growing `NOT IN` list of the ids tried: the claim costs
    the same for the last delivery of a run as for the first (the partial index on open rows)."""
    stmt = (
        select(DigestDelivery, Subscriber)
        .join(Subscriber, Subscriber.id == DigestDelivery.subscriber_id)
        .where(
            _due(now) if in_hand_off else _due(now) & (DigestDelivery.status != DeliveryStatus.SENDING),
            DigestDelivery.id > after,
            Subscriber.status == SubscriberStatus.CONFIRMED,
            _not_suppressed(),
        )
        .order_by(DigestDelivery.id)
        .limit(limit)
        .with_for_update(of=(DigestDelivery, Subscriber), skip_locked=True, key_share=True)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def due_phrases(
    session: Session, *, now: datetime, model: str
) -> list[tuple[str, np.ndarray[Any, Any] | None]]:
    """Every interest phrase of the subscribers whose due deliveries are still to be composed, once
    each, in order, with its vector from `model` where an earlier run stored one."""
    to_compose = select(DigestDelivery.subscriber_id).where(_due(now), DigestDelivery.message.is_(None))
    phrase = func.unnest(InterestProfile.phrases).label("phrase")
    due = select(phrase).where(InterestProfile.subscriber_id.in_(to_compose)).distinct().subquery()
    stmt = (
        select(due.c.phrase, vector_bytes(PhraseEmbedding.embedding))
        .outerjoin(
            PhraseEmbedding, and_(PhraseEmbedding.phrase == due.c.phrase, PhraseEmbedding.model == model)
        )
        .order_by(due.c.phrase)
    )
    return [(p, None if data is None else from_vector_bytes(data)) for p, data in session.execute(stmt)]


def store_phrase_vectors(
    session: Session, *, model: str, phrases: Sequence[str], vectors: np.ndarray[Any, Any]
) -> None:
    """Keep the phrases' vectors for the next runs; a phrase another sender stored first is left
    as it is. In phrase order, so two senders storing the same phrases wait for each other, never
    deadlock."""
    rows = sorted(zip(phrases, vectors, strict=True), key=lambda row: row[0])
    for start in range(0, len(rows), _STORE_CHUNK):
        values = [
            {"model": model, "phrase": p, "embedding": np.asarray(v, np.float32)}
            for p, v in rows[start : start + _STORE_CHUNK]
        ]
        session.execute(insert(PhraseEmbedding).values(values).on_conflict_do_nothing())


_STORE_CHUNK = 500  # rows per INSERT: a statement's parameters stay well under PostgreSQL's 65,535


def prune_phrase_vectors(session: Session) -> int:
    """Forget the vectors of phrases that no profile holds any more; returns how many."""
    return int(getattr(session.execute(_PRUNE_PHRASE_VECTORS), "rowcount", 0) or 0)


# (A NULL among the phrases would make NOT IN unknown for every row: it is left out.)
_PRUNE_PHRASE_VECTORS = text(
    "DELETE FROM phrase_embedding WHERE phrase NOT IN"
    " (SELECT p FROM interest_profile, unnest(phrases) AS p WHERE p IS NOT NULL)"
)


def due_count(session: Session, *, now: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(DigestDelivery)
        .join(Subscriber, Subscriber.id == DigestDelivery.subscriber_id)
        .where(_due(now), Subscriber.status == SubscriberStatus.CONFIRMED, _not_suppressed())
    )
    return int(session.scalar(stmt) or 0)


def lock_for_record(session: Session, delivery_id: int) -> DigestDelivery | None:
    """The delivery, row-locked, to record how its hand-off ended."""
    stmt = select(DigestDelivery).where(DigestDelivery.id == delivery_id).with_for_update()
    return session.scalars(stmt).first()


def record_sent(executor: Session | Connection, *, delivery_id: int, now: datetime) -> bool:
    """`sending` -> `sent` in one statement (the common outcome, once per message); False when the
    delivery was not `sending` any more (another sender recorded it). On an autocommit Connection
    the statement is its own transaction: one round trip, no BEGIN and COMMIT around it."""
    params = {"id": delivery_id, "now": now, "sending": DeliveryStatus.SENDING, "sent": DeliveryStatus.SENT}
    return bool(executor.execute(_RECORD_SENT, params).rowcount)  # type: ignore[attr-defined]


# Written once, as text: built from expressions on every call, the statement cost more CPU than
# the database spent on it (py-spy on bench/digest_send.py's run, during development).
_RECORD_SENT = text(
    "UPDATE digest_delivery SET status = :sent, sent_at = :now, error = NULL, next_attempt_at = NULL,"
    " message = NULL WHERE id = :id AND status = :sending"
)


def try_hand_off_locks(locks: Connection, delivery_ids: Sequence[int]) -> set[int]:
    """Of these deliveries, those whose hand-off lock this sender now holds (one round trip).

    A session-level advisory lock on the sender's own autocommit connection: held while the
    message is with the mail server, with no transaction open, and gone when that process dies."""
    return set(locks.execute(*_try_locks("pg_try_advisory_lock", delivery_ids)).scalars())


def _try_locks(function: str, ids: Sequence[int], *, kind: int = HAND_OFF_LOCK) -> tuple[Any, dict[str, Any]]:
    """The statement (and its parameters) that tries the lock `kind` of each id with `function`.
    Two ids equal modulo 2^31 - 1 share a lock: the second waits for a later pass, nothing worse."""
    stmt = text(
        "SELECT id FROM unnest(CAST(:ids AS bigint[])) AS id"
        f" WHERE {function}(:kind, CAST(id % 2147483647 AS integer))"
    )
    return stmt, {"kind": kind, "ids": list(ids)}


def release_hand_off_locks(locks: Connection, delivery_ids: Sequence[int]) -> None:
    if not delivery_ids:
        return
    stmt = text(
        "SELECT pg_advisory_unlock(:kind, CAST(id % 2147483647 AS integer))"
        " FROM unnest(CAST(:ids AS bigint[])) AS id"
    )
    locks.execute(stmt, {"kind": HAND_OFF_LOCK, "ids": list(delivery_ids)})


def expire_overdue(session: Session, *, created_before: datetime, reason: str) -> int:
    """Fail, for good, what is still waiting although its retry window has closed: a hand-off a
    dead sender left unknown too (found by its free hand-off lock; a live sender's is left to it).
    Such a digest is not resent days late, after the scheduler was down; the server may have taken
    it, so its papers still count as the reader's (sent_paper_ids_of)."""
    left = select(DigestDelivery.id).where(
        DigestDelivery.status == DeliveryStatus.SENDING, DigestDelivery.created_at < created_before
    )
    free = try_hand_off_xact_locks(session, list(session.scalars(left)))
    stmt = (
        update(DigestDelivery)
        .where(
            or_(
                DigestDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.DEFERRED]),
                # Checked again on the row as it is now: one a live sender has just claimed is not ours.
                and_(DigestDelivery.status == DeliveryStatus.SENDING, DigestDelivery.id.in_(free)),
            ),
            DigestDelivery.created_at < created_before,
        )
        .values(
            status=DeliveryStatus.FAILED,
            error=func.concat(
                reason,
                ": ",
                case(
                    (DigestDelivery.status == DeliveryStatus.SENDING, _LEFT_IN_HAND_OFF),
                    else_=func.coalesce(DigestDelivery.error, "never tried"),
                ),
            ),
            next_attempt_at=None,
            message=None,
        )
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined, no-any-return]


_LEFT_IN_HAND_OFF = "left in hand-off by a sender that died (the mail server may have taken it)"


def close_for_gone_subscribers(session: Session, *, reason: str) -> int:
    """Close the open deliveries (a hand-off left unknown included) of subscribers who unsubscribed,
    paused or were suppressed since, and those made for an earlier subscription of a reader who
    has subscribed again (created before their current confirmation): they never go out, not even
    if the address subscribes again later. A `sending` row whose hand-off lock another sender holds
    is left to that sender: the mail server may be taking it right now."""
    gone = (
        select(DigestDelivery.id, DigestDelivery.status)
        .join(Subscriber, Subscriber.id == DigestDelivery.subscriber_id)
        .where(
            DigestDelivery.status.in_(OPEN),
            or_(
                Subscriber.status != SubscriberStatus.CONFIRMED,
                Subscriber.paused_at.is_not(None),
                ~_not_suppressed(),
                DigestDelivery.created_at < Subscriber.confirmed_at - CONFIRMATION_SKEW,
            ),
        )
    )
    rows = session.execute(gone).all()
    if not rows:
        return 0
    in_hand_off = [row.id for row in rows if row.status == DeliveryStatus.SENDING]
    free = try_hand_off_xact_locks(session, in_hand_off)
    stmt = (
        update(DigestDelivery)
        .where(
            DigestDelivery.id.in_([row.id for row in rows]),
            DigestDelivery.status.in_(OPEN),
            # Checked again on the row as it is at the update: one a live sender has just claimed
            # (now `sending`, its lock not ours) is left alone.
            or_(DigestDelivery.status != DeliveryStatus.SENDING, DigestDelivery.id.in_(free)),
        )
        .values(status=DeliveryStatus.FAILED, error=reason, next_attempt_at=None, message=None)
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined, no-any-return]


def try_hand_off_xact_locks(session: Session, delivery_ids: Sequence[int]) -> set[int]:
    """Of these deliveries, those whose hand-off lock was free and is now held until this
    transaction ends: a sender holding one (pg_try_advisory_lock, same keys) has it with the
    mail server, so whoever does not get it must leave that delivery alone."""
    if not delivery_ids:
        return set()
    return set(session.execute(*_try_locks("pg_try_advisory_xact_lock", delivery_ids)).scalars())


def check_connection(connection: Connection) -> None:
    """One round trip: raises when the connection's database session has ended (its backend
    terminated, idle_session_timeout, a restart), and with it every advisory lock it held."""
    connection.execute(text("SELECT 1"))


def keep_session(connection: Connection) -> None:
    """No idle_session_timeout (PostgreSQL 14+; nothing on older ones) for this session: a digest
    run's own connections sit idle while the mail server has a message, and must outlive that."""
    connection.execute(
        text("SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout'")
    )


def sent_paper_ids_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, set[str]]:
    """Every paper an earlier digest carried, or is still handing over, or has composed and waits
    to send (one the circuit breaker put back keeps its message and goes as it is), to each of
    these subscribers, in one query (those with none are left out).

    A digest handed to a mail server at least once counts whatever became of it: one left in
    hand-off by a dead sender (the server may have taken it) is later closed as `failed` when its
    reader pauses or leaves, and must not be repeated on their return. A paper of a digest that
    truly failed is then not offered again, the side a promise of "never twice" errs on."""
    composed = and_(DigestDelivery.status == DeliveryStatus.PENDING, DigestDelivery.message.is_not(None))
    stmt = (
        select(DigestDelivery.subscriber_id, DigestItem.paper_id)
        .join(DigestDelivery, DigestDelivery.id == DigestItem.delivery_id)
        .where(
            DigestDelivery.subscriber_id.in_(subscriber_ids),
            or_(DigestDelivery.status.in_(CARRIED), composed, DigestDelivery.attempts > 0),
        )
    )
    sent: dict[int, set[str]] = {}
    for subscriber_id, paper_id in session.execute(stmt):
        sent.setdefault(subscriber_id, set()).add(paper_id)
    return sent


def voted_paper_ids_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, set[str]]:
    """Every paper each of these subscribers voted on ("more" or "less like this", in any profile),
    in one query (those with none are left out)."""
    stmt = (
        select(InterestProfile.subscriber_id, PaperVote.paper_id)
        .join(InterestProfile, InterestProfile.id == PaperVote.profile_id)
        .where(InterestProfile.subscriber_id.in_(subscriber_ids))
    )
    voted: dict[int, set[str]] = {}
    for subscriber_id, paper_id in session.execute(stmt):
        voted.setdefault(subscriber_id, set()).add(paper_id)
    return voted


def votes_of(session: Session, subscriber_id: int) -> list[tuple[int, str, int]]:
    """Every vote of one subscriber, in any profile: (profile_id, paper_id, vote), in that order."""
    stmt = (
        select(PaperVote.profile_id, PaperVote.paper_id, PaperVote.vote)
        .join(InterestProfile, InterestProfile.id == PaperVote.profile_id)
        .where(InterestProfile.subscriber_id == subscriber_id)
        .order_by(PaperVote.profile_id, PaperVote.paper_id)
    )
    return [(profile_id, paper_id, vote) for profile_id, paper_id, vote in session.execute(stmt)]


def profiles_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, list[InterestProfile]]:
    """The interest profiles of many subscribers, each list in the order its sections appear."""
    stmt = (
        select(InterestProfile)
        .where(InterestProfile.subscriber_id.in_(subscriber_ids))
        .order_by(InterestProfile.subscriber_id, InterestProfile.position, InterestProfile.id)
    )
    profiles: dict[int, list[InterestProfile]] = {}
    for profile in session.scalars(stmt):
        profiles.setdefault(profile.subscriber_id, []).append(profile)
    return profiles


def add_link_tokens(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """The hashed tokens of a batch's unsubscribe and manage links (subscriber_id, purpose,
    token_hash), in one COPY."""
    _copy_rows(session, "subscriber_token", _LINK_TOKEN_COLUMNS, rows)


_LINK_TOKEN_COLUMNS = {"subscriber_id": "int8", "purpose": "text", "token_hash": "text"}


def add_items(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """The papers of a batch's digests (delivery_id, paper_id, rank, reason, section, profile_id)
    in one COPY, not one ORM object (nor one execution) per paper."""
    _copy_rows(session, "digest_item", _ITEM_COLUMNS, rows)


_ITEM_COLUMNS = {
    "delivery_id": "int8",
    "paper_id": "text",
    "rank": "int4",
    "reason": "text",
    "section": "text",
    "profile_id": "int8",
}


def _copy_rows(session: Session, table: str, columns: dict[str, str], rows: Sequence[dict[str, Any]]) -> None:
    """A batch's rows by one binary COPY: a thousand digest papers as arrays of text cost the
    sender 4.5 ms of CPU a batch, the COPY 0.7 ms (a one-off measurement, docs/benchmarks.md)."""
    if rows:
        bulk.copy_rows(
            session,
            table,
            list(columns),
            list(columns.values()),
            (tuple(r[c] for c in columns) for r in rows),
        )


def get_delivery(session: Session, delivery_id: int) -> DigestDelivery | None:
    return session.get(DigestDelivery, delivery_id)


def delivery_items(session: Session, *, delivery_id: int) -> list[Row[Any]]:
    """What a delivery carried, in the email's order: paper fields, reason, section, profile_id."""
    stmt = (
        select(
            Paper.id,
            Paper.title,
            Paper.authors,
            Paper.abstract,
            DigestItem.reason,
            DigestItem.section,
            DigestItem.profile_id,
        )
        .join(Paper, Paper.id == DigestItem.paper_id)
        .where(DigestItem.delivery_id == delivery_id)
        .order_by(DigestItem.rank)
    )
    return list(session.execute(stmt))


@dataclass(frozen=True)
class SampledPaper:
    title: str
    abstract: str
    embedding: np.ndarray[Any, Any]  # float32


def digest_item_at(
    session: Session, *, delivery_id: int, rank: int
) -> Row[str, int | None, str, int, datetime | None] | None:
    """The item at `rank` of a delivery, with whom it went to, for a vote from its link."""
    stmt = (
        select(
            DigestItem.paper_id,
            DigestItem.profile_id,
            DigestItem.section,
            DigestDelivery.subscriber_id,
            Subscriber.confirmed_at,
        )
        .join(DigestDelivery, DigestDelivery.id == DigestItem.delivery_id)
        .join(Subscriber, Subscriber.id == DigestDelivery.subscriber_id)
        .where(DigestItem.delivery_id == delivery_id, DigestItem.rank == rank)
    )
    return session.execute(stmt).first()


def background_sample(session: Session, *, model: str, size: int) -> list[SampledPaper]:
    """About `size` random papers embedded by `model`, the same ones on every call while the table
    is unchanged: TABLESAMPLE reads a share of the table's pages, not all of a million rows, and
    REPEATABLE makes calibration stable from run to run."""
    rows = session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'paper_embedding'")) or 0
    percent = min(100.0, 100.0 * 3 * size / rows) if rows > 0 else 100.0
    sampled = tablesample(PaperEmbedding, func.system(percent), name="sampled", seed=literal(7))
    stmt = (
        select(Paper.title, Paper.abstract, vector_bytes(sampled.c.embedding))
        .join(Paper, Paper.id == sampled.c.paper_id)
        .where(sampled.c.model == model)
        .order_by(sampled.c.paper_id)
        .limit(size)
    )
    return [SampledPaper(t, a, from_vector_bytes(e)) for t, a, e in session.execute(stmt)]


def profile_votes(session: Session, *, profile_id: int, model: str) -> list[Row[Any]]:
    """A profile's votes with each paper's title and vector by `model`; the vector is None for a
    paper that model has not embedded yet (the vote still counts, once it has)."""
    stmt = (
        select(PaperVote.paper_id, PaperVote.vote, Paper.title, PaperEmbedding.embedding)
        .join(Paper, Paper.id == PaperVote.paper_id)
        .outerjoin(PaperEmbedding, and_(PaperEmbedding.paper_id == Paper.id, PaperEmbedding.model == model))
        .where(PaperVote.profile_id == profile_id)
        .order_by(PaperVote.created_at, PaperVote.paper_id)
    )
    return list(session.execute(stmt))


def lock_profile_for_training(session: Session, *, profile_id: int) -> bool:
    """Hold the profile's row until commit while its model is trained again: a vote or an edit that
    lands meanwhile marks the profile stale only after this transaction's save, so the next run
    learns it (it is not lost between reading the votes and saving the model). False when the
    profile is gone."""
    stmt = (
        select(InterestProfile.id).where(InterestProfile.id == profile_id).with_for_update(key_share=True)
    )  # FOR NO KEY UPDATE
    return session.scalar(stmt) is not None


def save_model(
    session: Session, *, profile_id: int, model: dict[str, Any] | None, stale: bool = False
) -> None:
    """Store a profile's trained model; `stale` keeps it marked for training again next time (some
    of its votes could not be learned from yet)."""
    stmt = (
        update(InterestProfile)
        .where(InterestProfile.id == profile_id)
        .values(model=model, model_stale=stale)
        .execution_options(synchronize_session=False)
    )
    session.execute(stmt)


def suppress(session: Session, *, email: str, reason: str, delivery_id: int) -> None:
    """Record the refusal (the first one stays) and close the address's other open deliveries."""
    session.execute(
        insert(MailSuppression)
        .values(email=email, reason=reason, delivery_id=delivery_id)
        .on_conflict_do_nothing(index_elements=["email"])
    )
    others = (
        update(DigestDelivery)
        .where(
            DigestDelivery.subscriber_id
            == select(Subscriber.id).where(Subscriber.email == email).scalar_subquery(),
            DigestDelivery.id != delivery_id,
            DigestDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.DEFERRED]),
        )
        .values(status=DeliveryStatus.FAILED, error="address suppressed", next_attempt_at=None, message=None)
    )
    session.execute(others)


def suppression_of(session: Session, email: str) -> MailSuppression | None:
    return session.scalars(select(MailSuppression).where(MailSuppression.email == email)).first()


def lift_suppression(session: Session, *, email: str, before: datetime) -> bool:
    """Delete the address's suppression if the mail it was about went out before `before`; whether
    one was. That is when its digest went to the relay for a bounce that came back later (a late
    bounce of Monday's digest, handled on Wednesday, is lifted by Tuesday's link), else when the
    refusal was recorded. The margin is for the sender's clock against the database's."""
    handed_over = (
        select(DigestDelivery.sent_at + SENT_CLOCK_SKEW)
        .where(DigestDelivery.id == MailSuppression.delivery_id)
        .scalar_subquery()
    )
    stmt = delete(MailSuppression).where(
        MailSuppression.email == email, func.coalesce(handed_over, MailSuppression.created_at) < before
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def suppression_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(MailSuppression)) or 0)


def recent_suppressions(session: Session, *, limit: int) -> list[MailSuppression]:
    stmt = select(MailSuppression).order_by(MailSuppression.created_at.desc(), MailSuppression.id.desc())
    return list(session.scalars(stmt.limit(limit)))


def count_by_status(session: Session, statuses: Sequence[str]) -> dict[str, int]:
    stmt = (
        select(DigestDelivery.status, func.count())
        .where(DigestDelivery.status.in_(statuses))
        .group_by(DigestDelivery.status)
    )
    counts = dict.fromkeys(statuses, 0)
    counts.update({status: int(n) for status, n in session.execute(stmt)})
    return counts


def embeddings_for(
    session: Session, paper_ids: Sequence[str], *, model: str
) -> dict[str, np.ndarray[Any, Any]]:
    stmt = select(PaperEmbedding.paper_id, vector_bytes(PaperEmbedding.embedding)).where(
        PaperEmbedding.paper_id.in_(paper_ids), PaperEmbedding.model == model
    )
    return {paper_id: from_vector_bytes(data) for paper_id, data in session.execute(stmt)}
