"""The manage page behind a magic link: what a reader sees, changes, and is refused."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.digests import service as digest_service
from papertide.digests.mailer import SmtpMailer
from papertide.models import (
    DigestDelivery,
    InterestProfile,
    PaperVote,
    Subscriber,
    SubscriberStatus,
    SubscriberToken,
)
from papertide.subscribers import preferences, repository, service
from papertide.web.app import create_app
from papertide.web.deps import csrf_token
from papertide.web.reader_cookie import COOKIE_NAME, VOTE_FORM
from tests.factories import make_paper
from tests.helpers import Inbox, csrf_from, free_port, link_token, subscribe_and_confirm, subscriber_by_email


@pytest.fixture
def client(mail_client: TestClient) -> TestClient:
    return mail_client


def manage_link(
    session: Session, email: str = "reader@example.org", *, phrases: list[str] | None = None
) -> str:
    """A confirmed subscriber (with a first profile) and the path of a fresh manage link."""
    subscriber = Subscriber(
        email=email, status=SubscriberStatus.CONFIRMED, papers_per_digest=8, interest_mix=0.5
    )
    session.add(subscriber)
    session.flush()
    repository.add_profile(
        session,
        subscriber_id=subscriber.id,
        name=service.FIRST_PROFILE,
        phrases=phrases or ["speech synthesis"],
        categories=[],
    )
    token = service.new_manage_token(session, subscriber)
    session.commit()
    return f"/manage/{token}"


def post(client: TestClient, page: str, action: str, **fields: str | list[str]) -> Response:
    """Send one of the page's forms with the page's CSRF token."""
    csrf = csrf_from(client.get(page).text)
    return client.post(page + action, data={**fields, "csrf": csrf}, follow_redirects=False)


def stored(session: Session, email: str = "reader@example.org") -> Subscriber:
    return subscriber_by_email(session, email)


def profile_names(session: Session, email: str = "reader@example.org") -> list[str]:
    session.expire_all()
    return [p.name for p in repository.profiles(session, stored(session, email).id)]


def problem(response: Response, form: str, field: str) -> str:
    """The error shown next to one field of one form."""
    match = re.search(
        rf'<span class="error" role="alert" id="error-{form}-{field}">([^<]*)</span>', response.text
    )
    assert match, f"{form}.{field} shows its problem"
    return match.group(1)


def test_the_page_shows_the_readers_choices_and_marks_the_browser(
    client: TestClient, session: Session
) -> None:
    page = manage_link(session)

    response = client.get(page)

    assert response.status_code == 200
    assert "reader@example.org" in response.text
    assert "speech synthesis" in response.text
    assert 'value="Asia/Kolkata"' in response.text, "the zone list is offered"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=2592000" in cookie
    assert "Secure" not in cookie, "the test site runs on plain http"


def test_someone_elses_manage_link_does_not_take_over_a_browser_that_votes_as_its_reader(
    client: TestClient, session: Session
) -> None:
    """A page elsewhere opens the attacker's manage link in the victim's browser: the victim's
    cookie stays, and only the page's button (a POST with the page's token) would change it."""
    victims = manage_link(session, "victim@example.org")
    attackers = manage_link(session, "attacker@example.org")
    own = client.get(victims)
    assert own.headers["set-cookie"].startswith(f"{COOKIE_NAME}=")
    victim_cookie = client.cookies[COOKIE_NAME]

    opened = client.get(attackers, headers={"Sec-Fetch-Site": "cross-site"})

    assert opened.status_code == 200
    assert "set-cookie" not in opened.headers
    assert client.cookies[COOKIE_NAME] == victim_cookie
    assert "go to another subscriber's profiles" in opened.text
    again = client.get(victims)
    assert "set-cookie" in again.headers, "the reader's own link renews their cookie"
    assert "another subscriber" not in again.text

    pressed = post(client, attackers, "/this-browser")

    assert pressed.status_code == 303
    assert client.cookies[COOKIE_NAME] != victim_cookie
    assert "another subscriber" not in client.get(attackers).text


def test_the_reader_cookie_is_secure_when_the_site_is_https(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = manage_link(session)
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "https://papers.example.org")
    get_settings.cache_clear()

    assert "Secure" in client.get(page).headers["set-cookie"]


def test_opening_the_page_changes_nothing_but_when_mail_last_reached_the_reader(
    client: TestClient, session: Session
) -> None:
    page = manage_link(session)
    chosen = [c for c in Subscriber.__table__.columns if c.name != "mail_reached_at"]
    before = session.execute(select(*chosen)).all()
    tokens = session.scalar(select(func.count()).select_from(SubscriberToken))

    for _ in range(2):
        assert client.get(page).status_code == 200

    session.expire_all()
    assert session.execute(select(*chosen)).all() == before
    assert session.scalar(select(func.count()).select_from(SubscriberToken)) == tokens
    # A link that was mailed has been opened: mail made when it was reached the reader (a later
    # bounce about an older digest is not believed: digests/feedback.py).
    made = session.scalar(select(func.max(SubscriberToken.created_at)))
    assert session.scalar(select(Subscriber.mail_reached_at)) == made


def test_an_unknown_link_is_404_and_an_expired_one_410_with_why(client: TestClient, session: Session) -> None:
    page = manage_link(session)
    session.execute(
        update(SubscriberToken).values(created_at=SubscriberToken.created_at - service.MANAGE_TOKEN_TTL)
    )
    session.commit()
    service.prune_tokens(session, now=datetime.now(UTC))  # the scheduler's pass keeps it, to say why
    session.commit()

    unknown = client.get("/manage/no-such-token")
    expired = client.get(page)
    pressed = client.post(page + "/pause", data={"csrf": csrf_token(get_settings(), "manage")})

    assert unknown.status_code == 404
    assert "This manage link is not valid" in unknown.text
    assert "fill in the subscribe form with your address to get one by email" in unknown.text
    for response in (expired, pressed):
        assert response.status_code == 410
        assert (
            "This manage link has expired (links work for 30 days), so nothing was changed" in response.text
        )
        assert "set-cookie" not in response.headers
    assert stored(session).paused_at is None


def test_an_unsubscribed_address_has_nothing_to_manage(client: TestClient, session: Session) -> None:
    page = manage_link(session)
    session.execute(update(Subscriber).values(status=SubscriberStatus.UNSUBSCRIBED))
    session.commit()

    response = client.get(page)

    assert response.status_code == 410
    assert "This address has unsubscribed" in response.text


def test_a_second_profile_is_added_and_the_page_says_saved(client: TestClient, session: Session) -> None:
    page = manage_link(session)

    response = post(
        client,
        page,
        "/profiles",
        name="RL theory",
        phrases="offline RL\nbandits",
        categories="cs.LG, stat.ML",
    )

    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{page}?saved=profile-added#profile-")
    shown = client.get(response.headers["location"])
    assert "Saved: the new profile gets its own section" in shown.text
    assert profile_names(session) == [service.FIRST_PROFILE, "RL theory"]
    added = repository.profiles(session, stored(session).id)[1]
    assert (added.phrases, added.categories) == (["offline RL", "bandits"], ["cs.LG", "stat.ML"])


def test_five_profiles_fit_and_the_eleventh_is_refused_next_to_its_name(
    client: TestClient, session: Session
) -> None:
    page = manage_link(session)
    for n in range(2, 11):
        assert post(client, page, "/profiles", name=f"topic {n}", phrases=f"phrase {n}").status_code == 303
    assert len(profile_names(session)) == 10

    refused = post(client, page, "/profiles", name="eleventh", phrases="one too many")

    assert refused.status_code == 422
    assert "You have 10 profiles, the most there can be" in problem(refused, "new", "name")
    assert "Nothing was saved" in refused.text
    assert 'value="eleventh"' in refused.text, "what was typed is kept"
    assert len(profile_names(session)) == 10


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "MY INTERESTS", "phrases": "x"}, "name", "You already have a profile named"),
        (
            {"name": "audio", "phrases": "x", "categories": "cs.CL, speech!"},
            "categories",
            "is not an arXiv category",
        ),
        (
            {"name": "audio", "phrases": "", "categories": ""},
            "phrases",
            "at least one phrase or one arXiv category",
        ),
        ({"name": "", "phrases": "x"}, "name", "Give the profile a name"),
    ],
)
def test_a_bad_profile_is_refused_next_to_its_field(
    client: TestClient, session: Session, fields: dict[str, str], field: str, message: str
) -> None:
    page = manage_link(session)

    refused = post(client, page, "/profiles", **fields)

    assert refused.status_code == 422
    assert message in problem(refused, "new", field)
    assert profile_names(session) == [service.FIRST_PROFILE]


def test_names_and_phrases_with_markup_are_shown_as_text(client: TestClient, session: Session) -> None:
    page = manage_link(session)
    hostile = '<img src=x onerror="alert(1)">'

    post(client, page, "/profiles", name=hostile, phrases=f"<script>alert(2)</script>, {hostile}")
    shown = client.get(page).text

    assert "<img src=x" not in shown
    assert "<script>alert(2)" not in shown
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in shown
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in shown


def test_a_profile_is_edited_moved_up_and_deleted(client: TestClient, session: Session) -> None:
    page = manage_link(session)
    post(client, page, "/profiles", name="vision", phrases="video generation")
    first, second = (p.id for p in repository.profiles(session, stored(session).id))

    edited = post(
        client, page, f"/profiles/{first}", name="speech", phrases="text to speech", categories="eess.AS"
    )
    moved = post(client, page, f"/profiles/{second}/up")
    assert "saved=order" in moved.headers["location"]  # "Saved: the sections are in the new order."
    assert (edited.status_code, moved.status_code) == (303, 303)
    assert profile_names(session) == ["vision", "speech"]
    speech = repository.get_profile(session, first)
    assert speech is not None
    assert (speech.phrases, speech.categories, speech.model_stale) == (["text to speech"], ["eess.AS"], True)

    assert post(client, page, f"/profiles/{first}/delete").status_code == 303
    assert profile_names(session) == ["vision"]


def test_an_edit_that_takes_another_profiles_name_is_refused_in_that_profiles_form(
    client: TestClient, session: Session
) -> None:
    page = manage_link(session)
    post(client, page, "/profiles", name="vision", phrases="video")
    first = repository.profiles(session, stored(session).id)[0].id

    refused = post(client, page, f"/profiles/{first}", name="Vision", phrases="tts")

    assert refused.status_code == 422
    assert "You already have a profile named “Vision”" in problem(refused, f"profile-{first}", "name")
    assert profile_names(session) == [service.FIRST_PROFILE, "vision"]


def test_another_readers_profile_is_out_of_reach(client: TestClient, session: Session) -> None:
    page = manage_link(session)
    manage_link(session, "other@example.org")
    theirs = repository.profiles(session, stored(session, "other@example.org").id)[0].id

    for action, fields in [
        (f"/profiles/{theirs}", {"name": "mine", "phrases": "x"}),
        (f"/profiles/{theirs}/delete", {}),
    ]:
        response = post(client, page, action, **fields)
        assert response.status_code == 404
        assert "That profile is not one of yours" in response.text
    assert profile_names(session, "other@example.org") == [service.FIRST_PROFILE]


def test_size_and_mix_are_saved_or_refused_by_field(client: TestClient, session: Session) -> None:
    page = manage_link(session)

    saved = post(client, page, "/digest", papers_per_section="12", trending_papers="0", interest_mix="0.8")
    refused = post(client, page, "/digest", papers_per_section="80", trending_papers="3", interest_mix="0.1")

    assert saved.status_code == 303
    assert refused.status_code == 422
    assert problem(refused, "digest", "papers_per_section") == "Give a whole number from 1 to 50."
    subscriber = stored(session)
    assert (subscriber.papers_per_digest, subscriber.trending_papers, subscriber.interest_mix) == (12, 0, 0.8)


def test_the_schedule_is_saved_with_chosen_days_hour_and_zone(client: TestClient, session: Session) -> None:
    page = manage_link(session)

    response = post(
        client,
        page,
        "/schedule",
        frequency="weekdays",
        days=["1", "3", "5"],
        send_hour="18",
        time_zone="America/Los_Angeles",
    )

    assert response.status_code == 303
    subscriber = stored(session)
    assert (subscriber.frequency, subscriber.send_days) == ("weekdays", [1, 3, 5])
    assert (subscriber.send_hour, subscriber.time_zone) == (18, "America/Los_Angeles")
    shown = client.get(page).text
    assert '<option value="18" selected>18:00</option>' in shown
    assert 'name="days" value="3" checked' in shown


def test_the_page_shows_the_clock_and_offset_of_the_chosen_zone(client: TestClient, session: Session) -> None:
    """Etc/GMT+5 is five hours behind UTC (POSIX's sign): the page says so, not just the name."""
    page = manage_link(session)
    assert (
        post(client, page, "/schedule", frequency="daily", send_hour="7", time_zone="Etc/GMT+5").status_code
        == 303
    )

    shown = re.search(
        r'id="zone-clock">Now in Etc/GMT\+5: (\w{3} \d\d:\d\d), UTC\u22120?5:00\. Next digest due: '
        r'<span id="next-digest">[^<]+</span>\.<',
        client.get(page).text,
    )

    assert shown, "the zone's clock and its offset behind UTC"
    assert (
        preferences.zone_clock("Asia/Kolkata", datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
        == "Sat 17:30, UTC+05:30"
    )
    assert (
        preferences.zone_clock("Pacific/Chatham", datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
        == "Sun 01:45, UTC+13:45"
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"frequency": "daily", "send_hour": "7", "time_zone": "Mars/Olympus_Mons"},
            "time_zone",
            "is not a time zone name we know",
        ),
        (
            {"frequency": "daily", "send_hour": "7", "time_zone": "<b>UTC</b>"},
            "time_zone",
            "“&lt;b&gt;UTC&lt;/b&gt;” is not",
        ),
        (
            {"frequency": "weekdays", "send_hour": "7", "time_zone": "UTC"},
            "days",
            "Choose at least one day of the week.",
        ),
        (
            {"frequency": "daily", "send_hour": "25", "time_zone": "UTC"},
            "send_hour",
            "Give a whole number from 0 to 23.",
        ),
    ],
)
def test_a_bad_schedule_is_refused_next_to_its_field_and_nothing_changes(
    client: TestClient, session: Session, fields: dict[str, str], field: str, message: str
) -> None:
    page = manage_link(session)

    refused = post(client, page, "/schedule", **fields)

    assert refused.status_code == 422
    assert message in problem(refused, "schedule", field)
    subscriber = stored(session)
    assert (subscriber.send_hour, subscriber.time_zone, subscriber.send_days) == (
        7,
        "UTC",
        [1, 2, 3, 4, 5, 6, 7],
    )


def test_pause_and_resume(client: TestClient, session: Session) -> None:
    page = manage_link(session)

    paused = post(client, page, "/pause")
    assert paused.status_code == 303
    assert stored(session).paused_at is not None
    shown = client.get(paused.headers["location"]).text
    assert "Paused: no digest is sent until you resume." in shown
    assert "Resume the digest" in shown

    assert post(client, page, "/resume").status_code == 303
    assert stored(session).paused_at is None


def test_unsubscribe_from_the_page(client: TestClient, session: Session) -> None:
    page = manage_link(session)

    response = post(client, page, "/unsubscribe")

    assert response.status_code == 200
    assert stored(session).status == SubscriberStatus.UNSUBSCRIBED
    assert client.get(page).status_code == 410


@pytest.mark.parametrize("csrf", [None, "forged", "other-form"])
def test_every_form_needs_the_pages_csrf_token(
    client: TestClient, session: Session, csrf: str | None
) -> None:
    page = manage_link(session)
    first = repository.profiles(session, stored(session).id)[0].id
    token = {None: None, "forged": "forged", "other-form": csrf_token(get_settings(), "subscribe")}[csrf]
    forms = {
        "/profiles": {"name": "new", "phrases": "x"},
        f"/profiles/{first}": {"name": "renamed", "phrases": "x"},
        f"/profiles/{first}/delete": {},
        f"/profiles/{first}/up": {},
        "/digest": {"papers_per_section": "3", "trending_papers": "3", "interest_mix": "0.1"},
        "/schedule": {"frequency": "daily", "send_hour": "3", "time_zone": "UTC"},
        "/pause": {},
        "/resume": {},
        "/unsubscribe": {},
        "/this-browser": {},
    }
    before = session.execute(select(Subscriber.__table__)).all()

    for action, fields in forms.items():
        data = {**fields, **({"csrf": token} if token else {})}
        refused = client.post(page + action, data=data)
        assert refused.status_code == 400, action
        assert "set-cookie" not in refused.headers, action

    session.expire_all()
    assert session.execute(select(Subscriber.__table__)).all() == before
    assert session.scalars(select(InterestProfile.name)).all() == [service.FIRST_PROFILE]


def test_signing_up_again_mails_a_manage_link_and_the_page_reads_as_for_a_stranger(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    subscribe_and_confirm(client, inbox, "known@example.org")
    form = csrf_from(client.get("/subscribe").text)

    known = client.post(
        "/subscribe", data={"email": "known@example.org", "interests": "crypto", "csrf": form}
    )
    stranger = client.post("/subscribe", data={"email": "stranger@example.org", "csrf": form})

    assert known.status_code == stranger.status_code == 200
    assert known.text.replace("known@", "X@") == stranger.text.replace("stranger@", "X@")
    mail = inbox.to("known@example.org")[-1]
    assert mail["Subject"] == "Manage your papertide digest"
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    assert "The link works for 30 days" in text.get_content()
    page = client.get(f"/manage/{link_token(mail, 'manage')}")
    assert page.status_code == 200
    assert "crypto" not in page.text, "what the form said is not applied: anyone may fill it in"


def test_the_confirmed_page_links_to_the_manage_page(client: TestClient, inbox: Inbox) -> None:
    form = client.get("/subscribe")
    client.post(
        "/subscribe", data={"email": "new@example.org", "interests": "agents", "csrf": csrf_from(form.text)}
    )
    token = link_token(inbox.messages[-1], "confirm")

    confirmed = client.post(
        f"/confirm/{token}", data={"csrf": csrf_from(client.get(f"/confirm/{token}").text)}
    )

    assert "It favours: agents." in confirmed.text
    now = datetime.now(
        UTC
    )  # a new reader's default: every day at 07:00 UTC; after it, today's at the next pass
    first = now.replace(hour=7, minute=0, second=0, microsecond=0)
    due = f"{first:%a %d %b}, 07:00" if first > now else "at the next scheduler pass, within minutes"
    assert f'The first is due <span id="next-digest">{due}</span> (UTC time' in confirmed.text
    link = re.search(r'<a href="(/manage/[^"]+)" id="manage">Manage your digest</a>', confirmed.text)
    assert link, "the confirmed page offers the manage page"
    assert "new@example.org" in client.get(link.group(1)).text


def test_a_failing_mail_server_answers_a_known_address_as_it_answers_a_new_one(
    database: str, session: Session
) -> None:
    manage_link(session, "known@example.org")
    broken = SmtpMailer(f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    with TestClient(create_app(encoder_provider=lambda: None, mailer=broken)) as client:
        token = csrf_from(client.get("/subscribe").text)
        known = client.post("/subscribe", data={"email": "known@example.org", "csrf": token})
        new = client.post("/subscribe", data={"email": "new@example.org", "csrf": token})

    assert known.status_code == new.status_code == 503
    assert known.text == new.text
    assert "could not send the confirmation email" in known.text


def test_the_confirmation_email_carries_a_manage_link_that_opens_once_confirmed(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    form = client.get("/subscribe")
    client.post("/subscribe", data={"email": "new@example.org", "csrf": csrf_from(form.text)})
    confirmation = inbox.messages[-1]
    manage = f"/manage/{link_token(confirmation, 'manage')}"

    early = client.get(manage)
    assert early.status_code == 409
    assert "not confirmed yet" in early.text

    confirm = link_token(confirmation, "confirm")
    client.post(f"/confirm/{confirm}", data={"csrf": csrf_from(client.get(f"/confirm/{confirm}").text)})
    assert client.get(manage).status_code == 200
    assert stored(session, "new@example.org").status == SubscriberStatus.CONFIRMED


# --- leaving and coming back --------------------------------------------------------------------


def sign_up(client: TestClient, inbox: Inbox, email: str, interests: str = "") -> str:
    """The subscribe form's POST; returns the confirmation email's confirm token."""
    form = csrf_from(client.get("/subscribe").text)
    data = {"email": email, "interests": interests, "frequency": "daily", "csrf": form}
    assert client.post("/subscribe", data=data).status_code == 200
    return link_token(inbox.messages[-1], "confirm")


def confirmed_manage_page(client: TestClient, token: str) -> str:
    """Press Confirm; returns the manage page the confirmed page links to."""
    csrf = csrf_from(client.get(f"/confirm/{token}").text)
    confirmed = client.post(f"/confirm/{token}", data={"csrf": csrf})
    assert confirmed.status_code == 200
    link = re.search(r'href="(/manage/[^"]+)" id="manage"', confirmed.text)
    assert link, "the confirmed page links to the manage page"
    return link.group(1)


def paused_then_left(client: TestClient, inbox: Inbox, email: str = "back@example.org") -> str:
    """A reader who subscribed, paused the digest and unsubscribed; returns their old manage page."""
    page = confirmed_manage_page(client, sign_up(client, inbox, email, "speech synthesis"))
    assert post(client, page, "/pause").status_code == 303
    assert post(client, page, "/unsubscribe").status_code == 200
    return page


def test_a_reader_who_paused_then_left_and_came_back_gets_the_digest_again(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    paused_then_left(client, inbox)

    page = confirmed_manage_page(client, sign_up(client, inbox, "back@example.org", "robots"))

    assert "Resume the digest" not in client.get(page).text, "the new subscription is not paused"
    reader = stored(session, "back@example.org")
    assert (reader.status, reader.paused_at) == (SubscriberStatus.CONFIRMED, None)
    digest_service.prepare_deliveries(
        session, digest_date=date(2026, 12, 1), now=datetime(2026, 12, 1, 12, tzinfo=UTC)
    )
    deliveries = session.scalars(select(DigestDelivery).where(DigestDelivery.subscriber_id == reader.id))
    assert len(deliveries.all()) == 1, "the next digest goes out"


def test_a_manage_link_from_before_an_unsubscribe_stays_dead_after_subscribing_again(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    old = paused_then_left(client, inbox)
    new = confirmed_manage_page(client, sign_up(client, inbox, "back@example.org", "robots"))

    opened = client.get(old)
    pressed = client.post(old + "/resume", data={"csrf": csrf_token(get_settings(), "manage")})

    for response in (opened, pressed):
        assert response.status_code == 410
        assert "This manage link stopped working when the address unsubscribed" in response.text
        assert "set-cookie" not in response.headers
    assert client.get(new).status_code == 200, "the new subscription's own link opens the page"


def test_right_after_unsubscribing_the_old_link_says_the_address_has_left(
    client: TestClient, inbox: Inbox
) -> None:
    old = paused_then_left(client, inbox)

    response = client.get(old)

    assert response.status_code == 410
    assert "This address has unsubscribed" in response.text


def test_the_manage_link_in_a_new_confirmation_after_unsubscribing_asks_to_press_confirm(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    paused_then_left(client, inbox)
    confirm = sign_up(client, inbox, "back@example.org", "robots")
    manage = f"/manage/{link_token(inbox.messages[-1], 'manage')}"

    early = client.get(manage)

    assert early.status_code == 409
    assert "This address is not confirmed yet. Press Confirm in the email" in early.text
    assert "unsubscribed" not in early.text
    confirmed_manage_page(client, confirm)
    assert client.get(manage).status_code == 200
    assert stored(session, "back@example.org").status == SubscriberStatus.CONFIRMED


def test_once_the_new_confirmation_has_expired_the_link_says_the_address_has_left(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    paused_then_left(client, inbox)
    sign_up(client, inbox, "back@example.org", "robots")
    manage = f"/manage/{link_token(inbox.messages[-1], 'manage')}"
    session.execute(
        update(SubscriberToken)
        .where(SubscriberToken.purpose == "confirm")
        .values(created_at=SubscriberToken.created_at - service.CONFIRM_TOKEN_TTL)
    )
    session.commit()

    response = client.get(manage)

    assert response.status_code == 410
    assert "This address has unsubscribed" in response.text


# --- what a profile may hold --------------------------------------------------------------------


@pytest.mark.parametrize("categories", ["-", "--.-", "a-.-", "cs.-", "-cs"])
def test_dashes_are_not_an_arxiv_category(client: TestClient, session: Session, categories: str) -> None:
    page = manage_link(session)

    refused = post(client, page, "/profiles", name="dashes", categories=categories)

    assert refused.status_code == 422
    assert problem(refused, "new", "categories") == (
        f"“{categories}” is not an arXiv category (write them like cs.CL or stat.ML)."
    )
    assert profile_names(session) == [service.FIRST_PROFILE]


@pytest.mark.parametrize(
    "phrases",
    [
        "\u200b",
        "\u200b, \u2060\n\ufeff",
        "\u202e\u202c",
        "\x7f",
        "\u3164",
        "\u2800, \u034f",
        "\u0301\u0301, \u20dd",
    ],
)
def test_a_profile_of_invisible_phrases_is_refused_as_an_empty_one(
    client: TestClient, session: Session, phrases: str
) -> None:
    page = manage_link(session)

    invisible = post(client, page, "/profiles", name="ghost", phrases=phrases)
    empty = post(client, page, "/profiles", name="ghost", phrases="")

    assert invisible.status_code == empty.status_code == 422
    assert problem(invisible, "new", "phrases") == problem(empty, "new", "phrases")
    assert profile_names(session) == [service.FIRST_PROFILE]


def test_hidden_characters_are_dropped_from_phrases_and_repeats_are_one(
    client: TestClient, session: Session
) -> None:
    page = manage_link(session)

    saved = post(
        client, page, "/profiles", name="roads", phrases="\u202eStraße\u202c, STRASSE, sp\x7feech\u200b"
    )

    assert saved.status_code == 303
    session.expire_all()
    [_, roads] = repository.profiles(session, stored(session).id)
    assert roads.phrases == ["Straße", "speech"]


def test_an_invisible_sign_up_interest_counts_as_none(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    def asked(token: str) -> str:
        choices = re.search(r'<p id="choices">([^<]*)</p>', client.get(f"/confirm/{token}").text)
        assert choices, "the confirm page says what it confirms"
        return choices.group(1)

    def mailed(email: str) -> str:
        body = inbox.to(email)[-1].get_body(preferencelist=("plain",))
        assert body is not None
        return re.sub(r"http://testserver/\S+", "LINK", body.get_content()).replace(email, "X")

    invisible = sign_up(client, inbox, "ghost@example.org", "\u200b, \u202e\u202c\n\x7f")
    empty = sign_up(client, inbox, "plain@example.org", "")

    assert asked(invisible) == asked(empty) == "You asked for a daily digest."
    assert mailed("ghost@example.org") == mailed("plain@example.org")
    confirmed_manage_page(client, invisible)
    assert profile_names(session, "ghost@example.org") == [], "no profile of invisible phrases"


def test_a_browser_marked_before_an_unsubscribe_votes_only_after_the_new_manage_page_marks_it(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    make_paper(session, id="2601.99999", title="A paper to vote on")
    session.commit()
    paused_then_left(client, inbox)  # its manage page marked this browser for that subscription
    assert client.cookies.get(COOKIE_NAME)
    new = confirmed_manage_page(client, sign_up(client, inbox, "back@example.org", "robots"))
    [profile] = session.scalars(select(InterestProfile)).all()
    ballot = {"vote": "1", "profile": str(profile.id), "csrf": csrf_token(get_settings(), VOTE_FORM)}

    old_page = client.get("/papers/2601.99999")
    old_vote = client.post("/papers/2601.99999/vote", data=ballot)

    assert 'name="vote"' not in old_page.text, "no buttons for the old subscription's cookie"
    assert old_vote.status_code == 403
    assert session.scalar(select(func.count()).select_from(PaperVote)) == 0
    client.get(new)  # the new subscription's page marks the browser again
    assert client.post("/papers/2601.99999/vote", data=ballot).status_code == 200
    assert session.scalar(select(func.count()).select_from(PaperVote)) == 1


@pytest.mark.parametrize("profile_id", ["0", "-1", str(2**63), "9" * 30])
def test_a_profile_id_no_row_can_have_is_refused_as_input(
    client: TestClient, session: Session, profile_id: str
) -> None:
    page = manage_link(session)

    for action in (f"/profiles/{profile_id}", f"/profiles/{profile_id}/delete", f"/profiles/{profile_id}/up"):
        response = post(client, page, action, name="mine", phrases="x")
        assert response.status_code == 422, (action, response.status_code)
    assert profile_names(session, "reader@example.org") == [service.FIRST_PROFILE]


def test_pages_behind_a_mailed_link_are_kept_by_no_cache(client: TestClient, inbox: Inbox) -> None:
    confirm = sign_up(client, inbox, "private@example.org", "robots")
    pages = {
        "confirm page": client.get(f"/confirm/{confirm}"),
        "confirmed page": client.post(
            f"/confirm/{confirm}", data={"csrf": csrf_from(client.get(f"/confirm/{confirm}").text)}
        ),
        "unknown unsubscribe link": client.get(f"/unsubscribe/{'t' * 43}"),  # a 404 is kept by none either
        "unknown vote link": client.get("/vote/not-a-signed-link/1/more"),
        "unknown view link": client.get("/digest/not-a-signed-link"),
    }
    pages["manage page"] = client.get(
        confirmed_manage_page(client, sign_up(client, inbox, "private2@example.org"))
    )

    for name, response in pages.items():
        assert response.headers["cache-control"] in ("no-store", "private, no-store"), name
    assert pages["manage page"].status_code == 200
    assert "private2@example.org" in pages["manage page"].text
