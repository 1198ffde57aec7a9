"""The digest ledger: one delivery per (subscriber, digest date), the papers it carried, and the
addresses whose mail server refused them for good."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base


class DeliveryStatus(StrEnum):
    """pending -> sending -> sent | deferred | failed; deferred -> sending again (docs/operations.md)."""

    PENDING = "pending"  # nothing composed yet
    SENDING = "sending"  # composed and committed; handed to the mail server or about to be
    DEFERRED = "deferred"  # a temporary failure: the same message goes again at next_attempt_at
    SENT = "sent"
    EMPTY = "empty"  # nothing new to send: no email goes out, and none is retried
    FAILED = "failed"  # for good: a permanent 5xx, or still not delivered when the retry window closed


class DigestDelivery(Base):
    __tablename__ = "digest_delivery"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    digest_date: Mapped[date] = mapped_column(Date)
    as_of_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, default=DeliveryStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    # The composed message, kept from `sending` until the delivery ends: every retry and every resend
    # of an unknown hand-off sends these very bytes (same Message-ID, same papers).
    message: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Made after its date had ended for the reader (a catch-up, a `digest send --date` backfill):
    # it stands in for no later date's digest (digests/repository.add_due_deliveries).
    made_late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("subscriber_id", "digest_date"),
        # The send loop's claim reads only open rows; the ledger grows by one row per subscriber a day.
        Index(
            "ix_digest_delivery_open",
            "id",
            postgresql_where=text("status IN ('pending', 'sending', 'deferred')"),
        ),
    )


class DigestItem(Base):
    __tablename__ = "digest_item"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("digest_delivery.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    # The section the paper was sent in: a profile's name, or "Trending" (profile_id NULL). A vote
    # from the email lands in this profile.
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("interest_profile.id", ondelete="SET NULL"))
    section: Mapped[str] = mapped_column(Text, default="Trending", server_default=text("'Trending'"))


class MailSuppression(Base):
    """An address a mail server refused with a permanent 5xx: it gets no more digests."""

    __tablename__ = "mail_suppression"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    reason: Mapped[str] = mapped_column(Text)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("digest_delivery.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DigestPass(Base):
    """When the scheduler's digest pass last ran (one row): a date whose send hour a pass saw is
    never caught up later; only one that fell while no pass ran is (digests/schedule.py)."""

    __tablename__ = "digest_pass"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    last_at: Mapped[datetime]


class PhraseEmbedding(Base):
    """An interest phrase's vector from one model, kept from one digest run to the next: a run
    encodes only the phrases no run has seen (a new reader's, an edited profile's, every phrase once
    after the model changes), where it encoded every due phrase each time. Rows of phrases no
    profile holds any more are pruned by the scheduler (digests.service.prune_phrase_vectors)."""

    __tablename__ = "phrase_embedding"

    model: Mapped[str] = mapped_column(Text, primary_key=True)
    phrase: Mapped[str] = mapped_column(Text, primary_key=True)
    embedding: Mapped[Any] = mapped_column(Vector())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
