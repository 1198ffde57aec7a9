"""A form of papertide's is taken only from papertide's own pages: a page elsewhere that posts it from
its visitors' browsers (a sign-up in their name, a change to a reader's digest) gets a 403 and
changes nothing. Browsers say where a post comes from (Sec-Fetch-Site, else Origin); a client that
says neither is left to the form's token, as before."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.digests.mailer import SmtpMailer
from papertide.models import Subscriber
from papertide.web.app import create_app
from papertide.web.deps import FOREIGN_FORM, csrf_token
from papertide.web.routes.subscribe import NO_SITE_ADDRESS
from tests.helpers import Inbox, csrf_from
from tests.web.test_manage import manage_link, profile_names


@pytest.fixture
def client(mail_client: TestClient) -> TestClient:
    return mail_client


def sign_up(client: TestClient, headers: dict[str, str]) -> int:
    token = csrf_from(client.get("/subscribe").text)
    return client.post(
        "/subscribe", data={"email": "victim@example.org", "csrf": token}, headers=headers
    ).status_code


def subscribers(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Subscriber)) or 0


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},  # a sibling subdomain is another site's page too
        {"sec-fetch-site": "Cross-Site ", "origin": "http://testserver"},  # Fetch Metadata decides
        {"origin": "https://evil.example"},
        {"origin": "null"},  # a sandboxed frame elsewhere
        {"origin": "http://testserver.evil.example"},
        {"origin": "http://testserver:8443"},  # another port is another origin
        {"origin": "not a url"},
        {"origin": "null", "host": "[bad"},  # neither side an origin: still not ours
    ],
    ids=[
        "cross-site",
        "same-site",
        "fetch-metadata-first",
        "other",
        "null",
        "suffix",
        "port",
        "junk",
        "null-host",
    ],
)
def test_a_sign_up_posted_from_another_site_is_refused_and_sends_nothing(
    client: TestClient, session: Session, smtp: tuple[Inbox, SmtpMailer], headers: dict[str, str]
) -> None:
    inbox, _ = smtp
    token = csrf_from(client.get("/subscribe").text)

    response = client.post("/subscribe", data={"email": "victim@example.org", "csrf": token}, headers=headers)

    assert response.status_code == 403
    assert FOREIGN_FORM in response.text.replace("&#39;", "'")
    assert subscribers(session) == 0
    assert inbox.messages == []


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},  # typed or bookmarked, no page in between
        {"origin": "http://testserver"},
        {"origin": "https://testserver"},  # a TLS proxy in front: the app sees http, the browser https
        {"origin": "HTTP://TESTSERVER:80"},  # the default port, written out
        {"origin": "http://testserver", "host": "127.0.0.1:8000"},  # the base URL, behind a proxy
        {"origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"},  # the address the browser used
        {},  # curl, or a browser that says nothing: the token decides
        {"sec-fetch-site": "same-origin", "origin": "https://proxied.example"},  # Fetch Metadata decides
        {"origin": "http://[::1]:8000", "host": "[::1]:8000"},  # an IPv6 address, as browsers write it
    ],
    ids=[
        "same-origin",
        "none",
        "origin",
        "tls-proxy",
        "default-port",
        "base-url",
        "host",
        "silent",
        "metadata-first",
        "ipv6",
    ],
)
def test_a_sign_up_from_this_site_goes_through(
    client: TestClient, session: Session, smtp: tuple[Inbox, SmtpMailer], headers: dict[str, str]
) -> None:
    inbox, _ = smtp

    assert sign_up(client, headers) == 200
    assert subscribers(session) == 1
    assert len(inbox.messages) == 1


def test_a_change_to_a_readers_digest_posted_from_another_site_changes_nothing(
    client: TestClient, session: Session
) -> None:
    page = manage_link(session)
    csrf = csrf_from(client.get(page).text)
    data = {"name": "Planted", "phrases": "crypto", "csrf": csrf}

    foreign = client.post(page + "/profiles", data=data, headers={"origin": "https://evil.example"})
    own = client.post(
        page + "/profiles", data=data, headers={"sec-fetch-site": "same-origin"}, follow_redirects=False
    )

    assert foreign.status_code == 403
    assert own.status_code == 303
    assert profile_names(session) == ["My interests", "Planted"]


def test_a_sign_up_on_a_production_site_without_its_public_address_sends_no_dead_link(
    database: str, session: Session, smtp: tuple[Inbox, SmtpMailer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a database URL set and BASE_URL unset or loopback, the confirm link would point at
    127.0.0.1: the reader gets a 503 that says why, nothing is stored and no email goes out."""
    inbox, mailer = smtp
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "http://127.0.0.1:8000")
    get_settings.cache_clear()
    assert get_settings().base_url_problem() is not None  # production: the tests set a database URL

    with TestClient(create_app(encoder_provider=lambda: None, mailer=mailer)) as client:
        token = csrf_from(client.get("/subscribe").text)
        page = client.post("/subscribe", data={"email": "x@example.org", "csrf": token})
        status = page.status_code

    assert status == 503
    assert NO_SITE_ADDRESS in page.text.replace("&#39;", "'")
    assert subscribers(session) == 0
    assert inbox.messages == []


@pytest.mark.parametrize(("age_minutes", "stored"), [(119, 1), (121, 0)])
def test_a_form_left_open_over_two_hours_must_be_reloaded(
    client: TestClient,
    session: Session,
    smtp: tuple[Inbox, SmtpMailer],
    monkeypatch: pytest.MonkeyPatch,
    age_minutes: int,
    stored: int,
) -> None:
    """A form's token lives two hours (CSRF_MAX_AGE_SECONDS): a token copied from a page once stays
    usable for that long only; an older one gets a 400 that says to reload, and nothing is stored."""
    inbox, _ = smtp
    signed_at = int(time.time()) - 60 * age_minutes
    with monkeypatch.context() as past:
        past.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
        token = csrf_token(get_settings(), "subscribe")

    response = client.post("/subscribe", data={"email": "late@example.org", "csrf": token})

    assert response.status_code == (200 if stored else 400)
    if not stored:
        assert "The form has expired. Reload the page and try again." in response.text
    assert subscribers(session) == stored
    assert len(inbox.messages) == stored
