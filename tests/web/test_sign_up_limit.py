"""The sign-up limit lives in Postgres: every web process shares it, and only a trusted proxy's
X-Forwarded-For names the client."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

from papertide.config import Settings, get_settings
from papertide.digests.mailer import OutboxMailer, SmtpMailer
from papertide.models import RequestLimit
from papertide.subscribers import service
from papertide.web.app import create_app
from papertide.web.deps import client_address
from tests.helpers import T0, csrf_from, free_port


@pytest.fixture
def limit_two(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERTIDE_SUBSCRIBE_RATE_LIMIT_PER_HOUR", "2")
    monkeypatch.setenv("PAPERTIDE_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    get_settings.cache_clear()


def web_process(outbox: Path) -> FastAPI:
    """One more web app on the same database, as another `papertide serve` worker would run it."""
    return create_app(encoder_provider=lambda: None, mailer=OutboxMailer(outbox))


def sign_up(client: TestClient, n: int, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    csrf = csrf_from(client.get("/subscribe").text)
    return client.post(
        "/subscribe", data={"email": f"r{n}@example.org", "csrf": csrf}, headers=headers
    ).status_code


def test_two_web_processes_share_one_limit(limit_two: None, tmp_path: Path) -> None:
    first = TestClient(web_process(tmp_path / "a"), client=("203.0.113.7", 50000))
    second = TestClient(web_process(tmp_path / "b"), client=("203.0.113.7", 50001))

    statuses = [sign_up(first, 1), sign_up(second, 2), sign_up(first, 3)]
    csrf = csrf_from(first.get("/subscribe").text)
    refused = first.post("/subscribe", data={"email": "r4@example.org", "csrf": csrf})

    assert statuses == [200, 200, 429]
    assert "Too many sign-ups from your address" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 3600


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(limit_two: None, tmp_path: Path) -> None:
    client = TestClient(web_process(tmp_path), client=("203.0.113.7", 50000))

    statuses = [sign_up(client, n, forwarded_for=f"198.51.100.{n}") for n in range(3)]

    assert statuses == [200, 200, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(limit_two: None, tmp_path: Path) -> None:
    proxy = TestClient(web_process(tmp_path), client=("10.0.0.2", 50000))

    one = [sign_up(proxy, n, forwarded_for="198.51.100.1") for n in range(2)]
    # What the client wrote left of the address the proxy appended is its own invention.
    forged = sign_up(proxy, 2, forwarded_for="6.6.6.6, 198.51.100.1")
    through_two_proxies = sign_up(proxy, 3, forwarded_for="7.7.7.7, 198.51.100.1, 10.1.2.3")
    other = sign_up(proxy, 4, forwarded_for="198.51.100.2")

    assert one == [200, 200]
    assert (forged, through_two_proxies, other) == (429, 429, 200)


def scope_request(peer: str, forwarded_for: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    return Request({"type": "http", "headers": headers, "client": (peer, 1234)})


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "key"),
    [
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", None, "2001:db8:1:2::/64"),  # one IPv6 client holds a whole /64
        ("2001:db8:1:2:bbbb::9", None, "2001:db8:1:2::/64"),
        ("192.0.2.1", "198.51.100.1", "198.51.100.1"),
        ("192.0.2.1", "198.51.100.1, 10.0.0.9", "198.51.100.1"),
        ("192.0.2.1", None, "192.0.2.1"),  # a trusted proxy's own request
        ("192.0.2.1", "10.0.0.9", "10.0.0.9"),  # nothing but proxies: the left-most of them
        ("192.0.2.1", "unknown, 198.51.100.1", "198.51.100.1"),
        # Left of a hop that is no address the client could have written anything: not counted.
        ("192.0.2.1", "203.0.113.9, unknown, 10.0.0.9", "10.0.0.9"),
        # A peer name the server gave that is no address (a proxy's own label): a bounded key.
        ("edge-" + "x" * 200, None, "edge-" + "x" * 59),
    ],
)
def test_the_client_a_limit_counts(peer: str, forwarded_for: str | None, key: str) -> None:
    settings = Settings.model_validate({"trusted_proxies": "10.0.0.0/8,192.0.2.1"})
    assert client_address(scope_request(peer, forwarded_for), settings) == key


def test_a_trusted_proxy_that_is_not_an_address_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"'10\.0\.0\.300' is not an IP address or a CIDR network"):
        Settings.model_validate({"trusted_proxies": "10.0.0.1, 10.0.0.300"})


def test_a_refused_sign_up_says_when_the_next_hour_begins(tx_session: Session) -> None:
    """Retry-After is the wait until the count starts again (the next clock hour), never 0."""
    assert service.allow_sign_up(tx_session, client="a", limit=1, now=T0 + timedelta(minutes=10)).allowed

    refused = service.allow_sign_up(tx_session, client="a", limit=1, now=T0 + timedelta(minutes=59))
    last_moment = service.allow_sign_up(
        tx_session, client="a", limit=1, now=T0 + timedelta(minutes=59, seconds=59, milliseconds=600)
    )

    assert not refused.allowed
    assert refused.retry_after_seconds == 60
    assert not last_moment.allowed
    assert last_moment.retry_after_seconds == 1


def test_past_hours_are_pruned_as_new_ones_begin(tx_session: Session) -> None:
    for client in ("a", "b", "c"):
        assert service.allow_sign_up(tx_session, client=client, limit=1, now=T0).allowed
    assert not service.allow_sign_up(tx_session, client="a", limit=1, now=T0 + timedelta(minutes=59)).allowed

    later = service.allow_sign_up(tx_session, client="a", limit=1, now=T0 + timedelta(hours=2))

    assert later.allowed
    windows = tx_session.scalars(select(RequestLimit.window_start).distinct()).all()
    assert windows == [T0 + timedelta(hours=2)]
    assert tx_session.scalar(select(func.count()).select_from(RequestLimit)) == 1


def test_one_address_gets_a_few_sign_up_emails_an_hour_however_many_clients_ask(
    database: str, tmp_path: Path
) -> None:
    """A page elsewhere posting the form from each of its visitors' browsers (one client address
    each) must not fill one inbox: after SIGN_UP_EMAILS_PER_ADDRESS emails in an hour nothing more
    is sent, and the page says what it always says."""
    outbox = tmp_path / "outbox"
    app = web_process(outbox)
    pages = []
    for n in range(service.SIGN_UP_EMAILS_PER_ADDRESS + 3):
        visitor = TestClient(app, client=(f"198.51.100.{n + 1}", 50000))
        csrf = csrf_from(visitor.get("/subscribe").text)
        pages.append(visitor.post("/subscribe", data={"email": "victim@example.org", "csrf": csrf}))
    other = TestClient(app, client=("198.51.100.99", 50000))
    csrf = csrf_from(other.get("/subscribe").text)
    other.post("/subscribe", data={"email": "someone-else@example.org", "csrf": csrf})

    sent_to = sorted(p.read_text().split("To: ", 1)[1].split("\n", 1)[0] for p in outbox.iterdir())
    assert sent_to.count("victim@example.org") == service.SIGN_UP_EMAILS_PER_ADDRESS
    assert sent_to.count("someone-else@example.org") == 1
    assert {page.status_code for page in pages} == {200}
    assert len({page.text for page in pages}) == 1, "the same words whether an email went or not"


def _sign_up_as(app: FastAPI, n: int, email: str) -> int:
    visitor = TestClient(app, client=(f"198.51.100.{n + 1}", 50000))
    csrf = csrf_from(visitor.get("/subscribe").text)
    return visitor.post("/subscribe", data={"email": email, "csrf": csrf}).status_code


def _sent_to(outbox: Path) -> list[str]:
    return [p.read_text().split("To: ", 1)[1].split("\n", 1)[0] for p in outbox.iterdir()]


def test_the_subaddresses_of_one_inbox_share_its_sign_up_emails(database: str, tmp_path: Path) -> None:
    """victim+1@, victim+2@, ... all land in victim@'s inbox."""
    outbox = tmp_path / "outbox"
    app = web_process(outbox)
    for n in range(service.SIGN_UP_EMAILS_PER_ADDRESS + 3):
        assert _sign_up_as(app, n, f"Victim+{n}@example.org") == 200

    assert len(_sent_to(outbox)) == service.SIGN_UP_EMAILS_PER_ADDRESS


def test_a_sign_up_email_the_mail_server_did_not_take_does_not_count(database: str, tmp_path: Path) -> None:
    """Three tries while the mail server is down (503 each): the fourth, once it is back, is sent."""
    down = create_app(encoder_provider=lambda: None, mailer=SmtpMailer(f"smtp://127.0.0.1:{free_port()}"))
    tries = [_sign_up_as(down, n, "reader@example.org") for n in range(service.SIGN_UP_EMAILS_PER_ADDRESS)]
    outbox = tmp_path / "outbox"

    back = _sign_up_as(web_process(outbox), 9, "reader@example.org")

    assert tries == [503] * service.SIGN_UP_EMAILS_PER_ADDRESS
    assert back == 200
    assert _sent_to(outbox) == ["reader@example.org"]
