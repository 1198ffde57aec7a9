"""Subscribers and the single-use tokens in their links (stored hashed)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


class Frequency(StrEnum):
    """How the form describes `send_days`: every day, chosen weekdays, or one day a week."""

    DAILY = "daily"
    WEEKDAYS = "weekdays"
    WEEKLY = "weekly"


EVERY_DAY = (1, 2, 3, 4, 5, 6, 7)  # ISO weekdays, Monday = 1


class TokenPurpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    MANAGE = "manage"  # opens the preferences page until it expires; used any number of times


class Subscriber(Base):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    frequency: Mapped[str] = mapped_column(Text, default=Frequency.DAILY)
    status: Mapped[str] = mapped_column(Text, default=SubscriberStatus.PENDING)
    papers_per_digest: Mapped[int] = mapped_column(Integer, default=8)  # per section
    interest_mix: Mapped[float] = mapped_column(Float, default=0.5)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # The digest goes at send_hour, local time in time_zone (IANA), on the ISO weekdays in send_days.
    send_hour: Mapped[int] = mapped_column(SmallInteger, default=7, server_default=text("7"))
    time_zone: Mapped[str] = mapped_column(Text, default="UTC", server_default=text("'UTC'"))
    send_days: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), default=lambda: list(EVERY_DAY), server_default=text("'{1,2,3,4,5,6,7}'")
    )
    paused_at: Mapped[datetime | None]
    resumed_at: Mapped[datetime | None]  # a missed date is not caught up if it fell in a pause
    pause_began_at: Mapped[datetime | None]  # when the last pause began (kept after the resume)
    # The newest mailed link the reader has opened was made then: mail sent before it reached them,
    # so a bounce that comes back later about a digest older than that is not believed
    # (digests/feedback.py).
    mail_reached_at: Mapped[datetime | None]
    trending_papers: Mapped[int] = mapped_column(Integer, default=8, server_default=text("8"))

    __table_args__ = (
        CheckConstraint("send_hour BETWEEN 0 AND 23", name="send_hour"),
        CheckConstraint(
            "cardinality(send_days) >= 1 AND send_days <@ ARRAY[1,2,3,4,5,6,7]::smallint[]", name="send_days"
        ),
    )


class InterestProfile(Base):
    """One named interest of a subscriber ("speech", "RL theory"): its own section of the digest.

    `model` is the profile's learned ranker (digests/learning.py), trained from its votes; it is
    retrained on the next digest after a vote marks it stale.
    """

    __tablename__ = "interest_profile"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    phrases: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    model: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    model_stale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (UniqueConstraint("subscriber_id", "name"),)


class PaperVote(Base):
    """ "More like this" (+1) or "less like this" (-1) on a paper, for one profile; the latest vote stands."""

    __tablename__ = "paper_vote"

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("interest_profile.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    vote: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (CheckConstraint("vote IN (-1, 1)", name="vote"),)


class SubscriberToken(Base):
    """A random token from an email link; only its SHA-256 is stored. Each works once.

    A confirm token carries the choices of the sign-up that created it: confirming it applies
    those, so a later sign-up by someone else cannot change what an earlier link confirms.
    """

    __tablename__ = "subscriber_token"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    used_at: Mapped[datetime | None]
    interests: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    frequency: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "purpose <> 'confirm' OR (interests IS NOT NULL AND frequency IS NOT NULL)",
            name="confirm_has_choices",
        ),
    )
