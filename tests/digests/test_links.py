"""Links and headers as a real mail client sees them: the raw bytes the SMTP server receives, and
absolute links that point at the running site (issue 9)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import site_url
from papertide.config import BaseUrlError, Settings, get_settings
from papertide.digests.mailer import SmtpMailer
from papertide.models import DigestDelivery, JobRun, JobStatus
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.helpers import Inbox, csrf_from, digest_ready, embedded_default, smtp_server

DAY = datetime(2026, 11, 24, tzinfo=UTC).date()
# Long enough that `List-Unsubscribe: <base/unsubscribe/token>` cannot fit a 78-character line.
LONG_BASE = "https://papers.example-university.edu/papertide/instance-one"


class BusyOnce(Inbox):
    """Answers the first DATA with a 4xx, so the digest goes again from the stored message."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = True

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.busy:
            self.busy = False
            return "451 4.3.0 Mailbox busy, try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def long_base_url(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PAPERTIDE_BASE_URL", LONG_BASE)
    get_settings.cache_clear()
    yield LONG_BASE
    get_settings.cache_clear()


def head(raw: bytes) -> bytes:
    """The header block of a message as it went over the wire."""
    return re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]


def assert_standard_headers(raw: bytes) -> None:
    """Message-ID and Date present, and no RFC 2047 encoded word anywhere in an ASCII header block."""
    block = head(raw)
    assert b"=?" not in block, block.decode()
    assert re.search(rb"^Message-ID: <[^<>@\s]+@[^<>@\s]+>\r?$", block, re.M), block.decode()
    date = re.search(rb"^Date: (.+?)\r?$", block, re.M)
    assert date, block.decode()
    assert parsedate_to_datetime(date.group(1).decode()).tzinfo is not None


def assert_one_click_unsubscribe(raw: bytes) -> None:
    block = head(raw)
    pattern = rb"^List-Unsubscribe: <" + re.escape(LONG_BASE.encode()) + rb"/unsubscribe/[A-Za-z0-9_\-]+>\r?$"
    assert re.search(pattern, block, re.M), block.decode()
    assert re.search(rb"^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$", block, re.M), block.decode()


def test_a_digest_goes_on_the_wire_with_an_unencoded_one_click_unsubscribe(
    long_base_url: str, session: Session
) -> None:
    digest_ready(["a@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )

    assert result.sent == 1
    [raw] = inbox.raw
    assert_one_click_unsubscribe(raw)
    assert_standard_headers(raw)
    stored_id = session.scalars(select(DigestDelivery.message_id)).one()
    assert f"\nMessage-ID: {stored_id}".encode() in raw.replace(b"\r\n", b"\n")


def test_a_digest_sent_again_from_the_stored_message_keeps_its_raw_headers(
    long_base_url: str, session: Session
) -> None:
    digest_ready(["a@example.org"])
    inbox, now = BusyOnce(), datetime.now(UTC)
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        first = jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None, now=now)
        again = jobs.retry_digests(mailer=mailer, now=now + timedelta(minutes=5))

    assert first.deferred == 1
    assert again is not None
    assert again.sent == 1
    [raw] = inbox.raw
    assert_one_click_unsubscribe(raw)
    assert_standard_headers(raw)


def test_a_confirmation_goes_on_the_wire_with_message_id_date_and_the_sites_link(
    long_base_url: str,
) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        app = create_app(encoder_provider=lambda: None, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"))
        with TestClient(app) as client:
            form = client.get("/subscribe")
            client.post("/subscribe", data={"email": "new@example.org", "csrf": csrf_from(form.text)})

    [raw] = inbox.raw
    assert_standard_headers(raw)
    assert f"{LONG_BASE}/confirm/".encode() in raw


@pytest.mark.parametrize(
    "base_url",
    [None, "http://127.0.0.1:8000", "http://localhost:8811", "http://[::1]:8000", "http://127.1.2.3"],
    ids=["missing", "127.0.0.1", "localhost", "ipv6-loopback", "127/8"],
)
def test_production_refuses_to_mail_links_nobody_can_follow(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch, base_url: str | None
) -> None:
    # `database` sets PAPERTIDE_DATABASE_URL: production, as far as papertide can tell.
    if base_url is None:
        monkeypatch.delenv("PAPERTIDE_BASE_URL")
    else:
        monkeypatch.setenv("PAPERTIDE_BASE_URL", base_url)
    get_settings.cache_clear()
    digest_ready(["a@example.org"])
    inbox = Inbox()

    with smtp_server(inbox) as port, pytest.raises(BaseUrlError, match="PAPERTIDE_BASE_URL") as refused:
        jobs.send_digests(digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None)

    assert inbox.raw == [], "nothing was sent"
    assert session.scalars(select(DigestDelivery)).all() == [], "nothing was even composed"
    run = session.scalars(select(JobRun).where(JobRun.job == "digest")).one()
    assert run.status == JobStatus.FAILED
    assert str(refused.value) in (run.error or "")
    assert "public address" in str(refused.value)


def test_the_embedded_default_uses_the_running_sites_url_and_an_explicit_one_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAPERTIDE_BASE_URL", raising=False)
    monkeypatch.delenv("PAPERTIDE_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    assert Settings(data_dir=data).base_url == "http://127.0.0.1:8000", "no site runs: the default"

    with site_url.published(data, site_url.for_listener("0.0.0.0", 8811)):
        assert Settings(data_dir=data).base_url == "http://127.0.0.1:8811"
        assert Settings(data_dir=data, base_url="https://papers.example.org/").base_url == (
            "https://papers.example.org"
        )
        assert Settings(data_dir=data).base_url_problem() is None, "loopback links work on one machine"

    assert not (data / "site_url").exists(), "the site removes its URL when it stops"
    assert Settings(data_dir=data).base_url == "http://127.0.0.1:8000"


def test_a_data_dir_that_cannot_be_written_does_not_stop_the_site(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data dir should be")
    ran = False

    with site_url.published(not_a_dir, "http://127.0.0.1:8811"):
        ran = True

    assert ran


def test_a_scheduler_started_before_the_site_links_to_where_the_site_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The embedded default (no database URL, no base URL): a digest run reads the site's URL again,
    # so a scheduler whose settings were cached before `papertide up --port 8811` links there.
    embedded_default(monkeypatch, tmp_path)
    try:
        assert get_settings().base_url == site_url.DEFAULT  # cached before any site ran
        with site_url.published(tmp_path, "http://127.0.0.1:8811"):
            during = jobs._settings_with_the_sites_url().require_mail_base_url()
        after = jobs._settings_with_the_sites_url().base_url
    finally:
        get_settings.cache_clear()

    assert during == "http://127.0.0.1:8811"
    assert after == site_url.DEFAULT, "the site stopped: back to the default"
