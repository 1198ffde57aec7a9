"""Two requests at once against the real database: the same new address signed up twice, a link
pressed twice. Each race is set up for certain: the first holds its transaction open until the
second is seen waiting on its row lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import db
from papertide.models import Subscriber
from papertide.subscribers import service
from papertide.web.app import create_app
from tests.helpers import csrf_from, link_token, wait_for_lock_waiters


class HeldMailer:
    """Sends nothing until released, so the first sign-up's transaction stays open meanwhile."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.arrived.set()
        assert self.release.wait(timeout=30), "the test never released the mail"
        self.sent.append(message)


def test_two_sign_ups_of_the_same_new_address_at_once_both_succeed(database: str, session: Session) -> None:
    mailer = HeldMailer()
    with TestClient(create_app(encoder_provider=lambda: None, mailer=mailer)) as client:
        data = {"email": "twice@example.org", "csrf": csrf_from(client.get("/subscribe").text)}

        def sign_up() -> tuple[int, str]:
            response = client.post("/subscribe", data=data)
            return response.status_code, response.text

        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(sign_up)
            assert mailer.arrived.wait(timeout=30), "the first sign-up reached the mailer"
            second = pool.submit(sign_up)
            wait_for_lock_waiters(1)  # the second waits on the first's new row
            mailer.release.set()
            responses = [first.result(timeout=30), second.result(timeout=30)]

    assert [status for status, _ in responses] == [200, 200]
    assert all("Check your inbox" in page for _, page in responses)
    assert len(session.scalars(select(Subscriber)).all()) == 1
    assert len({link_token(m, "confirm") for m in mailer.sent}) == 2, "each sign-up has its own link"


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
