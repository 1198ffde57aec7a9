"""SQL for the delivery ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from papertide.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestItem,
    PaperEmbedding,
    Subscriber,
    SubscriberStatus,
)


def ensure_deliveries(session: Session, *, subscriber_ids: Sequence[int], digest_date: date) -> None:
    """One ledger row per (subscriber, date); rows that exist already are left as they are."""
    if not subscriber_ids:
        return
    rows = [
        {"subscriber_id": sid, "digest_date": digest_date, "status": DeliveryStatus.PENDING}
        for sid in subscriber_ids
    ]
    session.execute(insert(DigestDelivery).values(rows).on_conflict_do_nothing())


def claim_next(
    session: Session, *, digest_date: date, exclude: Sequence[int]
) -> tuple[DigestDelivery, Subscriber] | None:
    """Lock the next unsent delivery for a still-confirmed subscriber; others' locks are skipped."""
    stmt = (
        select(DigestDelivery, Subscriber)
        .join(Subscriber, Subscriber.id == DigestDelivery.subscriber_id)
        .where(
            DigestDelivery.digest_date == digest_date,
            DigestDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
            Subscriber.status == SubscriberStatus.CONFIRMED,
            DigestDelivery.id.not_in(exclude) if exclude else DigestDelivery.id.is_not(None),
        )
        .order_by(DigestDelivery.id)
        .limit(1)
        .with_for_update(of=DigestDelivery, skip_locked=True)
    )
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def sent_paper_ids(session: Session, *, subscriber_id: int) -> set[str]:
    """Every paper any earlier digest carried to this subscriber."""
    stmt = (
        select(DigestItem.paper_id)
        .join(DigestDelivery, DigestDelivery.id == DigestItem.delivery_id)
        .where(DigestDelivery.subscriber_id == subscriber_id, DigestDelivery.status == DeliveryStatus.SENT)
    )
    return set(session.scalars(stmt))


def add_items(session: Session, *, delivery_id: int, items: Sequence[tuple[str, str]]) -> None:
    session.add_all(
        DigestItem(delivery_id=delivery_id, paper_id=pid, rank=rank, reason=reason)
        for rank, (pid, reason) in enumerate(items, start=1)
    )


def embeddings_for(
    session: Session, paper_ids: Sequence[str], *, model: str
) -> dict[str, np.ndarray[Any, Any]]:
    stmt = select(PaperEmbedding.paper_id, PaperEmbedding.embedding).where(
        PaperEmbedding.paper_id.in_(paper_ids), PaperEmbedding.model == model
    )
    return {row.paper_id: np.asarray(row.embedding, dtype=np.float32) for row in session.execute(stmt)}
