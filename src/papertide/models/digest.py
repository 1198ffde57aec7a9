"""The digest ledger: one delivery per (subscriber, digest date), and the papers it carried."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    EMPTY = "empty"  # nothing new to send: no email goes out, and none is retried
    FAILED = "failed"


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

    __table_args__ = (UniqueConstraint("subscriber_id", "digest_date"),)


class DigestItem(Base):
    __tablename__ = "digest_item"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("digest_delivery.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
