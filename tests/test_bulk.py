"""bulk.copy_rows: rows in by one binary COPY, in the caller's transaction; a refused COPY raises
SQLAlchemy's error (the kind every caller and the CLI handle), and nothing of it is kept."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from papertide import bulk
from papertide.models import SubscriberToken
from papertide.subscribers import repository as subscriber_repository

COLUMNS, TYPES = ("subscriber_id", "purpose", "token_hash"), ("int8", "text", "text")


def reader(session: Session) -> int:
    return subscriber_repository.add(session, email="r@example.org", papers_per_digest=5, interest_mix=0.5).id


def test_rows_go_in_within_the_callers_transaction(session: Session) -> None:
    session.commit()
    subscriber_id = reader(session)  # uncommitted: the COPY is in the same transaction
    bulk.copy_rows(
        session,
        "subscriber_token",
        COLUMNS,
        TYPES,
        [(subscriber_id, "manage", "h1"), (subscriber_id, "manage", "h2")],
    )
    hashes = session.scalars(select(SubscriberToken.token_hash).order_by(SubscriberToken.token_hash)).all()
    assert hashes == ["h1", "h2"]
    session.rollback()  # the caller's to decide: its rollback takes the rows too
    assert session.scalar(select(func.count()).select_from(SubscriberToken)) == 0


def test_a_refused_copy_raises_sqlalchemys_error_and_keeps_none_of_its_rows(session: Session) -> None:
    subscriber_id = reader(session)
    session.commit()
    rows = [(subscriber_id, "manage", "ok"), (subscriber_id + 1000, "manage", "no such subscriber")]
    with pytest.raises(IntegrityError, match="subscriber_token"):
        bulk.copy_rows(session, "subscriber_token", COLUMNS, TYPES, rows)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(SubscriberToken)) == 0
