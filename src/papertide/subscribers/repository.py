"""SQL for subscribers, their link tokens, and the sign-up limit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from papertide.models import (
    Frequency,
    InterestProfile,
    PaperVote,
    RequestLimit,
    Subscriber,
    SubscriberStatus,
    SubscriberToken,
    TokenPurpose,
)


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


def get_or_add(session: Session, *, email: str, papers_per_digest: int, interest_mix: float) -> Subscriber:
    """The subscriber with this address, added as pending if there is none.

    `ON CONFLICT DO NOTHING`: when two sign-ups of a new address run at once, the second waits for
    the first to commit and then reads its row, instead of failing on the unique email.
    """
    stmt = (
        insert(Subscriber)
        .values(
            email=email,
            status=SubscriberStatus.PENDING,
            frequency=Frequency.DAILY,
            papers_per_digest=papers_per_digest,
            interest_mix=interest_mix,
        )
        .on_conflict_do_nothing(index_elements=[Subscriber.email])
    )
    subscriber = get_by_email(session, email)
    if subscriber is None:
        session.execute(stmt)
        subscriber = get_by_email(session, email)
    assert subscriber is not None, "inserted, or committed by a sign-up that ran at the same time"
    return subscriber


def lock(session: Session, subscriber_id: int) -> Subscriber | None:
    """The subscriber, its row locked until commit and its attributes read afresh."""
    stmt = (
        select(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(stmt)


def get_token(
    session: Session, *, token_hash: str, purpose: str, fresh: bool = False
) -> SubscriberToken | None:
    """A token by its hash; `fresh` reads it again even if this session has it already."""
    stmt = select(SubscriberToken).where(
        SubscriberToken.token_hash == token_hash, SubscriberToken.purpose == purpose
    )
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return session.scalar(stmt)


def add_token(
    session: Session,
    *,
    subscriber_id: int,
    purpose: str,
    token_hash: str,
    interests: list[str] | None = None,
    frequency: str | None = None,
) -> None:
    session.add(
        SubscriberToken(
            subscriber_id=subscriber_id,
            purpose=purpose,
            token_hash=token_hash,
            interests=interests,
            frequency=frequency,
        )
    )
    session.flush()


def retire_confirm_tokens(session: Session, *, subscriber_id: int, at: datetime) -> None:
    """Mark a subscriber's unused confirm tokens used: no link in the mailbox confirms any more."""
    _retire_tokens(session, subscriber_id=subscriber_id, purpose=TokenPurpose.CONFIRM, at=at)


def retire_manage_tokens(session: Session, *, subscriber_id: int, at: datetime) -> None:
    """Mark a subscriber's unused manage tokens used: their links stop opening the page."""
    _retire_tokens(session, subscriber_id=subscriber_id, purpose=TokenPurpose.MANAGE, at=at)


def retire_unsubscribe_tokens(session: Session, *, subscriber_id: int, at: datetime) -> None:
    """Mark a subscriber's unused unsubscribe tokens used: every old digest's link is spent."""
    _retire_tokens(session, subscriber_id=subscriber_id, purpose=TokenPurpose.UNSUBSCRIBE, at=at)


def _retire_tokens(session: Session, *, subscriber_id: int, purpose: str, at: datetime) -> None:
    stmt = update(SubscriberToken).where(
        SubscriberToken.subscriber_id == subscriber_id,
        SubscriberToken.purpose == purpose,
        SubscriberToken.used_at.is_(None),
    )
    session.execute(stmt.values(used_at=at), execution_options={"synchronize_session": False})


def has_unused_token(session: Session, *, subscriber_id: int, purpose: str, created_after: datetime) -> bool:
    """Whether the subscriber has a token of this purpose, unused and created after `created_after`."""
    stmt = select(SubscriberToken.id).where(
        SubscriberToken.subscriber_id == subscriber_id,
        SubscriberToken.purpose == purpose,
        SubscriberToken.used_at.is_(None),
        SubscriberToken.created_at > created_after,
    )
    return session.scalar(stmt.limit(1)) is not None


def profiles(session: Session, subscriber_id: int) -> list[InterestProfile]:
    """A subscriber's interest profiles in the order their sections appear."""
    stmt = select(InterestProfile).where(InterestProfile.subscriber_id == subscriber_id)
    return list(session.scalars(stmt.order_by(InterestProfile.position, InterestProfile.id)))


def get_profile(session: Session, profile_id: int) -> InterestProfile | None:
    return session.get(InterestProfile, profile_id)


def lock_profile(session: Session, profile_id: int) -> InterestProfile | None:
    """The profile read afresh with its row key-share locked until commit (rows may still point at
    it; nobody may delete it meanwhile); None when it is gone, a delete committed before included."""
    stmt = (
        select(InterestProfile)
        .where(InterestProfile.id == profile_id)
        .with_for_update(read=True, key_share=True)
        .execution_options(populate_existing=True)
    )
    return session.scalar(stmt)


def mark_model_stale(profile: InterestProfile) -> None:
    """Have the profile's model trained again before its next digest. The flag is written even when
    it is already set: the write waits for a digest run training the profile now (which holds the
    row, digests.repository.lock_profile_for_training) and lands after that run clears the flag, so
    the vote or edit is learned next time instead of lost."""
    profile.model_stale = True
    flag_modified(profile, "model_stale")


def add_profile(
    session: Session, *, subscriber_id: int, name: str, phrases: list[str], categories: list[str]
) -> InterestProfile:
    """A new profile after the subscriber's others (its section comes last), flushed so it has an id."""
    last = session.scalar(
        select(func.max(InterestProfile.position)).where(InterestProfile.subscriber_id == subscriber_id)
    )
    profile = InterestProfile(
        subscriber_id=subscriber_id,
        name=name,
        phrases=phrases,
        categories=categories,
        position=0 if last is None else last + 1,
    )
    session.add(profile)
    session.flush()
    return profile


def delete_profile(session: Session, profile: InterestProfile) -> None:
    """The profile and its votes (ON DELETE CASCADE); digest items keep their section name."""
    session.delete(profile)
    session.flush()


def upsert_vote(session: Session, *, profile_id: int, paper_id: str, vote: int) -> None:
    """Record a vote; a later vote on the same paper for the same profile replaces the earlier one."""
    stmt = insert(PaperVote).values(profile_id=profile_id, paper_id=paper_id, vote=vote)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[PaperVote.profile_id, PaperVote.paper_id],
            set_={"vote": stmt.excluded.vote, "created_at": func.now()},
        )
    )


def prune_tokens(session: Session, *, older_than: dict[str, datetime], batch: int) -> int:
    """Delete up to `batch` tokens per purpose created before that purpose's cut-off."""
    deleted = 0
    for purpose, before in older_than.items():
        doomed = (
            select(SubscriberToken.id)
            .where(SubscriberToken.purpose == purpose, SubscriberToken.created_at < before)
            .limit(batch)
        )
        stmt = delete(SubscriberToken).where(SubscriberToken.id.in_(doomed.scalar_subquery()))
        deleted += session.execute(stmt, execution_options={"synchronize_session": False}).rowcount  # type: ignore[attr-defined]
    return deleted


def mark_used(token: SubscriberToken, *, at: datetime) -> None:
    if token.used_at is None:
        token.used_at = at


def count_request(session: Session, *, key: str, window_start: datetime) -> int:
    """Count one request for `key` in its window and return the window's count so far.

    One upsert on the primary key: it takes the row's lock only for this statement's transaction,
    and every web process counts in the same row.
    """
    stmt = (
        insert(RequestLimit)
        .values(window_start=window_start, key=key, count=1)
        .on_conflict_do_update(
            index_elements=[RequestLimit.window_start, RequestLimit.key],
            set_={"count": RequestLimit.count + 1},
        )
        .returning(RequestLimit.count)
    )
    return int(session.execute(stmt).scalar_one())


def uncount_request(session: Session, *, key: str, window_start: datetime) -> None:
    """Take one request back from `key`'s count in its window (never below zero)."""
    session.execute(
        update(RequestLimit)
        .where(RequestLimit.window_start == window_start, RequestLimit.key == key, RequestLimit.count > 0)
        .values(count=RequestLimit.count - 1)
    )


def prune_request_limits(session: Session, *, before: datetime, batch: int = 100) -> int:
    """Delete up to `batch` counts of windows that started before `before` (a primary-key range)."""
    expired = (
        select(RequestLimit.window_start, RequestLimit.key)
        .where(RequestLimit.window_start < before)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    stmt = delete(RequestLimit).where(tuple_(RequestLimit.window_start, RequestLimit.key).in_(expired))
    return session.execute(stmt, execution_options={"synchronize_session": False}).rowcount  # type: ignore[attr-defined,no-any-return]
