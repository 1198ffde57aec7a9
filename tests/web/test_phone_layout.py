"""Every page fits a 390 px phone: no horizontal scroll, in a real headless Chromium.

One server on one copy of the sample and one browser for the whole module; each page is a case, so
a failure names the page and the elements that stick out."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from papertide import db
from papertide.config import get_settings
from papertide.digests.mailer import OutboxMailer, list_outbox
from papertide.models import Subscriber, SubscriberStatus, TokenPurpose, Topic
from papertide.search import keyword_index
from papertide.subscribers import service as subscriber_service
from papertide.subscribers.repository import add_profile
from papertide.web.app import create_app
from tests.conftest import _sample_index, cloned_database
from tests.helpers import serving
from tests.web.test_browser import phone_page

pytestmark = pytest.mark.browser
PHONE_WIDTH = 390

# What sticks out past the right edge, for the failure message.
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 8)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.getAttribute('class') ? '.' + e.getAttribute('class') : ''}`
            + ` ${Math.round(e.getBoundingClientRect().right)}px`)"""


@dataclass
class Site:
    base: str
    links: dict[str, str] = field(default_factory=dict)  # the token pages: name -> path


def _token_links(outbox: Path, encoder: Any) -> dict[str, str]:
    """A confirmed reader's digest, sent to the outbox; the paths of the links it carries."""
    from papertide.worker import jobs

    with db.session_factory()() as session:
        reader = Subscriber(
            email="phone@example.org",
            status=SubscriberStatus.CONFIRMED,
            papers_per_digest=3,
            interest_mix=0.5,
        )
        session.add(reader)
        session.flush()
        add_profile(session, subscriber_id=reader.id, name="My interests", phrases=["speech"], categories=[])
        session.commit()
    assert jobs.send_digests(mailer=OutboxMailer(outbox), encoder=encoder).sent == 1
    message = BytesParser(policy=policy.default).parsebytes(list_outbox(outbox)[0].read_bytes())
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    mail = body.get_content()
    links = {}
    for name in ("digest", "vote", "manage", "unsubscribe"):
        match = re.search(rf"http://testserver(/{name}/[A-Za-z0-9_\-./]+)", mail)  # a vote's: /rank/more
        assert match, f"the digest links to /{name}/"
        links[name] = match.group(1)
    return links


def _sign_up_links() -> dict[str, str]:
    """Two addresses waiting for confirmation (one to look at, one to confirm), and a confirmed
    reader with interests whose unsubscribe link is pressed (the digest's own reader stays)."""
    links = {}
    with db.session_factory()() as session:
        for name in ("confirm", "confirmed"):
            outcome = subscriber_service.subscribe(
                session, email=f"{name}@example.org", interests="speech synthesis", frequency="daily"
            )
            links[name] = f"/confirm/{outcome.confirm_token}"
        leaving = Subscriber(
            email="leaving@example.org",
            status=SubscriberStatus.CONFIRMED,
            papers_per_digest=3,
            interest_mix=0.5,
        )
        session.add(leaving)
        session.flush()
        add_profile(session, subscriber_id=leaving.id, name="My interests", phrases=["speech"], categories=[])
        token = subscriber_service.new_token(session, leaving, TokenPurpose.UNSUBSCRIBE)
        links["unsubscribed"] = f"/unsubscribe/{token}"
        topic = session.query(Topic).order_by(Topic.id).first()
        assert topic is not None, "the sample has topics once scored"
        links["topic"] = f"/topics/{topic.id}"
        session.commit()
    return links


@pytest.fixture(scope="module")
def site(
    pg_admin_uri: str, sample_template: str, real_encoder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    from papertide.worker import jobs

    data = tmp_path_factory.mktemp("phone") / "data"
    shutil.copytree(_sample_index(tmp_path_factory), data / keyword_index.DIRECTORY)
    with cloned_database(pg_admin_uri, sample_template, data):
        jobs.score()  # topics: the sample's papers were embedded after its first score
        outbox = get_settings().outbox_dir
        app = create_app(encoder_provider=lambda: real_encoder, mailer=OutboxMailer(outbox))  # type: ignore[arg-type,return-value]
        with serving(app) as url:
            yield Site(url, links={**_token_links(outbox, real_encoder), **_sign_up_links()})


@pytest.fixture(scope="module")
def phone(site: Site) -> Iterator[Any]:
    yield from phone_page()


def _visit(path: str) -> Callable[[Any, Site], None]:
    return lambda page, site: page.goto(site.base + path)


def _token_page(name: str, button: str | None = None) -> Callable[[Any, Site], None]:
    """A page behind a link from a mail; with `button`, the page that pressing it leads to."""

    def visit(page: Any, site: Site) -> None:
        page.goto(site.base + site.links[name])
        if button:
            page.click(f"button:has-text('{button}')")
            page.wait_for_load_state()

    return visit


def _subscribe_sent(page: Any, site: Site) -> None:
    page.goto(site.base + "/subscribe")
    page.fill("input[name=email]", "sent@example.org")
    page.click("button:has-text('Subscribe')")
    page.wait_for_selector("text=Check your inbox")


def _outbox_opened(page: Any, site: Site) -> None:
    page.goto(site.base + "/dev/outbox")
    for summary in page.locator("details summary").all()[:3]:
        summary.click()


def _more_like_this_results(page: Any, site: Site) -> None:
    page.goto(site.base + "/search/like")
    page.fill("textarea[name=text]", "Speeding up the prefill stage of long-context LLM serving.")
    page.click("button:has-text('Find similar papers')")
    page.wait_for_selector("ol.papers")


def _search_filters_open(page: Any, site: Site) -> None:
    page.goto(site.base + "/search?q=speech")
    page.click("summary:has-text('Filters and sort')")


PAGES: dict[str, Callable[[Any, Site], None]] = {
    "trending-day": _visit("/"),
    "trending-week": _visit("/?period=week"),
    "trending-month": _visit("/?period=month&page=2"),
    "paper": _visit("/papers/2608.19880"),
    "topics": _visit("/topics"),
    "topic": _token_page("topic"),
    "search-empty": _visit("/search"),
    "search-hybrid": _visit("/search?q=speech+synthesis"),
    "search-keyword": _visit("/search?q=speech+synthesis&mode=keyword"),
    "search-semantic": _visit("/search?q=speech+synthesis&mode=semantic"),
    "search-filters-open": _search_filters_open,
    "search-no-results": _visit("/search?q=zzzqqqxxyy&mode=keyword"),
    "search-invalid": _visit("/search?q=speech&from=not-a-date"),
    "more-like-this": _visit("/search/like"),
    "more-like-this-results": _more_like_this_results,
    "subscribe": _visit("/subscribe"),
    "subscribe-sent": _subscribe_sent,
    "confirm": _token_page("confirm"),
    "confirmed": _token_page("confirmed", button="Confirm"),
    "manage": _token_page("manage"),
    "vote": _token_page("vote"),
    "vote-recorded": _token_page("vote", button="like this"),
    "digest-view": _token_page("digest"),
    "unsubscribe": _token_page("unsubscribe"),
    "unsubscribed": _token_page("unsubscribed", button="Unsubscribe"),
    "status": _visit("/status"),
    "dev-outbox": _outbox_opened,
    "not-found": _visit("/no/such/page"),
    "paper-not-found": _visit("/papers/0000.00000"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_fits_a_phone_without_sideways_scrolling(phone: Any, site: Site, name: str) -> None:
    PAGES[name](phone, site)
    assert phone.evaluate("window.innerWidth") == PHONE_WIDTH
    width = phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{name} is {width}px wide: {phone.evaluate(OVERFLOWING)}"


def test_the_phone_sees_each_trending_paper_with_its_reason_and_one_line_of_abstract(
    phone: Any, site: Site
) -> None:
    phone.goto(site.base + "/")
    first = phone.locator("ol.papers li").first
    assert re.fullmatch(r"\+[\d,]+ upvotes? today( · .+)?", first.locator(".reason").inner_text())
    snippet = first.locator(".snippet")
    box = snippet.bounding_box()
    line = phone.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)", snippet.element_handle())
    assert box["height"] <= line + 1, "the abstract's snippet is one line"
    assert phone.evaluate("e => e.scrollWidth > e.clientWidth", snippet.element_handle()), (
        "cut with an ellipsis"
    )
    assert "score" not in first.inner_text()


def test_the_subscribe_forms_radios_sit_left_of_their_words_on_the_same_line(phone: Any, site: Site) -> None:
    phone.goto(site.base + "/subscribe")
    for value, words in (("daily", "Daily"), ("weekly", "Weekly (Mondays)")):
        radio = phone.locator(f"input[name=frequency][value={value}]").bounding_box()
        label = phone.locator(f"label:has(input[value={value}])")
        text = phone.evaluate(
            """label => { const range = document.createRange();
                 range.selectNodeContents(label.lastChild); const r = range.getBoundingClientRect();
                 return {x: r.x, y: r.y, height: r.height, text: label.lastChild.textContent.trim()}; }""",
            label.element_handle(),
        )
        assert text["text"] == words
        assert radio["x"] + radio["width"] <= text["x"], f"the {value} radio is left of its words"
        middle = radio["y"] + radio["height"] / 2
        assert text["y"] <= middle <= text["y"] + text["height"], f"the {value} radio is on its words' line"
