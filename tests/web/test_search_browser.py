"""Searching with filters, a sort and the page links, in a real headless Chromium (as test_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from papertide.digests.mailer import OutboxMailer
from papertide.web.app import create_app
from tests.helpers import serving
from tests.web.test_browser import phone_page

pytestmark = pytest.mark.browser


@pytest.fixture
def base_url(sample_database: str, real_encoder: object, tmp_path: Path) -> Iterator[str]:
    app = create_app(encoder_provider=lambda: real_encoder, mailer=OutboxMailer(tmp_path / "outbox"))  # type: ignore[arg-type,return-value]
    with serving(app) as url:
        yield url


@pytest.fixture
def page(base_url: str) -> Iterator[object]:
    yield from phone_page()


def test_filter_sort_and_turn_the_page(page, base_url) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/search?q=language+models")
    assert not page.locator("#categories").is_visible(), "the filters start folded away"
    page.click("summary:has-text('Filters and sort')")
    page.check("#has_code")
    page.fill("#from", "2026-07-01")  # the sample's papers carry no arXiv categories: a date range
    page.select_option("#sort", "newest")
    page.click("button:has-text('Search')")
    page.wait_for_url("**has_code=1**")

    assert page.locator("#count").inner_text().startswith("About ")
    rows = page.locator("ol.papers li").count()
    assert rows == 20
    assert page.locator("ol.papers .badge").count() == rows, "each paper says how it matched"
    assert page.locator("ol.papers .badge").first.get_attribute("title").startswith("Found ")
    first_page = page.locator("ol.papers h3 a").all_inner_texts()

    page.click("nav.pages a:has-text('Next')")
    page.wait_for_url("**page=2**")
    asked = parse_qs(urlsplit(page.url).query)
    assert asked["q"] == ["language models"]
    assert asked["has_code"] == ["1"]
    assert asked["from"] == ["2026-07-01"]
    assert asked["sort"] == ["newest"]
    assert page.locator("nav.pages a[aria-current=page]").inner_text() == "2"
    assert page.locator("#has_code").is_visible(), "with a filter set, the filters stay open"
    assert page.locator("#has_code").is_checked()
    assert page.locator("#from").input_value() == "2026-07-01"
    assert not set(page.locator("ol.papers h3 a").all_inner_texts()) & set(first_page)
