"""The main page flows in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from papertide.config import get_settings
from papertide.digests.mailer import OutboxMailer, list_outbox
from papertide.web.app import create_app
from tests.helpers import serving

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("PAPERTIDE_CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network: no background calls to Google's services at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_server(sample_database: str, real_encoder: object, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    outbox = get_settings().outbox_dir  # where /dev/outbox reads, as in the local default
    app = create_app(encoder_provider=lambda: real_encoder, mailer=OutboxMailer(outbox))  # type: ignore[arg-type,return-value]
    with serving(app) as url:
        yield url, outbox


def phone_page() -> Iterator[object]:
    """A Chromium page the size of a phone; without Chromium the test fails on CI, skips elsewhere."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing at {CHROMIUM}: .ci/run installs Debian's chromium package")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        yield context.new_page()
        browser.close()


@pytest.fixture
def page(live_server: tuple[str, Path]) -> Iterator[object]:
    yield from phone_page()


def test_trending_to_paper_to_similar(page, live_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = live_server
    page.goto(base + "/")
    assert page.locator("h1").inner_text() == "Trending papers"
    assert "newest data is from" in page.locator("#as-of").inner_text()
    first = page.locator("ol.papers h3 a").first
    assert first.inner_text() == "EnvHarness: Awakening Static Worlds for Agent Learning"

    first.click()
    page.wait_for_url("**/papers/2608.19880")
    assert "LLM agents learn by interacting" in page.content()
    assert page.locator("text=Why it is trending").is_visible()

    page.goto(base + "/")
    page.click("text=This week")
    page.wait_for_url("**period=week")
    assert page.locator("ol.papers li").count() == 30


def test_search_from_the_header_box(page, live_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = live_server
    page.goto(base + "/")
    page.fill("#quick-q", "block-sparse prefill attention")
    page.press("#quick-q", "Enter")
    page.wait_for_url("**/search?q=*")
    assert "FlashPrefill V2" in page.locator("ol.papers h3 a").first.inner_text()
    assert page.locator("mark").count() > 0

    page.check("input[value=keyword]")
    page.click("button:has-text('Search')")
    page.wait_for_url("**mode=keyword**")
    assert "FlashPrefill V2" in page.locator("ol.papers h3 a").first.inner_text()


def test_subscribe_form_sends_only_a_confirmation(page, live_server) -> None:  # type: ignore[no-untyped-def]
    base, outbox = live_server
    page.goto(base + "/subscribe")
    page.fill("input[name=email]", "browser@example.org")
    page.fill("textarea[name=interests]", "speech synthesis")
    page.click("button:has-text('Subscribe')")
    assert "Check your inbox" in page.locator("h1").inner_text()

    files = list_outbox(outbox)
    assert len(files) == 1
    assert b"Subject: Confirm your papertide digest" in files[0].read_bytes()

    page.goto(base + "/subscribe")
    page.fill("input[name=email]", "not-an-email@")
    page.evaluate("document.querySelector('input[name=email]').type = 'text'")  # skip the browser's own check
    page.click("button:has-text('Subscribe')")
    assert "That email address is not valid" in page.locator("[role=alert]").inner_text()


def _link(outbox: Path, path: str) -> str:
    """The newest outbox message's link to /{path}/..., made relative to the test server."""
    import re

    newest = list_outbox(outbox)[0].read_text()
    match = re.search(rf"http://testserver(/{path}/[A-Za-z0-9_\-]+)", newest)
    assert match, f"the email links to /{path}/"
    return match.group(1)


def test_confirm_and_unsubscribe_by_their_buttons(page, live_server) -> None:  # type: ignore[no-untyped-def]
    from papertide.digests.mailer import OutboxMailer
    from papertide.worker import jobs

    base, outbox = live_server
    page.goto(base + "/subscribe")
    page.fill("input[name=email]", "buttons@example.org")
    page.click("button:has-text('Subscribe')")

    page.goto(base + "/dev/outbox")  # the local default's mailbox, read in the browser on this machine
    page.click("summary:has-text('buttons@example.org')")
    assert "/confirm/" in page.locator("details pre").first.inner_text()

    page.goto(base + _link(outbox, "confirm"))
    assert "Start sending the papertide digest to" in page.content()
    page.click("button:has-text('Confirm')")
    assert "You're subscribed" in page.locator("h1").inner_text()

    assert jobs.send_digests(mailer=OutboxMailer(outbox), encoder=None).sent == 1
    page.goto(base + _link(outbox, "unsubscribe"))
    page.click("button:has-text('Unsubscribe')")
    assert page.locator("#unsubscribed").is_visible()
    assert jobs.send_digests(mailer=OutboxMailer(outbox), encoder=None).sent == 0

    page.goto(base + "/status")  # what the operator sees of those two runs
    assert page.locator("h1").inner_text() == "Status"
    assert page.locator("h2:has-text('digest')").count() >= 1


def test_topics_lead_to_their_papers_and_back(page, live_server) -> None:  # type: ignore[no-untyped-def]
    from papertide.worker import jobs

    base, _ = live_server
    jobs.score()  # cluster the sample's embedded papers
    page.goto(base + "/topics")
    first_topic = page.locator("table a").first
    label = first_topic.inner_text()
    assert page.locator("table svg rect").count() > 0, "each topic has its papers-per-week chart"
    first_topic.click()
    assert page.locator("h1").inner_text() == label

    page.locator("ol.papers h3 a").first.click()
    assert page.locator(f"a:has-text('{label}')").count() == 1, "the paper page names its topic"


def test_more_like_this_from_a_pasted_abstract(page, live_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = live_server
    page.goto(base + "/search")
    page.click("a:has-text('more like this')")
    page.fill(
        "textarea[name=text]",
        "Speeding up the prefill stage of long-context LLM serving with block-sparse attention.",
    )
    page.click("button:has-text('Find similar papers')")
    assert "FlashPrefill V2" in page.locator("ol.papers h3 a").first.inner_text()


def test_the_content_security_policy_keeps_the_look_and_stops_injected_script(page, live_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = live_server
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None,
    )
    for path in ("/", "/papers/2608.19880", "/search?q=speech", "/subscribe"):
        page.goto(base + path)
        accent = page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
        )
        assert accent in ("#0b63ce", "#6aa9ff"), f"{path}: the page's <style> was not applied"
    page.goto(base + "/search?q=speech")
    widths = page.evaluate(
        "[document.querySelector('#q').offsetWidth, document.querySelector('#q').form.offsetWidth]"
    )
    assert widths[0] > 0.8 * widths[1], "style attributes still apply: the box fills its form (width:100%)"
    assert blocked == [], "our own pages trip the policy"

    # Markup that slipped past escaping could not run script: an inline handler is refused.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=\"window.ran = 1\">')")
    page.wait_for_timeout(200)
    assert page.evaluate("window.ran") is None
    assert any("script" in text for text in blocked)
