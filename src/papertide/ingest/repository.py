"""SQL for ingestion's own state: each source's checkpoint and the shared request schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from papertide.models import RateLimit, SourceState


def get_state(session: Session, key: str) -> dict[str, Any]:
    """A source's saved checkpoint ({} when it has none)."""
    row = session.get(SourceState, key)
    return dict(row.state) if row else {}


def save_state(session: Session, key: str, state: dict[str, Any]) -> None:
    """Replace a source's checkpoint."""
    stmt = insert(SourceState).values(source=key, state=state)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SourceState.source], set_={"state": state, "updated_at": func.now()}
        )
    )


def book_slot(session: Session, key: str, *, interval: timedelta, now: datetime) -> datetime:
    """Take the next free slot for `key` at or after `now` under a row lock, and move the schedule on."""
    session.execute(insert(RateLimit).values(key=key, next_at=now).on_conflict_do_nothing())
    row = session.scalars(select(RateLimit).where(RateLimit.key == key).with_for_update()).one()
    slot = max(row.next_at, now)
    row.next_at = slot + interval
    return slot
