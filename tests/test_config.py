"""PAPERTIDE_BASE_URL: what is accepted, what stops at startup with the reason, what empty means."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from papertide import site_url
from papertide.config import Settings, redact_smtp_url

PRODUCTION = "postgresql+psycopg://papertide@db/papertide"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PAPERTIDE_BASE_URL", "PAPERTIDE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAPERTIDE_DATA_DIR", str(tmp_path))


@pytest.mark.parametrize("database_url", [None, PRODUCTION], ids=["embedded", "production"])
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://papers.example.org/?utm=mail", "has a query string"),
        ("https://papers.example.org/?", "has a query string"),
        ("https://papers.example.org/#top", "has a fragment"),
        ("https://papers.example.org:99999", "port out of range"),
        ("https://papers.example.org:0", "port out of range"),
        ("https://papers.example.org:http", "port out of range"),
        ("ftp://papers.example.org", "not an http(s) URL"),
        ("papers.example.org", "not an http(s) URL"),
        ("/papers", "not an http(s) URL"),
        ("javascript:alert(1)//papers.example.org", "not an http(s) URL"),
        ("https://papers.example .org", "not an http(s) URL"),
        ("http://[::1", "not an http(s) URL"),
        ("https://", "has no host"),
        ("https://admin:secret@papers.example.org", "user name or password"),
        ("https://papers.example.org/a>b", "characters a URL cannot hold (>)"),  # ends <URL> in a header
        ('https://papers.example.org/"<x', 'characters a URL cannot hold (" <)'),
        ("https://papers.example.org/a|b{c}", "characters a URL cannot hold ({ | })"),
        ("https://papers.example.org/100%", "a % that is not a %-escape"),
    ],
)
def test_a_bad_base_url_is_refused_at_startup_naming_the_setting_and_the_problem(
    monkeypatch: pytest.MonkeyPatch, database_url: str | None, url: str, reason: str
) -> None:
    if database_url:
        monkeypatch.setenv("PAPERTIDE_DATABASE_URL", database_url)
    monkeypatch.setenv("PAPERTIDE_BASE_URL", url)

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert "PAPERTIDE_BASE_URL" in str(refused.value)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://papers.example.org/", "https://papers.example.org"),
        ("http://papers.example.org:8080", "http://papers.example.org:8080"),
        ("https://example.org/papertide/", "https://example.org/papertide"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        (" https://papers.example.org ", "https://papers.example.org"),
    ],
)
def test_an_absolute_http_url_with_a_path_prefix_is_accepted(url: str, kept: str) -> None:
    settings = Settings(base_url=url, database_url=PRODUCTION)

    assert settings.base_url == kept
    assert settings.base_url_problem() is None


def test_an_empty_base_url_is_unset_in_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "")  # `PAPERTIDE_BASE_URL=` in .env

    assert Settings().base_url == site_url.DEFAULT
    with site_url.published(tmp_path, "http://127.0.0.1:8811"):
        assert Settings().base_url == "http://127.0.0.1:8811", "the running site's URL, as if unset"


def test_an_empty_base_url_in_production_is_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERTIDE_DATABASE_URL", PRODUCTION)
    monkeypatch.setenv("PAPERTIDE_BASE_URL", " ")

    problem = Settings().base_url_problem()

    assert problem is not None
    assert problem.startswith("PAPERTIDE_BASE_URL is not set")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1:8000",
        "http://0:8000",
        "http://0.0.0.0:8000",
        "http://[::ffff:127.0.0.1]:8000",
        "http://[::1]:8000",
        "http://localhost.:8000",
    ],
)
def test_production_refuses_every_spelling_of_a_loopback_base_url(url: str) -> None:
    problem = Settings(base_url=url, database_url=PRODUCTION).base_url_problem()

    assert problem is not None
    assert "only this machine can reach" in problem


@pytest.mark.parametrize("value", ["0", "17", "two"])
def test_a_digest_sender_count_out_of_range_is_refused_at_startup_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PAPERTIDE_DIGEST_SENDERS", value)
    with pytest.raises(ValidationError, match="digest_senders"):
        Settings()


@pytest.mark.parametrize(
    ("mail_from", "kept"),
    [
        ("papertide <digest@example.org>", "papertide <digest@example.org>"),
        ("Zoë <digest@example.org>", "Zoë <digest@example.org>"),  # a name beyond ASCII is fine
        ("papertide <digest@papiers.café.example>", "papertide <digest@papiers.xn--caf-dma.example>"),
        ("digest@bücher.de", "digest@xn--bcher-kva.de"),
        ("digest@faß.de", "digest@xn--fa-hia.de"),  # IDNA 2008: not fass.de, another domain
        # A name holding the domain's text is not rewritten (it keeps its words, encoded as a header
        # writes them); only the address is.
        (
            '"Papiers @café.example" <digest@café.example>',
            "=?utf-8?q?Papiers_=40caf=C3=A9=2Eexample?= <digest@xn--caf-dma.example>",
        ),
    ],
)
def test_a_mail_from_domain_beyond_ascii_is_kept_in_its_ascii_form(mail_from: str, kept: str) -> None:
    """So the envelope, the From header and each Message-ID are ASCII, which every server takes."""
    assert Settings(mail_from=mail_from).mail_from == kept


def test_a_mail_from_whose_name_before_the_at_is_beyond_ascii_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match=r"PAPERTIDE_MAIL_FROM=.*before the @ must be ASCII"):
        Settings(mail_from="papertide <josé@example.org>")


@pytest.mark.parametrize("domain", ["-café.example", "café..example"])
def test_a_mail_from_domain_beyond_ascii_that_is_no_domain_name_is_refused_naming_it(domain: str) -> None:
    with pytest.raises(
        ValidationError, match=rf"PAPERTIDE_MAIL_FROM=.*'{re.escape(domain)}' is not a domain name"
    ):
        Settings(mail_from=f"papertide <digest@{domain}>")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smpts://digest:hunter2@mail.example.org:465", "must start smtp://"),
        ("garbage", "must start smtp://"),
        ("http://digest:hunter2@mail.example.org", "must start smtp://"),
        ("smtp://digest:hunter2@127.0.0.1:notaport", "has a bad port"),
        ("smtp://digest:hunter2@mail.example.org:99999", "has a bad port"),
        ("smtp://digest:hunter2@:587", "names no host"),
    ],
)
def test_a_bad_smtp_url_is_refused_at_startup_without_showing_its_password(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match="PAPERTIDE_SMTP_URL") as refused:
        Settings(smtp_url=url)

    assert problem in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_an_empty_smtp_url_or_mail_from_is_unset() -> None:
    assert Settings(smtp_url=" ").smtp_url is None
    assert Settings(smtp_url="smtps://u:p@mail.example.org").smtp_url == "smtps://u:p@mail.example.org"
    assert Settings(mail_from="").mail_from == Settings().mail_from  # never an empty From


@pytest.mark.parametrize(
    "mail_from",
    [
        "nobody",
        "a@",
        "@example.org",
        "a@b@c",
        "x <a b@c>",
        "a@b.org, c@d.org",
        "x <a@b.org> y",
        "a@b.org\nBcc: c@d",
        # Line breaks beyond CR and LF: the email package refuses them in a header, so every
        # message of every run would fail to build.
        "papertide\u2028x <digest@example.org>",
        "papertide\x85x <digest@example.org>",
        "papertide\x0bx <digest@example.org>",
        "digest@-.",  # no domain name: the Message-IDs end in it
        "digest@example..org",
        "x <a..b@example.org>",  # no mailbox name a From header carries unquoted
    ],
)
def test_a_mail_from_that_is_not_one_address_is_refused_naming_the_setting(mail_from: str) -> None:
    with pytest.raises(ValidationError, match="PAPERTIDE_MAIL_FROM"):
        Settings(mail_from=mail_from)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SMTP_TIMEOUT_SECONDS", "inf"),
        ("SMTP_TIMEOUT_SECONDS", "1e300"),
        ("SMTP_TIMEOUT_SECONDS", "nan"),
        ("DIGEST_RETRY_HOURS", "inf"),
        ("DIGEST_RETRY_HOURS", "1e8"),
        ("RUN_HEARTBEAT_SECONDS", "inf"),
        ("SUBSCRIBE_RATE_LIMIT_PER_HOUR", "0"),  # every sign-up "too many"
    ],
)
def test_a_setting_that_would_break_every_run_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    """Infinite or huge times overflow the clock's arithmetic mid-run."""
    monkeypatch.setenv(f"PAPERTIDE_{setting}", value)

    with pytest.raises(ValidationError, match=setting.lower()):
        Settings()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "smtp://digest:hunter2@mail.example.org:587?starttls=true",
            "smtp://digest:***@mail.example.org:587?starttls=true",
        ),
        (
            "smtp://digest:hunt@r2@mail.example.org",
            "smtp://digest:***@mail.example.org",
        ),  # an @ in it, unquoted
        ("smtp://digest@mail.example.org", "smtp://digest@mail.example.org"),  # no password: nothing to hide
        ("smtp://mail.example.org:25", "smtp://mail.example.org:25"),
        ("smtp://u:hunter2@[::1", "<unreadable>"),
    ],
)
def test_an_smtp_url_is_shown_with_its_password_masked(url: str, shown: str) -> None:
    assert redact_smtp_url(url) == shown
