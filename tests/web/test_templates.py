"""The templates' accessibility debts: colour contrast, heading order, grouped radios, one paper row, the formula."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from papertide import db, paths, signing
from papertide.config import get_settings
from papertide.digests.mailer import list_outbox
from papertide.models import TokenPurpose
from papertide.ranking.trending import TrendParams
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers import service as subscriber_service
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.helpers import csrf_from

STYLE = paths.TEMPLATES_DIR / "partials" / "style.html"
PAGES = paths.TEMPLATES_DIR / "pages"
PAPER_ID = "2608.19880"

# (text colour, background colour, where the pages put that text on that background)
PAIRS = [
    ("fg", "bg", "body text, headings, inputs"),
    ("fg", "soft", "text in a .notice box"),
    ("muted", "bg", ".meta, .hint, nav links, ranks, placeholders"),
    ("muted", "soft", ".hint and .meta inside a .notice form"),
    ("accent", "bg", "links"),
    ("accent", "soft", "links inside a .notice box"),
    ("on-accent", "accent", "button text"),
    ("error", "bg", "error text"),
    ("error", "soft", "a .notice.error message"),
    ("fg", "mark", "a search match highlighted by <mark>"),
]
AA_TEXT = 4.5  # https://www.w3.org/TR/WCAG21/#contrast-minimum


# --- colour contrast ----------------------------------------------------------------------------


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of a #rgb or #rrggbb colour (https://www.w3.org/TR/WCAG21/#dfn-relative-luminance)."""
    hex_digits = colour.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(digit * 2 for digit in hex_digits)
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted((relative_luminance(one), relative_luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def custom_properties(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([\w-]+)\s*:\s*(#[0-9a-fA-F]{3,6})\b", block))


def schemes(css: str) -> dict[str, dict[str, str]]:
    """The custom properties of the light scheme and of the dark one (light overridden by dark)."""
    dark_match = re.search(r"@media\s*\(prefers-color-scheme:\s*dark\)\s*\{\s*:root\s*\{([^}]*)\}", css)
    assert dark_match, "the style partial has a dark scheme"
    light_match = re.search(r":root\s*\{([^}]*)\}", css[: dark_match.start()])
    assert light_match, "the style partial defines its colours on :root"
    light = custom_properties(light_match.group(1))
    return {"light": light, "dark": {**light, **custom_properties(dark_match.group(1))}}


def contrast_failures(css: str) -> list[str]:
    failures = []
    for scheme, colours in schemes(css).items():
        for fg, bg, where in PAIRS:
            ratio = contrast(colours[fg], colours[bg])
            if ratio < AA_TEXT:
                failures.append(f"{scheme}: --{fg} on --{bg} ({where}) is {ratio:.2f}:1")
    return failures


def test_the_contrast_formula_matches_known_ratios() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#fff", "#fff") == pytest.approx(1.0)


def test_every_text_colour_meets_wcag_aa_in_both_schemes() -> None:
    assert contrast_failures(STYLE.read_text()) == []


def test_the_contrast_check_catches_the_old_dark_colours() -> None:
    css = (
        STYLE.read_text()
        .replace("--on-accent:#0f1317", "--on-accent:#fff")
        .replace("--error:#ff7b72", "--error:#b00")
    )

    failures = contrast_failures(css)

    assert any("dark: --on-accent on --accent" in f for f in failures)
    assert any("dark: --error on --soft" in f for f in failures)


def test_colours_are_only_set_through_the_checked_custom_properties() -> None:
    """A literal colour in a rule would escape the contrast check above."""
    rules = re.sub(r":root\s*\{[^}]*\}", "", STYLE.read_text())

    assert re.findall(r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?)\(|:\s*(?:white|black)\b", rules) == []


# --- rendered pages -----------------------------------------------------------------------------


class Outline(HTMLParser):
    """Heading levels in document order, and the search form's fieldset contents."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: list[int] = []
        self.fieldsets: list[dict[str, list[str]]] = []
        self._in_fieldset = 0
        self._in_legend = False
        self.radios_outside: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self.levels.append(int(tag[1]))
        elif tag == "fieldset":
            self._in_fieldset += 1
            self.fieldsets.append({"legend": [], "radios": []})
        elif tag == "legend" and self._in_fieldset:
            self._in_legend = True
        elif tag == "input" and dict(attrs).get("type") == "radio":
            name = dict(attrs).get("name") or ""
            (self.fieldsets[-1]["radios"] if self._in_fieldset else self.radios_outside).append(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "fieldset":
            self._in_fieldset -= 1
        elif tag == "legend":
            self._in_legend = False

    def handle_data(self, data: str) -> None:
        if self._in_legend and data.strip():
            self.fieldsets[-1]["legend"].append(data.strip())


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


@pytest.fixture
def client(sample_database: str, real_encoder: object) -> Iterator[TestClient]:
    # No mailer passed: the default outbox (PAPERTIDE_DATA_DIR/outbox) is what /dev/outbox lists.
    app = create_app(encoder_provider=lambda: real_encoder)  # type: ignore[arg-type,return-value]
    with TestClient(app, client=("127.0.0.1", 50000)) as test_client:  # /dev/outbox: loopback only
        yield test_client


def confirm_token_from_outbox(outbox: Path) -> str:
    message = BytesParser(policy=policy.default).parsebytes(list_outbox(outbox)[0].read_bytes())
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"/confirm/([A-Za-z0-9_\-]+)", body.get_content())
    assert match
    return match.group(1)


def unsubscribe_token(email: str) -> str:
    with db.unit_of_work() as session:
        subscriber = subscriber_repository.get_by_email(session, email)
        assert subscriber is not None
        return subscriber_service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)


def every_page(client: TestClient) -> list[Any]:
    """One response for every template in templates/pages/, most with real data in them."""
    jobs.score()  # the sample is scored before it is embedded: this run also makes its topics
    topic_link = re.search(r'href="(/topics/\d+)"', client.get("/topics").text)
    assert topic_link, "the sample has topics"
    abstract = client.get(f"/api/v1/papers/{PAPER_ID}").json()["abstract"]
    responses = [
        client.get("/"),
        client.get("/", params={"period": "month"}),
        client.get("/topics"),
        client.get(topic_link.group(1)),
        client.get(f"/papers/{PAPER_ID}"),
        client.get("/papers/no-such-paper"),
        client.get("/search"),
        client.get("/search", params={"q": "EnvHarness", "mode": "keyword"}),
        client.get("/search/like"),
        client.post("/search/like", data={"text": abstract}),
        client.get("/status"),
    ]
    form = client.get("/subscribe")
    email = "reader@example.org"
    sent = client.post(
        "/subscribe", data={"email": email, "interests": "agents", "csrf": csrf_from(form.text)}
    )
    token = confirm_token_from_outbox(get_settings().outbox_dir)
    confirm = client.get(f"/confirm/{token}")
    confirmed = client.post(f"/confirm/{token}", data={"csrf": csrf_from(confirm.text)})
    manage_link = re.search(r'href="(/manage/[^"]+)"', confirmed.text)
    assert manage_link, "the confirmed page links to the manage page"
    manage = client.get(manage_link.group(1))
    vote = client.get(vote_link(email, PAPER_ID))
    leave = unsubscribe_token(email)
    responses += [form, sent, client.get("/dev/outbox"), confirm, confirmed, manage, vote]
    responses += [client.get(f"/unsubscribe/{leave}"), client.post(f"/unsubscribe/{leave}")]
    return responses


def vote_link(email: str, paper_id: str) -> str:
    """A digest's "more like this" link for a paper from the Trending section."""
    with db.unit_of_work() as session:
        subscriber = subscriber_repository.get_by_email(session, email)
        assert subscriber is not None
        payload = {"s": subscriber.id, "p": None, "paper": paper_id, "v": 1}
    return "/vote/" + signing.sign(get_settings().resolved_secret_key(), signing.LinkPurpose.VOTE, payload)


def test_every_page_has_one_h1_and_never_skips_a_heading_level(client: TestClient) -> None:
    responses = every_page(client)

    rendered = {r.template.name for r in responses}
    assert rendered == {f"pages/{p.name}" for p in PAGES.glob("*.html")}
    for response in responses:
        levels = outline(response.text).levels
        where = f"{response.request.method} {response.request.url.path}: headings {levels}"
        assert levels.count(1) == 1, where
        assert levels[0] == 1, where
        assert all(after <= before + 1 for before, after in itertools.pairwise(levels)), where


def test_search_modes_are_a_fieldset_with_a_legend(client: TestClient) -> None:
    page = outline(client.get("/search", params={"q": "EnvHarness"}).text)

    [modes] = [f for f in page.fieldsets if "mode" in f["radios"]]
    assert modes["legend"] == ["Search mode"]
    assert modes["radios"] == ["mode", "mode", "mode"]
    assert "mode" not in page.radios_outside


def test_paper_rows_come_from_the_one_partial() -> None:
    for template in PAGES.glob("*.html"):
        text = template.read_text()
        assert 'class="paper"' not in text, f"{template.name} writes a paper row by hand"
        if 'class="papers"' in text:
            assert '{% include "partials/paper_row.html" %}' in text, template.name


def test_similar_papers_show_their_similarity_in_the_shared_row(client: TestClient) -> None:
    html = client.get(f"/papers/{PAPER_ID}").text
    similar = html[html.index("<h2>Similar papers</h2>") :]

    assert re.search(r'<span class="rank" title="similarity">0\.\d\d</span>', similar)
    assert re.search(r'<h3><a href="/papers/[^"]+">', similar)


def formula(client: TestClient) -> str:
    html = client.get(f"/papers/{PAPER_ID}").text
    match = re.search(r'<p class="meta" id="formula">(.*?)</p>', html, re.DOTALL)
    assert match, "the paper page shows the trend formula"
    # The page writes the multiplication and minus signs (U+00D7, U+2212): plain * and - read better below.
    return " ".join(match.group(1).split()).replace("\u00d7", "*").replace("\u2212", "-")


def test_the_trend_formula_shows_the_weights_the_code_uses(client: TestClient) -> None:
    defaults = TrendParams()

    text = formula(client)

    assert f"<sup>-{defaults.gravity:g}</sup>" in text
    assert (
        f"engagement = {defaults.weight_upvotes:g} * upvotes + {defaults.weight_stars:g} * stars"
        f" + {defaults.weight_comments:g} * comments" in text
    )
    assert f"(1 + {defaults.weight_momentum:g} * ln(topic momentum" in text
    assert "scale = 12 h (day), 48 h (week), 168 h (month)" in text


def test_the_trend_formula_follows_the_settings(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERTIDE_TREND_WEIGHT_UPVOTES", "3.5")
    monkeypatch.setenv("PAPERTIDE_TREND_GRAVITY", "1.8")
    monkeypatch.setenv("PAPERTIDE_TREND_DECAY_SCALE_HOURS", '{"day": 6, "week": 48, "month": 168}')
    db.reset()

    text = formula(client)

    assert "engagement = 3.5 * upvotes" in text
    assert "<sup>-1.8</sup>" in text
    assert "scale = 6 h (day)" in text
