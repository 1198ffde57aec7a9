"""DATA_DIR/site_url: which running site links in emails point at, when several start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from papertide import site_url
from papertide.config import Settings, get_settings
from papertide.digests.mailer import SmtpMailer
from papertide.worker import jobs
from tests.helpers import Inbox, digest_ready, smtp_server

SITE_A = "http://127.0.0.1:8811"
SITE_B = "http://127.0.0.1:8822"


def test_stopping_one_of_two_sites_on_a_data_dir_keeps_the_other_sites_url(tmp_path: Path) -> None:
    with site_url.published(tmp_path, SITE_A):  # make run PORT=8811, left running
        with site_url.published(tmp_path, SITE_B):  # papertide serve --port 8822 ...
            assert site_url.resolve(tmp_path) == SITE_B, "the newest site wins while it runs"
        # ... stopped: a `digest send` from another shell links to the site still running.
        assert site_url.resolve(tmp_path) == SITE_A
    assert site_url.resolve(tmp_path) == site_url.DEFAULT
    assert not (tmp_path / "site_url").exists(), "the last site to stop removes the file"


def test_a_site_on_an_ipv6_link_local_address_with_a_zone_publishes_a_url_commands_follow(
    tmp_path: Path,
) -> None:
    """The zone's % is written %25 (RFC 6874): a bare % is no URL, and other commands would fall back
    to http://127.0.0.1:8000."""
    url = site_url.for_listener("fe80::1%eth0", 9000)

    with site_url.published(tmp_path, url):
        assert url == "http://[fe80::1%25eth0]:9000"
        assert site_url.read(tmp_path) == url


def test_stopping_the_first_site_keeps_the_second_sites_url(tmp_path: Path) -> None:
    first = site_url.publish(tmp_path, SITE_A)
    with site_url.published(tmp_path, SITE_B):
        site_url.withdraw(tmp_path, first)

        assert site_url.resolve(tmp_path) == SITE_B


def test_a_second_start_on_the_same_port_that_cannot_bind_keeps_the_running_sites_url(
    tmp_path: Path,
) -> None:
    with site_url.published(tmp_path, SITE_A):
        with pytest.raises(OSError, match="address already in use"), site_url.published(tmp_path, SITE_A):
            raise OSError("[Errno 98] address already in use")  # what uvicorn hits

        assert site_url.resolve(tmp_path) == SITE_A
        assert (tmp_path / "site_url").exists()


def test_a_site_killed_with_kill_9_leaves_no_url_that_commands_follow(tmp_path: Path) -> None:
    script = "import sys, time; from pathlib import Path; from papertide import site_url; "
    script += "site_url.publish(Path(sys.argv[1]), sys.argv[2]); print('up', flush=True); time.sleep(60)"
    with site_url.published(tmp_path, SITE_A):
        site = subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), SITE_B], stdout=subprocess.PIPE, text=True
        )
        try:
            assert site.stdout is not None
            assert site.stdout.readline() == "up\n"
            assert site_url.resolve(tmp_path) == SITE_B
        finally:
            os.kill(site.pid, signal.SIGKILL)
            site.wait()

        assert site_url.resolve(tmp_path) == SITE_A, "the dead site's line is passed over"
    assert site_url.resolve(tmp_path) == site_url.DEFAULT
    assert not (tmp_path / "site_url").exists(), "the dead site's line goes when the last site stops"


def test_the_file_shows_the_url_first_and_whose_it_is(tmp_path: Path) -> None:
    with site_url.published(tmp_path, SITE_A):
        line = (tmp_path / "site_url").read_text().splitlines()[0]

    assert line.startswith(f"{SITE_A} pid {os.getpid()} ")


@pytest.mark.parametrize("text", [f"{SITE_A}\n", f"{SITE_A}/", f"  {SITE_A}  \n"])
def test_a_file_written_by_an_older_version_still_reads(tmp_path: Path, text: str) -> None:
    (tmp_path / "site_url").write_text(text)

    assert site_url.resolve(tmp_path) == SITE_A
    with site_url.published(tmp_path, SITE_B):
        assert site_url.resolve(tmp_path) == SITE_B
    assert site_url.resolve(tmp_path) == site_url.DEFAULT, "an ownerless line does not outlive a site"


@pytest.mark.parametrize("text", ["", "not a url\n", "ftp://x.org pid 1\n", "\x00\x01", "http://x.org pid\n"])
def test_an_unusable_file_is_the_default(tmp_path: Path, text: str) -> None:
    (tmp_path / "site_url").write_text(text)

    assert site_url.resolve(tmp_path) == site_url.DEFAULT


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_no_url_for_a_port_nobody_can_reach(port: int) -> None:
    with pytest.raises(ValueError, match="1-65535"):
        site_url.for_listener("127.0.0.1", port)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000",
        "http://127.0.0.1:8000",
        "http://127.0.0.2",
        "http://127.1:8000",
        "http://0:8000",
        "http://0.0.0.0:8000",
        "http://[::1]:8000",
        "http://[::]:8000",
        "http://[::ffff:127.0.0.1]:8000",
        "http://0x7f.1",
        "http://papers.localhost",
    ],
)
def test_every_spelling_of_this_machine_is_loopback(url: str) -> None:
    assert site_url.is_loopback(url)


@pytest.mark.parametrize(
    "url", ["https://papers.example.org", "http://10.0.0.5:8000", "http://[2001:db8::1]", "http://1.2.3.4"]
)
def test_a_public_or_lan_address_is_not_loopback(url: str) -> None:
    assert not site_url.is_loopback(url)


def test_a_process_started_before_the_site_gets_the_sites_url_from_current_base_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from papertide.config import current_base_url

    for name in ("PAPERTIDE_BASE_URL", "PAPERTIDE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    scheduler_settings = Settings(data_dir=tmp_path)  # `papertide scheduler`, started first

    with site_url.published(tmp_path, SITE_A):  # then `papertide serve --port 8811`
        assert current_base_url(scheduler_settings) == SITE_A
    assert current_base_url(scheduler_settings) == site_url.DEFAULT

    explicit = Settings(data_dir=tmp_path, base_url="https://papers.example.org/")
    with site_url.published(tmp_path, SITE_A):
        assert current_base_url(explicit) == "https://papers.example.org", "an explicit URL always wins"


@pytest.mark.parametrize(
    ("url", "ascii_form"),
    [
        ("https://papiers.café.example", "https://papiers.xn--caf-dma.example"),
        ("https://papers.example.org:8443/été", "https://papers.example.org:8443/%C3%A9t%C3%A9"),
    ],
)
def test_a_base_url_beyond_ascii_is_refused_at_startup_with_its_ascii_spelling(
    monkeypatch: pytest.MonkeyPatch, url: str, ascii_form: str
) -> None:
    """Accepted, it went into List-Unsubscribe RFC 2047-encoded, and providers offered no unsubscribe."""
    monkeypatch.setenv("PAPERTIDE_BASE_URL", url)
    with pytest.raises(ValidationError) as refused:
        Settings()

    assert f"PAPERTIDE_BASE_URL={url!r} has letters beyond ASCII" in str(refused.value)
    assert f"give the same address in ASCII: {ascii_form}" in str(refused.value)
    monkeypatch.setenv("PAPERTIDE_BASE_URL", ascii_form)
    assert Settings().base_url == ascii_form


def test_the_ascii_spelling_of_an_international_host_goes_into_list_unsubscribe_as_written(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "https://papiers.xn--caf-dma.example")
    get_settings.cache_clear()
    digest_ready(["a@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        jobs.send_digests(
            digest_date=date(2026, 11, 24), mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None
        )
    get_settings.cache_clear()

    assert b"\nList-Unsubscribe: <https://papiers.xn--caf-dma.example/" in inbox.raw[0].replace(
        b"\r\n", b"\n"
    )
