"""Review probes for issue 9: hostile input on the manage page, votes and view links, and the
schedule's time zones. Each test states what a reader would notice if it broke."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.digests import service as digest_service
from papertide.digests.mailer import SmtpMailer
from papertide.models import DigestDelivery, DigestItem, InterestProfile, PaperVote
from papertide.signing import LinkPurpose, sign
from papertide.subscribers import preferences, repository
from papertide.web.app import create_app
from papertide.web.reader_cookie import COOKIE_NAME
from tests.factories import make_paper
from tests.helpers import Inbox, csrf_from, link_token, subscribe_and_confirm, wait_for_lock_waiters
from tests.web.test_manage import manage_link, post, profile_names, stored


@pytest.fixture
def client(mail_client: TestClient) -> TestClient:
    return mail_client


# --- manage: profile fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Trending\u200b",
        "\u202eTrending",
        "Trending\u3164",
        "Trending\u034f",
        "Trending\ufe0f",
        "Tren\u180bding",
    ],
    ids=[
        "zero-width-space",
        "rtl-override",
        "hangul-filler",
        "grapheme-joiner",
        "variation-selector",
        "mongolian-fvs",
    ],
)
def test_a_profile_cannot_pose_as_the_trending_section_with_invisible_characters(
    client: TestClient, session: Session, name: str
) -> None:
    """A section that reads "Trending" twice in one email: the reader cannot tell which one their
    votes teach, nor which one is theirs."""
    page = manage_link(session)

    response = post(client, page, "/profiles", name=name, phrases="world models")

    assert response.status_code == 422
    assert profile_names(session) == ["My interests"]


@pytest.mark.parametrize(
    "name",
    [
        "\u200b\u200c\u2060",
        "\u3164",
        "\u2800\u2800",
        "\uffa0\u115f",
        "\u2065",
        "\ufff0\U000e0002",
        "\u0301\u0301",
    ],
)
def test_a_name_of_only_invisible_characters_is_refused(
    client: TestClient, session: Session, name: str
) -> None:
    page = manage_link(session)

    response = post(client, page, "/profiles", name=name, phrases="world models")

    assert response.status_code == 422, "a section with an empty-looking heading"
    assert profile_names(session) == ["My interests"]


def test_two_add_profile_forms_at_once_never_make_an_eleventh_profile(
    database: str, smtp: tuple[Inbox, SmtpMailer], session: Session
) -> None:
    """The 10-profile limit holds when two forms race (the subscriber row lock serialises them)."""
    page = manage_link(session)
    subscriber = stored(session)
    for n in range(2, 10):
        preferences.add_profile(session, subscriber=subscriber, name=f"t{n}", phrases=f"p{n}", categories="")
    session.commit()
    assert len(profile_names(session)) == 9

    app = create_app(encoder_provider=lambda: None, mailer=smtp[1])
    with TestClient(app) as first, TestClient(app) as second:
        csrf = csrf_from(first.get(page).text)
        # Hold the subscriber's row so both requests queue behind it, then let them go together.
        holder = session.connection()
        holder.exec_driver_sql("SELECT 1 FROM subscriber WHERE id = %s FOR UPDATE", (subscriber.id,))
        results: list[Response] = []

        def send(client: TestClient, name: str) -> None:
            data = {"name": name, "phrases": name, "csrf": csrf}
            results.append(client.post(page + "/profiles", data=data, follow_redirects=False))

        threads = [
            threading.Thread(target=send, args=(first, "race a")),
            threading.Thread(target=send, args=(second, "race b")),
        ]
        for thread in threads:
            thread.start()
        wait_for_lock_waiters(2)
        session.rollback()
        for thread in threads:
            thread.join(60)

    assert sorted(r.status_code for r in results) == [303, 422]
    assert len(profile_names(session)) == 10


# --- manage: schedule fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"frequency": "weekdays", "days": ["\u00b2"], "send_hour": "7", "time_zone": "UTC"},
        {"frequency": "weekly", "weekly_day": "\u00b3", "send_hour": "7", "time_zone": "UTC"},
        {"frequency": "weekdays", "days": ["1", "\u2460"], "send_hour": "7", "time_zone": "UTC"},
    ],
    ids=["superscript-two-in-days", "superscript-three-weekly", "circled-one-in-days"],
)
def test_a_digit_like_day_is_refused_by_its_field_not_a_500(
    client: TestClient, session: Session, fields: dict[str, str | list[str]]
) -> None:
    """str.isdigit() is True for '²' and '①', int() refuses them: a ValueError nobody catches."""
    page = manage_link(session)

    response = post(client, page, "/schedule", **fields)

    assert response.status_code == 422, response.text[:300]
    assert stored(session).send_days == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("zone", ["CET", "EET", "MET", "WET"])
def test_a_zone_the_page_accepts_sends_at_the_readers_local_hour_in_summer(
    client: TestClient, session: Session, zone: str
) -> None:
    """The page offers and saves CET/EET/MET/WET (IANA zones with summer time), but Postgres's
    AT TIME ZONE reads these names as its fixed-offset abbreviations first: in summer the digest
    comes an hour late (the reader asked for 07:00 and gets it at 08:00)."""
    page = manage_link(session)
    saved = post(client, page, "/schedule", frequency="daily", send_hour="7", time_zone=zone)
    assert saved.status_code == 303, "the page accepts the zone"
    assert stored(session).time_zone == zone

    # 07:30 local summer time on 15 July 2026 (UTC+2 for CET/MET, +3 for EET, +1 for WET).
    summer_offset = {"CET": 2, "MET": 2, "EET": 3, "WET": 1}[zone]
    now = datetime(2026, 7, 15, 7 - summer_offset, 30, tzinfo=UTC)
    digest_service.prepare_deliveries(session, now=now)
    session.commit()

    due = session.scalars(select(DigestDelivery.subscriber_id)).all()
    assert due == [stored(session).id], f"07:30 local in {zone}: the 07:00 digest is due"


# --- votes, view links and the reader cookie after unsubscribing ----------------------------------


def test_a_reader_who_unsubscribed_cannot_vote_from_the_paper_page(
    client: TestClient, session: Session
) -> None:
    """The paper page offers no buttons to a browser whose reader has left (reader_profiles checks
    the status), but a POST with the old cookie still records a vote in the stopped reader's profile."""
    make_paper(session, id="2601.99999", title="A paper")
    session.commit()
    page = manage_link(session)
    client.get(page)
    assert client.cookies.get(COOKIE_NAME)
    [profile_id] = [p.id for p in session.scalars(select(InterestProfile))]
    paper_page = client.get("/papers/2601.99999").text
    csrf = csrf_from(paper_page)
    assert post(client, page, "/unsubscribe").status_code == 200

    response = client.post(
        "/papers/2601.99999/vote", data={"vote": "1", "profile": str(profile_id), "csrf": csrf}
    )

    assert response.status_code in (403, 410)
    session.expire_all()
    assert session.scalars(select(PaperVote)).all() == []


def test_an_old_digests_vote_link_records_nothing_once_the_reader_unsubscribed(
    client: TestClient, session: Session
) -> None:
    """The page answers "Recorded: your section will show more papers like this, from the next
    digest" to a reader who has no next digest."""
    make_paper(session, id="2601.99999", title="A paper")
    session.commit()
    page = manage_link(session)
    [profile_id] = [p.id for p in session.scalars(select(InterestProfile))]
    payload = {"s": stored(session).id, "p": profile_id, "paper": "2601.99999", "v": 1}
    link = "/vote/" + sign(get_settings().resolved_secret_key(), LinkPurpose.VOTE, payload)
    assert post(client, page, "/unsubscribe").status_code == 200

    response = client.post(link)
    # A Trending paper's link: the reader picks the profile on the page.
    trending = client.post(
        "/vote/" + sign(get_settings().resolved_secret_key(), LinkPurpose.VOTE, {**payload, "p": None}),
        data={"profile": str(profile_id)},
    )

    for answer in (response, trending):
        assert answer.status_code == 410
        assert "You have unsubscribed, so there is no digest for this vote to change." in answer.text
    assert "Recorded" not in response.text
    session.expire_all()
    assert session.scalars(select(PaperVote)).all() == []


# --- time zones the page offers -----------------------------------------------------------------


def test_every_zone_the_page_offers_can_be_saved_and_no_machine_file_is_offered() -> None:
    """The zone list is what saving accepts, and the scheduler reads the same zone database; the
    server's own 'localtime' link and the non-places are never offered."""
    offered = preferences.time_zone_names()
    refused = []
    for name in offered:
        try:
            preferences.parse_time_zone(name)
        except preferences.FieldError:
            refused.append(name)

    assert refused == []
    assert not {"localtime", "posixrules", "Factory"} & set(offered)
    assert "America/Coyhaique" in offered or "America/Santiago" in offered


# --- sign-up again after unsubscribing -----------------------------------------------------------


def test_subscribing_again_never_makes_more_profiles_than_the_limit(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    """A reader with ten profiles leaves and comes back: confirming adds "My interests" as an
    eleventh, a state the manage page itself refuses to create."""
    subscribe_and_confirm(client, inbox, "back@example.org")
    page = f"/manage/{link_token(inbox.to('back@example.org')[0], 'manage')}"
    subscriber = stored(session, "back@example.org")
    for old in repository.profiles(session, subscriber.id):
        session.delete(old)
    for n in range(preferences.MAX_PROFILES):
        preferences.add_profile(session, subscriber=subscriber, name=f"t{n}", phrases=f"p{n}", categories="")
    session.commit()
    assert post(client, page, "/unsubscribe").status_code == 200

    form = csrf_from(client.get("/subscribe").text)
    client.post("/subscribe", data={"email": "back@example.org", "interests": "crypto", "csrf": form})
    token = link_token(inbox.to("back@example.org")[-1], "confirm")
    client.post(f"/confirm/{token}", data={"csrf": csrf_from(client.get(f"/confirm/{token}").text)})

    assert stored(session, "back@example.org").status == "confirmed"
    assert len(profile_names(session, "back@example.org")) <= preferences.MAX_PROFILES


def test_deleting_a_profile_that_a_sent_digest_carried_keeps_the_view_link_working(
    client: TestClient, session: Session
) -> None:
    make_paper(session, id="2601.99999", title="A paper about speech")
    session.commit()
    page = manage_link(session)
    subscriber = stored(session)
    [profile_id] = [p.id for p in session.scalars(select(InterestProfile))]
    delivery = DigestDelivery(
        subscriber_id=subscriber.id, digest_date=datetime(2026, 11, 27).date(), status="sent"
    )
    session.add(delivery)
    session.flush()
    session.add(
        DigestItem(
            delivery_id=delivery.id,
            paper_id="2601.99999",
            rank=1,
            reason="matches 'speech'",
            profile_id=profile_id,
            section="My interests",
        )
    )
    session.commit()
    view = "/digest/" + sign(get_settings().resolved_secret_key(), LinkPurpose.VIEW, {"d": delivery.id})

    assert post(client, page, f"/profiles/{profile_id}/delete").status_code == 303
    shown = client.get(view)

    assert shown.status_code == 200
    assert "My interests" in shown.text
    assert "A paper about speech" in shown.text
