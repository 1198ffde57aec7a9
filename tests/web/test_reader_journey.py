"""A reader's whole journey in a real headless Chromium: subscribe, confirm, manage (a second
profile, the send hour and zone, pause and resume), a digest with a section per profile, a vote
from it, the digest in the browser, and the one-click unsubscribe."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.digests.mailer import OutboxMailer, list_outbox
from papertide.embeddings.encoder import Encoder
from papertide.models import DigestItem, PaperVote, SubscriberStatus
from papertide.signing import LinkPurpose, LinkState, verify
from papertide.subscribers import repository
from tests.helpers import subscriber_by_email
from tests.web import test_browser

# The browser tests' fixtures: the sample site served by uvicorn, and a Chromium page.
live_server = test_browser.live_server
page = test_browser.page

pytestmark = pytest.mark.browser
EMAIL = "journey@example.org"


def newest_mail(outbox: Path) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(list_outbox(outbox)[0].read_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the message has an HTML part"
    return str(part.get_content())


def local(url: str, base: str) -> str:
    """An email's link (made for http://testserver, the tests' BASE_URL) on the live test server."""
    return url.replace("http://testserver", base)


def links(html: str, path: str) -> list[str]:
    return re.findall(rf'href="(http://testserver/{path}/[^"]+)"', html)


def test_a_reader_subscribes_manages_votes_views_and_leaves(
    page: Page, live_server: tuple[str, Path], session: Session, real_encoder: Encoder
) -> None:
    from papertide.worker import jobs

    base, outbox = live_server
    blocked: list[str] = []  # our pages, the outbox's frame and the digest view all keep to their policy
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

    # Subscribe, and confirm from the mail in the outbox.
    page.goto(base + "/subscribe")
    page.fill("input[name=email]", EMAIL)
    page.fill("textarea[name=interests]", "block-sparse prefill attention for long-context LLM serving")
    page.click("button:has-text('Subscribe')")
    [confirm] = re.findall(r"http://testserver/confirm/[A-Za-z0-9_\-]+", html_of(newest_mail(outbox)))
    page.goto(base + "/dev/outbox")  # the HTML part too, as a mail client shows it, in a sandbox
    page.click(f"summary:has-text('{EMAIL}')")
    mail = page.frame_locator("iframe.mail-html").first
    assert mail.locator("a").first.inner_text() == "Confirm my digest"
    assert mail.get_by_role("link", name="Manage your digest").count() == 1
    # The text part's link is a link (the mail's base URL is the test client's, so it is not followed).
    assert page.locator(f"details pre a[href='{confirm}']").count() == 1
    page.goto(local(confirm, base))
    page.click("button:has-text('Confirm')")
    assert "You're subscribed" in page.locator("h1").inner_text()
    assert page.locator("#next-digest").inner_text(), "when the first digest is due"

    # Manage: a second profile, the send hour and zone, pause and resume.
    page.click("#manage")
    assert page.locator("h1").inner_text() == "Manage your digest"
    page.fill("#new-profile + form input[name=name]", "world models")
    page.fill("#new-profile + form textarea[name=phrases]", "action-conditioned video world models")
    page.click("button:has-text('Add profile')")
    assert "Saved: the new profile" in page.locator("#saved").inner_text()
    assert page.locator("section h3").all_inner_texts() == ["My interests", "world models"]

    page.select_option("select[name=send_hour]", "18")
    page.fill("input[name=time_zone]", "Asia/Kolkata")
    page.click("button:has-text('Save schedule')")
    assert "Saved: the digest arrives on the new schedule." in page.locator("#saved").inner_text()
    assert page.locator("select[name=send_hour]").input_value() == "18"
    stored = subscriber_by_email(session, EMAIL)
    assert (stored.send_hour, stored.time_zone) == (18, "Asia/Kolkata")
    assert "UTC+05:30" in page.locator("#zone-clock").inner_text()
    assert page.locator("#next-digest").inner_text().endswith(("18:00", "within minutes"))

    page.fill("input[name=time_zone]", "Mars/Olympus_Mons")
    page.click("button:has-text('Save schedule')")
    assert "is not a time zone name we know" in page.locator("#error-schedule-time_zone").inner_text()
    assert subscriber_by_email(session, EMAIL).time_zone == "Asia/Kolkata"

    page.click("button:has-text('Pause the digest')")
    assert page.locator("#paused").is_visible()
    assert subscriber_by_email(session, EMAIL).paused_at is not None
    page.click("button:has-text('Resume the digest')")
    assert "Resumed" in page.locator("#saved").inner_text()
    assert subscriber_by_email(session, EMAIL).paused_at is None

    # The digest: a section per profile, each paper with its vote links.
    assert jobs.send_digests(mailer=OutboxMailer(outbox), encoder=real_encoder).sent == 1
    digest = newest_mail(outbox)
    html = html_of(digest)
    sections = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert {"My interests", "world models"} <= set(sections), sections
    profiles = {p.name: p.id for p in repository.profiles(session, stored.id)}

    # Vote from the "world models" section: the page's button records it in that profile.
    in_section = html[html.index(">world models</h2>") :]
    [more, *_] = links(in_section, "vote")
    signed, rank, direction = more.split("/vote/", 1)[1].split("/")
    delivery = verify(get_settings().resolved_secret_key(), LinkPurpose.DIGEST_VOTE, signed)
    assert delivery.state == LinkState.VALID
    item = session.scalars(
        select(DigestItem).where(
            DigestItem.delivery_id == delivery.payload["d"], DigestItem.rank == int(rank)
        )
    ).one()
    assert (item.section, item.profile_id, direction) == ("world models", profiles["world models"], "more")
    page.goto(local(more, base))
    assert session.scalars(select(PaperVote)).all() == [], "opening the link records nothing"
    page.click("button:has-text('like this, for')")
    assert page.locator("#recorded").is_visible()
    session.expire_all()
    votes = session.scalars(select(PaperVote)).all()
    assert [(v.profile_id, v.paper_id, v.vote) for v in votes] == [
        (profiles["world models"], item.paper_id, 1)
    ]

    # View in browser: the digest as sent, styled.
    [view] = links(html, "digest")
    page.goto(local(view, base))
    assert "world models" in page.content()
    assert page.locator("h2").all_inner_texts()[: len(sections)] == sections

    # The manage link in the digest works too, and the paper page now offers this reader votes.
    [manage, *_] = links(html, "manage")
    page.goto(local(manage, base))
    assert page.locator("h1").inner_text() == "Manage your digest"
    page.goto(f"{base}/papers/{item.paper_id}")
    assert page.locator("#vote select[name=profile] option").all_inner_texts() == [
        "My interests",
        "world models",
    ]

    # One click: what a mail client does with List-Unsubscribe and List-Unsubscribe-Post.
    header = str(digest["List-Unsubscribe"])
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = page.request.post(local(header.strip("<>"), base), form={"List-Unsubscribe": "One-Click"})
    assert one_click.status == 200
    assert subscriber_by_email(session, EMAIL).status == SubscriberStatus.UNSUBSCRIBED
    page.goto(local(manage, base))
    assert "This address has unsubscribed" in page.content()
    assert blocked == []
