"""/dev/outbox holds every confirm and unsubscribe link: only a browser on the server itself sees it."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from papertide.config import get_settings
from papertide.digests.mailer import OutboxMailer
from papertide.digests.render import MAIL_POLICY
from papertide.templating import linked
from papertide.web.app import create_app
from tests.helpers import csrf_from

LOOPBACK = ("127.0.0.1", 50000)
STRANGER = ("203.0.113.7", 50000)


@pytest.fixture
def app(database: str) -> FastAPI:
    """The embedded default's mail setup: no SMTP server, so mail goes to DATA_DIR/outbox."""
    app = create_app(encoder_provider=lambda: None)
    with TestClient(app, client=LOOPBACK) as client:
        form = client.get("/subscribe")
        client.post("/subscribe", data={"email": "owner@example.org", "csrf": csrf_from(form.text)})
    return app


def test_a_browser_on_the_server_reads_the_outbox(app: FastAPI) -> None:
    response = TestClient(app, client=LOOPBACK).get("/dev/outbox")

    assert response.status_code == 200
    assert "http://testserver/confirm/" in response.text


def test_the_outboxs_links_can_be_clicked(app: FastAPI) -> None:
    """The text part's URLs are links; the HTML part's open in a tab of their own, as the site's
    pages refuse to be shown in the frame (X-Frame-Options: DENY)."""
    response = TestClient(app, client=LOOPBACK).get("/dev/outbox")

    confirm = re.search(r'<a href="(http://testserver/confirm/[\w-]+)">\1</a>', response.text)
    assert confirm, "the confirm link in the text part is a link"
    assert "&lt;base target=&#34;_blank&#34;&gt;" in response.text, "the HTML part's links open a tab"


def test_a_url_keeps_its_own_closing_parenthesis_and_not_the_sentences() -> None:
    assert linked("(see https://en.wikipedia.org/wiki/Mercury_(planet).)") == (
        '(see <a href="https://en.wikipedia.org/wiki/Mercury_(planet)">'
        "https://en.wikipedia.org/wiki/Mercury_(planet)</a>.)"
    )
    assert linked("(https://a.example/x)") == '(<a href="https://a.example/x">https://a.example/x</a>)'


def test_text_becomes_links_only_where_it_is_an_http_url() -> None:
    shown = linked(
        'Confirm: https://papers.example.org/confirm/abc. <b>x</b> javascript:alert(1) "http://a.example/?q=1&r=2"'
    )

    assert shown == (
        'Confirm: <a href="https://papers.example.org/confirm/abc">https://papers.example.org/confirm/abc</a>.'
        " &lt;b&gt;x&lt;/b&gt; javascript:alert(1) &#34;"
        '<a href="http://a.example/?q=1&amp;r=2">http://a.example/?q=1&amp;r=2</a>&#34;'
    )


@pytest.mark.parametrize(
    ("client", "headers"),
    [
        (STRANGER, {}),  # the Docker image's default: listening on 0.0.0.0 without SMTP
        (("::ffff:203.0.113.7", 50000), {}),
        (("2001:db8::7", 50000), {}),
        (LOOPBACK, {"X-Forwarded-For": "203.0.113.7"}),  # a reverse proxy on the same machine
        (LOOPBACK, {"Forwarded": "for=203.0.113.7"}),
        (LOOPBACK, {"X-Real-IP": "203.0.113.7"}),
    ],
)
def test_anyone_else_gets_a_404_without_a_single_link(
    app: FastAPI, client: tuple[str, int], headers: dict[str, str]
) -> None:
    response = TestClient(app, client=client).get("/dev/outbox", headers=headers)

    assert response.status_code == 404
    assert "only shown to a browser on the server itself" in response.text
    assert "/confirm/" not in response.text
    assert "owner@example.org" not in response.text


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8811", "[::1]:8000", "papertide.localhost"])
def test_the_machines_own_names_read_the_outbox(app: FastAPI, host: str) -> None:
    response = TestClient(app, client=LOOPBACK).get("/dev/outbox", headers={"Host": host})

    assert response.status_code == 200
    assert "/confirm/" in response.text


@pytest.mark.parametrize("host", ["rebind.attacker.example:8000", "attacker.example", "10.0.0.5:8000"])
def test_a_page_under_another_name_pointed_at_this_machine_reads_nothing(app: FastAPI, host: str) -> None:
    """DNS rebinding: a page from attacker.example, whose name now resolves to 127.0.0.1, asks the
    outbox from the operator's own browser; the request is local, the Host is the attacker's."""
    response = TestClient(app, client=LOOPBACK).get("/dev/outbox", headers={"Host": host})

    assert response.status_code == 404
    assert "/confirm/" not in response.text
    assert "owner@example.org" not in response.text


def test_production_mail_settings_turn_the_outbox_off_even_on_the_server(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_SMTP_URL", "smtp://127.0.0.1:2525")
    get_settings.cache_clear()

    response = TestClient(app, client=LOOPBACK).get("/dev/outbox")

    assert response.status_code == 404
    assert "only kept when PAPERTIDE_SMTP_URL is unset" in response.text
    assert "/confirm/" not in response.text


def test_the_html_part_is_shown_in_a_sandboxed_frame_where_no_script_runs(app: FastAPI) -> None:
    """A hostile paper title in a digest must not run script on the site that shows the outbox."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["To"] = "owner@example.org"
    message["Subject"] = "A digest with a hostile title"
    message.set_content("the text part")
    message.add_alternative(
        '<p>"quoted" <script>alert(1)</script><img src=x onerror="alert(2)"></p>', subtype="html"
    )
    OutboxMailer(get_settings().outbox_dir).send(message)

    response = TestClient(app, client=LOOPBACK).get("/dev/outbox")

    assert response.status_code == 200
    frames = re.findall(r"<iframe[^>]*>", response.text)
    assert len(frames) == 2, "the confirmation's HTML part and this one"
    # No script, forms or same origin: only the right to open a link in a tab of its own.
    assert all('sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame for frame in frames)
    hostile = next(frame for frame in frames if "hostile" in frame)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile
    assert "&#34;quoted&#34;" in hostile, "a quote cannot close the srcdoc attribute"
    assert "<script" not in response.text
    assert "the text part" in response.text


def test_the_check_your_inbox_page_points_a_browser_on_this_machine_to_the_outbox(database: str) -> None:
    app = create_app(encoder_provider=lambda: None)
    pages = {}
    for name, client in (("here", LOOPBACK), ("elsewhere", STRANGER)):
        with TestClient(app, client=client) as browser:
            form = csrf_from(browser.get("/subscribe").text)
            pages[name] = browser.post("/subscribe", data={"email": f"{name}@example.org", "csrf": form})

    assert pages["here"].status_code == pages["elsewhere"].status_code == 200
    assert '<a href="/dev/outbox">outbox</a>' in pages["here"].text
    assert "/dev/outbox" not in pages["elsewhere"].text
