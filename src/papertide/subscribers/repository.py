"""SQL for subscribers and their link tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.models import Subscriber, SubscriberStatus, SubscriberToken


def get_by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


def get(session: Session, subscriber_id: int) -> Subscriber | None:
    return session.get(Subscriber, subscriber_id)


def add(session: Session, *, email: str, papers_per_digest: int, interest_mix: float) -> Subscriber:
    """A new pending subscriber, flushed so it has an id."""
    subscriber = Subscriber(
        email=email,
        status=SubscriberStatus.PENDING,
        papers_per_digest=papers_per_digest,
        interest_mix=interest_mix,
    )
    session.add(subscriber)
    session.flush()
    return subscriber


def get_token(session: Session, *, token_hash: str, purpose: str) -> SubscriberToken | None:
    stmt = select(SubscriberToken).where(
        SubscriberToken.token_hash == token_hash, SubscriberToken.purpose == purpose
    )
    return session.scalar(stmt)


def add_token(session: Session, *, subscriber_id: int, purpose: str, token_hash: str) -> None:
    session.add(SubscriberToken(subscriber_id=subscriber_id, purpose=purpose, token_hash=token_hash))
    session.flush()


def confirmed(session: Session, *, frequencies: list[str]) -> list[Subscriber]:
    stmt = select(Subscriber).where(
        Subscriber.status == SubscriberStatus.CONFIRMED, Subscriber.frequency.in_(frequencies)
    )
    return list(session.scalars(stmt.order_by(Subscriber.id)))


def mark_used(token: SubscriberToken, *, at: datetime) -> None:
    if token.used_at is None:
        token.used_at = at
