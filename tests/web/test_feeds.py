"""Atom feeds (issue 11): trending, search, topic and a profile's private feed, each read by a real
feed parser (feedparser) and by a strict XML parser, as a feed reader would; discovery links on
the pages that have a feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from itsdangerous import URLSafeSerializer
from sqlalchemy import update
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.digests.build import build_digest
from papertide.digests.candidates import DigestRun
from papertide.digests.mailer import SmtpMailer
from papertide.models import InterestProfile, Paper, Subscriber, SubscriberStatus, Topic
from papertide.ranking import repository as ranking_repository
from papertide.subscribers import preferences
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers import service as subscriber_service
from papertide.web import feeds
from papertide.web.app import create_app
from papertide.worker import ingest as ingest_jobs
from papertide.worker import jobs
from tests.factories import make_paper
from tests.helpers import FIXTURES, Inbox, csrf_from, link_token, subscriber_by_email

DAY = FIXTURES / "hf_daily_papers" / "2026-08-21.json"
HOSTILE_ID = "2608.19880"  # the day's top paper, its title and abstract replaced below
HOSTILE_TITLE = '<script>alert(1)</script> & "x"'
HOSTILE_ABSTRACT = "Worlds where a < b && c > d,\x0b then </summary> ends nothing."
SHOWN_ABSTRACT = "Worlds where a < b && c > d, then </summary> ends nothing."  # XML cannot carry \x0b
CODED_ID = "2608.18580"  # the second paper: it keeps its recorded (http) code link
OTHER_ID = "openreview:Xy12"  # not from arXiv
TOPIC = 7
TOPIC_LABEL = "agents & <environments>"
ATOM = "application/atom+xml; charset=utf-8"


@pytest.fixture
def client(database: str, session: Session, smtp: tuple[Inbox, SmtpMailer]) -> Iterator[TestClient]:
    """The recorded Hugging Face day, scored and keyword-indexed, with one hostile paper, a code link
    set by an attacker, a paper not from arXiv and a topic; no embedding model (feeds need none)."""
    ingest_jobs.ingest_hf_files([DAY])
    hostile = {"title": HOSTILE_TITLE, "abstract": HOSTILE_ABSTRACT, "code_url": "javascript:alert(2)"}
    session.execute(update(Paper).where(Paper.id == HOSTILE_ID).values(**hostile))
    make_paper(
        session,
        id=OTHER_ID,
        title="A paper from OpenReview",
        source="jsonl",
        abs_url="https://openreview.net/forum?id=Xy12",
        pdf_url="https://openreview.net/pdf?id=Xy12",
    )
    session.commit()
    jobs.score()
    jobs.index_keywords()
    # After the score run, which would recluster (and renumber) topics.
    session.add(Topic(id=TOPIC, label=TOPIC_LABEL, size=2, momentum=1.0, weekly=[], terms=[]))
    session.flush()
    session.execute(update(Paper).where(Paper.id.in_([HOSTILE_ID, OTHER_ID])).values(topic_id=TOPIC))
    session.commit()
    app = create_app(encoder_provider=lambda: None, mailer=smtp[1])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def fetch(client: TestClient, url: str) -> Any:
    """The feed at `url`, parsed by feedparser after a strict XML parser has accepted it."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ATOM
    ET.fromstring(response.content)  # well-formed XML 1.0, or this raises
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def entry_of(parsed: Any, paper_id: str) -> Any:
    found = [e for e in parsed.entries if e.id == f"http://testserver/papers/{paper_id}"]
    assert found, f"the feed lists {paper_id}"
    return found[0]


def hrefs(entry: Any) -> dict[str, tuple[str, str | None]]:
    """An entry's links by title (the alternate one as "page"): (href, type)."""
    return {link.get("title", "page"): (link.href, link.get("type")) for link in entry.links}


def test_the_trending_feed_lists_the_trending_page_with_every_field(
    client: TestClient, session: Session
) -> None:
    parsed = fetch(client, "/feeds/trending.atom?period=week")

    ranked = [paper.id for paper, _ in ranking_repository.trending(session, period="week", limit=30)]
    assert [e.id for e in parsed.entries] == [f"http://testserver/papers/{pid}" for pid in ranked]
    assert parsed.feed.title == "Trending papers this week · papertide"
    assert parsed.feed.id == "http://testserver/feeds/trending.atom?period=week"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links == {
        "self": "http://testserver/feeds/trending.atom?period=week",
        "alternate": "http://testserver/?period=week",
    }
    assert parsed.feed.updated_parsed is not None
    coded = session.get(Paper, CODED_ID)
    assert coded is not None
    assert coded.published_at is not None
    entry = entry_of(parsed, CODED_ID)
    assert entry.title == coded.title
    assert [a.name for a in entry.authors] == coded.authors
    assert entry.summary == coded.abstract
    assert entry.updated == feeds.rfc3339(coded.published_at)
    assert entry.link == f"http://testserver/papers/{CODED_ID}", "the alternate link is the paper page"
    assert hrefs(entry) == {
        "page": (f"http://testserver/papers/{CODED_ID}", "text/html"),
        "arXiv": (f"https://arxiv.org/abs/{CODED_ID}", "text/html"),
        "PDF": (f"https://arxiv.org/pdf/{CODED_ID}", "application/pdf"),
        "Code": (coded.code_url, "text/html"),
        "Project page": (coded.project_url, "text/html"),
    }


def test_public_feeds_are_cacheable_and_revalidate_to_a_304(client: TestClient) -> None:
    for url in ("/feeds/trending.atom?period=week", f"/feeds/topics/{TOPIC}.atom"):
        first = client.get(url)
        assert first.headers["cache-control"].startswith("public, max-age="), url
        assert first.headers["last-modified"], url

        again = client.get(url, headers={"If-None-Match": first.headers["etag"]})

        assert again.status_code == 304, url
        assert again.content == b""
    assert client.get("/feeds/search.atom?q=worlds").headers["cache-control"].startswith("public, max-age=")


def test_ids_are_stable_from_one_fetch_to_the_next(client: TestClient) -> None:
    first, second = (fetch(client, "/feeds/trending.atom") for _ in range(2))

    assert first.feed.id == second.feed.id == "http://testserver/feeds/trending.atom?period=day"
    assert [e.id for e in first.entries] == [e.id for e in second.entries]
    assert first.entries, "the day has trending papers"
    assert [e.updated for e in first.entries] == [e.updated for e in second.entries]


def test_a_hostile_title_and_abstract_are_text_and_a_javascript_link_is_dropped(client: TestClient) -> None:
    for url in (
        "/feeds/trending.atom",
        f"/feeds/topics/{TOPIC}.atom",
        "/feeds/search.atom?q=worlds&mode=keyword",
    ):
        response = client.get(url)
        assert "<script>" not in response.text, url
        assert not re.search("javascript:", response.text, re.IGNORECASE), url
        entry = entry_of(fetch(client, url), HOSTILE_ID)
        assert entry.title == HOSTILE_TITLE, url
        assert entry.summary == SHOWN_ABSTRACT, url
        assert "Code" not in hrefs(entry), url


def test_a_topic_feed_lists_its_papers_and_a_paper_not_from_arxiv_has_no_arxiv_links(
    client: TestClient,
) -> None:
    parsed = fetch(client, f"/feeds/topics/{TOPIC}.atom")

    assert {e.id for e in parsed.entries} == {
        f"http://testserver/papers/{HOSTILE_ID}",
        "http://testserver/papers/openreview%3AXy12",
    }
    assert parsed.feed.title == f"{TOPIC_LABEL} · papertide topic"
    other = entry_of(parsed, "openreview%3AXy12")
    assert hrefs(other) == {
        "page": ("http://testserver/papers/openreview%3AXy12", "text/html"),
        "Source": ("https://openreview.net/forum?id=Xy12", "text/html"),
    }
    assert client.get(urlsplit(other.link).path).status_code == 200, "the entry links to its page"
    assert client.get("/feeds/topics/999.atom").status_code == 404
    assert client.get("/feeds/topics/nope.atom").status_code == 422


def test_the_search_feed_takes_the_search_pages_fields(client: TestClient) -> None:
    params = {"q": "worlds", "mode": "keyword", "sort": "newest"}
    page = client.get("/search", params=params)
    parsed = fetch(client, "/feeds/search.atom?q=worlds&mode=keyword&sort=newest")

    on_page = re.findall(r'<h3><a href="/papers/([^"]+)">', page.text)
    assert [e.id for e in parsed.entries] == [f"http://testserver/papers/{pid}" for pid in on_page]
    assert parsed.feed.id == "http://testserver/feeds/search.atom?q=worlds&mode=keyword&sort=newest"
    assert {link.rel: link.href for link in parsed.feed.links}["alternate"] == (
        "http://testserver/search?q=worlds&mode=keyword&sort=newest"
    )
    assert parsed.feed.title == "“worlds” · papertide search"


def test_a_polling_reader_of_a_search_feed_gets_a_304_while_the_results_stay_the_same(
    client: TestClient,
) -> None:
    path = "/feeds/search.atom?q=worlds&mode=keyword&sort=newest"
    first = client.get(path)
    assert "last-modified" in first.headers

    again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    other = client.get(
        "/feeds/search.atom?q=agents&mode=keyword", headers={"If-None-Match": first.headers["etag"]}
    )

    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == first.headers["etag"]
    assert other.status_code == 200, "other results are another answer"


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("q=worlds&mode=telepathy", "Unknown search mode: choose hybrid, keyword or semantic."),
        ("q=worlds&from=yesterday", "The “from” date is not a date: use the form YYYY-MM-DD."),
        ("q=worlds&page=0", "The page must be a number from 1 to"),
        ("q=worlds&sort=random", "Unknown sort: choose relevance, newest or trending."),
    ],
)
def test_the_search_feed_refuses_what_the_search_page_refuses(
    client: TestClient, query: str, sentence: str
) -> None:
    feed = client.get(f"/feeds/search.atom?{query}")
    page = client.get(f"/search?{query}")

    assert feed.status_code == 422
    assert sentence in feed.text
    assert sentence in page.text, "the search page says the same"


def test_the_search_feed_needs_something_to_search_for(client: TestClient) -> None:
    response = client.get("/feeds/search.atom?mode=keyword")

    assert response.status_code == 422
    assert "Type some words to search for, or an author." in response.text


class Heads(HTMLParser):
    """The <link> elements of a page's <head>, and its visible feed link."""

    def __init__(self) -> None:
        super().__init__()
        self.in_head = False
        self.links: list[dict[str, str | None]] = []
        self.feed_link: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self.in_head = True
        elif tag == "link" and self.in_head:
            self.links.append(dict(attrs))
        elif tag == "a" and dict(attrs).get("id") == "feed":
            self.feed_link = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False


def discovered(response: Response) -> tuple[list[str], str | None]:
    """The Atom feeds a page announces in its head, and where its visible "Atom feed" link goes."""
    assert response.status_code == 200
    heads = Heads()
    heads.feed(response.text)
    atom = [
        str(link["href"])
        for link in heads.links
        if link.get("rel") == "alternate" and link.get("type") == "application/atom+xml" and link.get("title")
    ]
    return atom, heads.feed_link["href"] if heads.feed_link else None


def test_pages_with_a_feed_announce_it_and_link_to_it(client: TestClient) -> None:
    pages = {
        "/": "/feeds/trending.atom?period=day",
        "/?period=month": "/feeds/trending.atom?period=month",
        f"/topics/{TOPIC}": f"/feeds/topics/{TOPIC}.atom",
        "/search?q=worlds&mode=keyword&author=&page=1": "/feeds/search.atom?q=worlds&mode=keyword",
    }
    for page, feed in pages.items():
        response = client.get(page)
        assert discovered(response) == ([feed], feed), page
        assert ">Atom feed<" in response.text, page
        fetch(client, feed)
    assert discovered(client.get("/search")) == ([], None), "the empty search form has no feed"
    assert discovered(client.get("/topics")) == ([], None)


def reader_with_profile(session: Session, *, categories: list[str]) -> tuple[str, int]:
    """A confirmed reader with one profile; the path of their manage page and the profile's id."""
    subscriber = Subscriber(
        email="reader@example.org", status=SubscriberStatus.CONFIRMED, papers_per_digest=8, interest_mix=0.5
    )
    session.add(subscriber)
    session.flush()
    profile = subscriber_repository.add_profile(
        session, subscriber_id=subscriber.id, name="Agents", phrases=[], categories=categories
    )
    token = subscriber_service.new_manage_token(session, subscriber)
    session.commit()
    return f"/manage/{token}", profile.id


def profile_feed_path(manage_page: Response) -> str:
    match = re.search(r'href="http://testserver(/feeds/profiles/[A-Za-z0-9_.\-]+\.atom)"', manage_page.text)
    assert match, "the manage page shows the profile's feed"
    return match.group(1)


def test_the_profile_feed_lists_what_its_digest_section_would(client: TestClient, session: Session) -> None:
    chosen = ["2608.20335", "2608.19758", "2608.13210"]
    session.execute(update(Paper).where(Paper.id.in_(chosen)).values(categories=["cs.CV"]))
    session.commit()
    page, profile = reader_with_profile(session, categories=["cs.CV"])

    path = profile_feed_path(client.get(page))
    response = client.get(path)
    parsed = fetch(client, path)

    # The reader's digest, composed as a digest run composes it: the profile's section is the feed.
    reader = subscriber_by_email(session, "reader@example.org")
    digest = build_digest(
        session,
        subscriber=reader,
        digest_date=date(2026, 8, 22),
        settings=get_settings(),
        run=DigestRun(encoder=lambda: None),
    )
    assert digest is not None
    section = [paper_id for paper_id, _, _, profile_id in digest.items if profile_id == profile]
    assert sorted(section) == sorted(chosen)
    assert [e.id for e in parsed.entries] == [f"http://testserver/papers/{pid}" for pid in section]
    assert parsed.feed.title == "Agents · your papertide profile"
    assert response.headers["cache-control"] == "private, no-cache", "never in a shared cache"
    assert fetch(client, path).entries[0].id == parsed.entries[0].id


def test_a_polling_feed_reader_gets_a_304_until_the_profile_changes(
    client: TestClient, session: Session
) -> None:
    page, profile_id = reader_with_profile(session, categories=["cs.CV"])
    path = profile_feed_path(client.get(page))
    first = client.get(path)
    etag = first.headers["etag"]

    again = client.get(path, headers={"If-None-Match": etag})
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["cache-control"] == "private, no-cache"

    session.execute(
        update(InterestProfile).where(InterestProfile.id == profile_id).values(categories=["cs.CL"])
    )
    session.commit()
    edited = client.get(path, headers={"If-None-Match": etag})
    assert edited.status_code == 200, "an edited profile is a new feed at once, not at the next score run"
    assert edited.headers["etag"] != etag


def test_a_vote_in_any_of_the_readers_profiles_takes_the_paper_out_of_every_feed_at_once(
    client: TestClient, session: Session
) -> None:
    """A voted paper leaves every one of the reader's feeds, so a feed reader polling with its ETag
    gets the new feed, not a 304: for a vote in another profile, and for a second vote on a profile
    not retrained yet (its stale mark and its model are as they were after the first)."""
    chosen = ["2608.20335", "2608.19758", "2608.13210"]
    session.execute(update(Paper).where(Paper.id.in_(chosen)).values(categories=["cs.CV"]))
    session.commit()
    page, profile_id = reader_with_profile(session, categories=["cs.CV"])
    reader = subscriber_by_email(session, "reader@example.org")
    other = subscriber_repository.add_profile(
        session, subscriber_id=reader.id, name="Other", phrases=[], categories=["cs.CL"]
    )
    session.commit()
    path = profile_feed_path(client.get(page))
    etag = client.get(path).headers["etag"]

    for voted, profile in (("2608.13210", other.id), ("2608.19758", profile_id)):
        preferences.record_vote(session, subscriber_id=reader.id, profile_id=profile, paper_id=voted, vote=-1)
        session.commit()
        polled = client.get(path, headers={"If-None-Match": etag})

        assert polled.status_code == 200, f"a vote on {voted} is a new feed"
        assert f"/papers/{voted}" not in polled.text
        etag = polled.headers["etag"]
    assert [e.id for e in fetch(client, path).entries] == ["http://testserver/papers/2608.20335"]


def test_the_profile_feed_is_404_for_a_forged_token_a_deleted_profile_and_after_unsubscribing(
    client: TestClient, session: Session
) -> None:
    page, profile_id = reader_with_profile(session, categories=["cs.CV"])
    path = profile_feed_path(client.get(page))
    assert client.get(path).status_code == 200

    token = path.removeprefix("/feeds/profiles/").removesuffix(".atom")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/feeds/profiles/{forged}.atom").status_code == 404
    key = feeds.feed_key_from(get_settings(), token)
    assert key is not None
    assert key.reader_key is not None
    other_key = URLSafeSerializer("another-secret", salt="papertide-feed-profile").dumps(
        {"p": profile_id, "r": key.reader_key}
    )
    assert client.get(f"/feeds/profiles/{other_key}.atom").status_code == 404
    next_profile = feeds.profile_token(get_settings(), profile_id + 1, reader_key=key.reader_key)
    assert client.get(f"/feeds/profiles/{next_profile}.atom").status_code == 404

    csrf = csrf_from(client.get(page).text)
    assert client.post(f"{page}/unsubscribe", data={"csrf": csrf}).status_code == 200
    assert client.get(path).status_code == 404


def test_a_profile_feed_stays_ended_when_the_address_subscribes_again(
    client: TestClient, session: Session, inbox: Inbox
) -> None:
    """Profiles outlive an unsubscribe (a return brings them back), but the feed URL of the old
    subscription does not: whoever held it is not vouched for by the new confirmation."""
    page, profile_id = reader_with_profile(session, categories=["cs.CV"])
    path = profile_feed_path(client.get(page))
    before_urls_named_their_reader = f"/feeds/profiles/{legacy_token(profile_id)}.atom"
    assert client.get(before_urls_named_their_reader).status_code == 200, "from the only subscription"
    client.post(f"{page}/unsubscribe", data={"csrf": csrf_from(client.get(page).text)})

    confirmed = subscribe_and_confirm_again(client, inbox, "reader@example.org")

    assert client.get(path).status_code == 404
    assert client.get(before_urls_named_their_reader).status_code == 404
    assert client.get(profile_feed_path(confirmed)).status_code == 200, "the new subscription's URL"


@pytest.mark.parametrize(
    "payload",
    [{"p": 1}, {"p": "1", "r": "k"}, {"p": 1, "r": 2}, {"p": True, "r": "k"}, [1, "k"], "1", None, True],
)
def test_a_signed_feed_token_of_another_shape_names_no_profile(payload: object) -> None:
    """Only this site signs these, but an old or odd payload must read as no feed, not a crash."""
    token = URLSafeSerializer(get_settings().resolved_secret_key(), salt="papertide-feed-profile").dumps(
        payload
    )
    assert feeds.feed_key_from(get_settings(), token) is None


def legacy_token(profile_id: int) -> str:
    """A feed token as papertide signed them before they named the subscription: the id alone."""
    return URLSafeSerializer(get_settings().resolved_secret_key(), salt="papertide-feed-profile").dumps(
        profile_id
    )


def subscribe_and_confirm_again(client: TestClient, inbox: Inbox, email: str) -> Response:
    client.post("/subscribe", data={"email": email, "csrf": csrf_from(client.get("/subscribe").text)})
    token = link_token(inbox.messages[-1], "confirm")
    return client.post(f"/confirm/{token}", data={"csrf": csrf_from(client.get(f"/confirm/{token}").text)})


def test_a_deleted_profiles_feed_is_404(client: TestClient, session: Session) -> None:
    page, profile_id = reader_with_profile(session, categories=["cs.CV"])
    path = profile_feed_path(client.get(page))

    csrf = csrf_from(client.get(page).text)
    client.post(f"{page}/profiles/{profile_id}/delete", data={"csrf": csrf}, follow_redirects=False)

    assert client.get(path).status_code == 404


def test_the_confirmation_page_shows_the_new_profiles_feed(client: TestClient, inbox: Inbox) -> None:
    form = client.get("/subscribe")
    client.post(
        "/subscribe",
        data={"email": "new@example.org", "interests": "agent worlds", "csrf": csrf_from(form.text)},
    )
    token = link_token(inbox.messages[-1], "confirm")
    confirmed = client.post(
        f"/confirm/{token}", data={"csrf": csrf_from(client.get(f"/confirm/{token}").text)}
    )

    assert confirmed.status_code == 200
    path = profile_feed_path(confirmed)
    assert fetch(client, path).feed.title.endswith("· your papertide profile")


def test_the_feeds_of_a_site_with_nothing_scored_yet_are_valid_and_empty(mail_client: TestClient) -> None:
    for url in ("/feeds/trending.atom", "/feeds/trending.atom?period=month"):
        parsed = fetch(mail_client, url)
        assert parsed.entries == []
        assert parsed.feed.updated == "1970-01-01T00:00:00Z"
    assert mail_client.get("/feeds/trending.atom?period=year").status_code == 422


def test_a_control_character_never_reaches_the_xml() -> None:
    assert feeds.xml_text("a\x00b\x0bc\x1fd\ufffee\tf\n") == "abcde\tf\n"
    assert feeds.xml_text("emoji 🦜 and ü stay") == "emoji 🦜 and ü stay"
