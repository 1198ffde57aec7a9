"""A success page means the change is saved: the request's commit runs before the response is sent."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from papertide import db
from papertide.digests.mailer import OutboxMailer
from papertide.models import Subscriber
from papertide.web.app import create_app
from tests.helpers import csrf_from, serving


def run_at_commit(body: str) -> None:
    """Make every commit that inserted a subscriber run `body` (PL/pgSQL) first, as a deferred trigger."""
    with db.get_engine().begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS"
                f" $$ BEGIN {body}; RETURN NULL; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON subscriber"
                " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit()"
            )
        )


def subscribers_committed(email: str) -> int:
    """How many rows for `email` another connection sees right now."""
    with db.get_engine().connect() as connection:
        stmt = select(func.count()).select_from(Subscriber).where(Subscriber.email == email)
        return connection.execute(stmt).scalar_one()


def test_a_sign_up_whose_commit_fails_gets_a_503_page_not_a_success_page(
    database: str, session: Session, tmp_path: Path
) -> None:
    run_at_commit("RAISE EXCEPTION 'the database refused the commit'")
    app = create_app(encoder_provider=lambda: None, mailer=OutboxMailer(tmp_path / "outbox"))
    with TestClient(app, raise_server_exceptions=False) as client:
        form = client.get("/subscribe")
        response = client.post("/subscribe", data={"email": "fail@example.org", "csrf": csrf_from(form.text)})

    assert response.status_code == 503
    assert "Check your inbox" not in response.text
    assert "We could not save that just now, so nothing was changed. Please try again" in response.text
    assert response.headers["Retry-After"] == "5"
    assert subscribers_committed("fail@example.org") == 0


def test_after_a_200_the_sign_up_is_already_committed(database: str, tmp_path: Path) -> None:
    # A slow commit: before the fix the 200 went out first and the row appeared half a second later.
    run_at_commit("PERFORM pg_sleep(0.5)")
    app = create_app(encoder_provider=lambda: None, mailer=OutboxMailer(tmp_path / "outbox"))
    with serving(app) as base, httpx.Client(base_url=base) as client:
        form = client.get("/subscribe")
        response = client.post(
            "/subscribe", data={"email": "saved@example.org", "csrf": csrf_from(form.text)}
        )
        seen = subscribers_committed("saved@example.org")

    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert seen == 1


class WatchingMailer:
    """Records, while it 'sends', what the database says: open transactions and the new row."""

    def __init__(self) -> None:
        self.open_transactions: list[int] = []
        self.saved_before_send: list[int] = []

    def send(self, message: object) -> None:
        with db.get_engine().connect() as connection:
            idle_in_transaction = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
            self.open_transactions.append(connection.execute(idle_in_transaction).scalar_one())
        self.saved_before_send.append(subscribers_committed("watched@example.org"))


def test_the_sign_up_is_saved_before_the_email_and_no_transaction_waits_on_the_mail_server(
    database: str, tmp_path: Path
) -> None:
    mailer = WatchingMailer()
    with TestClient(create_app(mailer=mailer)) as client:
        form = client.get("/subscribe")
        answer = client.post(
            "/subscribe", data={"email": "watched@example.org", "csrf": csrf_from(form.text)}
        )

    assert answer.status_code == 200
    assert mailer.open_transactions == [0]
    assert mailer.saved_before_send == [1]
