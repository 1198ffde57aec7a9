"""SQL for the delivery ledger, its hand-off locks and the suppressed addresses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from papertide.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestItem,
    MailSuppression,
    PaperEmbedding,
    Subscriber,
    SubscriberStatus,
)

# Not yet ended: never tried, with the mail server (or left there by a dead sender), or waiting to retry.
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
# The papers a subscriber has had or is about to get: a later digest never repeats them.
CARRIED = (DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
# pg_try_advisory_lock(int, int): this first key names "a digest hand-off", the second is the delivery.
HAND_OFF_LOCK = 0x64696773  # "digs"


def ensure_deliveries(session: Session, *, subscriber_ids: Sequence[int], digest_date: date) -> None:
    """One ledger row per (subscriber, date); rows that exist already are left as they are."""
    if not subscriber_ids:
        return
    rows = [
        {"subscriber_id": sid, "digest_date": digest_date, "status": DeliveryStatus.PENDING}
        for sid in subscriber_ids
    ]
    session.execute(insert(DigestDelivery).values(rows).on_conflict_do_nothing())


def _not_suppressed() -> Any:
    return ~exists().where(MailSuppression.email == Subscriber.email)


def _due(now: datetime) -> Any:
    """Open and due: never tried, left in hand-off, or deferred until a time that has come."""
    return or_(
        DigestDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        and_(DigestDelivery.status == DeliveryStatus.DEFERRED, DigestDelivery.next_attempt_at <= now),
    )


def claim_due(
    session: Session, *, now: datetime, exclude: Sequence[int]
) -> tuple[DigestDelivery, Subscriber] | None:
    """Lock the next due delivery, of any date, for a confirmed, unsuppressed subscriber; others'
    row locks are skipped."""
    stmt = (
        select(DigestDelivery, Subscriber)
        .join(Subscriber, Subscriber.id == DigestDelivery.subscriber_id)
        .where(
            _due(now),
            Subscriber.status == SubscriberStatus.CONFIRMED,
            _not_suppressed(),
            DigestDelivery.id.not_in(exclude) if exclude else DigestDelivery.id.is_not(None),
        )
        .order_by(DigestDelivery.id)
        .limit(1)
        .with_for_update(of=DigestDelivery, skip_locked=True)
    )
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


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


def try_hand_off_lock(locks: Connection, delivery_id: int) -> bool:
    """A session-level advisory lock on the sender's own autocommit connection: held while the
    message is with the mail server, with no transaction open, and gone when that process dies."""
    stmt = text("SELECT pg_try_advisory_lock(:kind, CAST(:id % 2147483647 AS integer))")
    return bool(locks.execute(stmt, {"kind": HAND_OFF_LOCK, "id": delivery_id}).scalar())


def release_hand_off_lock(locks: Connection, delivery_id: int) -> None:
    stmt = text("SELECT pg_advisory_unlock(:kind, CAST(:id % 2147483647 AS integer))")
    locks.execute(stmt, {"kind": HAND_OFF_LOCK, "id": delivery_id})


def expire_overdue(session: Session, *, created_before: datetime, reason: str) -> int:
    """Fail, for good, what is still waiting although its retry window has closed."""
    stmt = (
        update(DigestDelivery)
        .where(
            DigestDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.DEFERRED]),
            DigestDelivery.created_at < created_before,
        )
        .values(
            status=DeliveryStatus.FAILED,
            error=func.concat(reason, ": ", func.coalesce(DigestDelivery.error, "never tried")),
            next_attempt_at=None,
            message=None,
        )
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined, no-any-return]


def close_for_gone_subscribers(session: Session, *, reason: str) -> int:
    """Close the open deliveries (a hand-off left unknown included) of subscribers who unsubscribed
    or were suppressed since: they never go out, not even if the address subscribes again later."""
    gone = select(Subscriber.id).where(
        or_(Subscriber.status != SubscriberStatus.CONFIRMED, ~_not_suppressed())
    )
    stmt = (
        update(DigestDelivery)
        .where(
            DigestDelivery.status.in_(OPEN),
            DigestDelivery.subscriber_id.in_(gone.scalar_subquery()),
        )
        .values(status=DeliveryStatus.FAILED, error=reason, next_attempt_at=None, message=None)
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined, no-any-return]


def sent_paper_ids(session: Session, *, subscriber_id: int) -> set[str]:
    """Every paper an earlier digest carried, or is still handing over, to this subscriber."""
    stmt = (
        select(DigestItem.paper_id)
        .join(DigestDelivery, DigestDelivery.id == DigestItem.delivery_id)
        .where(DigestDelivery.subscriber_id == subscriber_id, DigestDelivery.status.in_(CARRIED))
    )
    return set(session.scalars(stmt))


def add_items(session: Session, *, delivery_id: int, items: Sequence[tuple[str, str]]) -> None:
    session.add_all(
        DigestItem(delivery_id=delivery_id, paper_id=pid, rank=rank, reason=reason)
        for rank, (pid, reason) in enumerate(items, start=1)
    )


def suppressed_emails(session: Session, emails: Sequence[str]) -> set[str]:
    if not emails:
        return set()
    return set(session.scalars(select(MailSuppression.email).where(MailSuppression.email.in_(emails))))


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
    stmt = select(PaperEmbedding.paper_id, PaperEmbedding.embedding).where(
        PaperEmbedding.paper_id.in_(paper_ids), PaperEmbedding.model == model
    )
    return {row.paper_id: np.asarray(row.embedding, dtype=np.float32) for row in session.execute(stmt)}
