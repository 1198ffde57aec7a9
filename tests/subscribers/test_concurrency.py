"""Two requests at once against the real database: the same new address signed up twice, a link
pressed twice. Each race is set up for certain: the first holds its transaction open until the
second is seen waiting on its row lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import db
from papertide.models import Subscriber
from papertide.subscribers import service
from tests.helpers import wait_for_lock_waiters


def test_two_sign_ups_of_the_same_new_address_at_once_both_succeed(database: str, session: Session) -> None:
    with db.session_factory()() as first, db.session_factory()() as second:
        mine = service.subscribe(first, email="twice@example.org", interests="agents", frequency="daily")
        with ThreadPoolExecutor(max_workers=1) as pool:
            theirs = pool.submit(
                service.subscribe, second, email="twice@example.org", interests="speech", frequency="weekly"
            )
            wait_for_lock_waiters(1)  # the second waits on the first's new row
            first.commit()
            other = theirs.result(timeout=30)  # before the fix: a duplicate-key error here
            second.commit()

    assert mine.confirm_token
    assert other.confirm_token
    assert mine.confirm_token != other.confirm_token, "each sign-up has its own link"
    assert len(session.scalars(select(Subscriber)).all()) == 1


def test_a_link_pressed_twice_at_once_is_used_once(database: str) -> None:
    with db.unit_of_work() as setup:
        token = service.subscribe(setup, email="double@example.org", interests="agents", frequency="daily")
        assert token.confirm_token
    with db.session_factory()() as first, db.session_factory()() as second:
        used = service.confirm(first, token.confirm_token)
        with ThreadPoolExecutor(max_workers=1) as pool:
            again = pool.submit(service.confirm, second, token.confirm_token)
            wait_for_lock_waiters(1)
            first.commit()
            replayed = again.result(timeout=30)
            second.commit()

    assert used is not None
    assert used.state == service.LinkState.VALID
    assert replayed is not None
    assert replayed.state == service.LinkState.USED
