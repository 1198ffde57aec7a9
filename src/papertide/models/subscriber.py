"""Subscribers and the single-use tokens in their links (stored hashed)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Integer, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class TokenPurpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"


class Subscriber(Base):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    interests: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    frequency: Mapped[str] = mapped_column(Text, default=Frequency.DAILY)
    status: Mapped[str] = mapped_column(Text, default=SubscriberStatus.PENDING)
    papers_per_digest: Mapped[int] = mapped_column(Integer, default=8)
    interest_mix: Mapped[float] = mapped_column(Float, default=0.5)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]


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
