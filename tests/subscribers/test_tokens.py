"""Links in emails: each works once, confirms only the sign-up it was sent for, and says why when spent."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from papertide import db
from papertide.config import get_settings
from papertide.models import Frequency, InterestProfile, SubscriberStatus, SubscriberToken, TokenPurpose
from papertide.subscribers import repository, service
from papertide.web.deps import csrf_token
from tests.helpers import Inbox, csrf_from, link_token, subscriber_by_email, wait_for_lock_waiters


@pytest.fixture
def client(mail_client: TestClient) -> TestClient:
    return mail_client


def sign_up(
    client: TestClient, inbox: Inbox, email: str, interests: str = "", frequency: str = "daily"
) -> str:
    """The form's POST; returns the token of the confirmation email it sent."""
    before = len(inbox.messages)
    form = client.get("/subscribe")
    data = {"email": email, "interests": interests, "frequency": frequency, "csrf": csrf_from(form.text)}
    assert client.post("/subscribe", data=data).status_code == 200
    assert len(inbox.messages) == before + 1, "one confirmation email"
    return link_token(inbox.messages[-1], "confirm")


def press_confirm(client: TestClient, token: str) -> tuple[int, str]:
    """What pressing the button on the confirm page answers (the page's CSRF token, or a fresh one)."""
    page = client.get(f"/confirm/{token}")
    csrf = csrf_from(page.text) if page.status_code == 200 else _fresh_confirm_csrf()
    response = client.post(f"/confirm/{token}", data={"csrf": csrf})
    return response.status_code, response.text


def _fresh_confirm_csrf() -> str:
    return csrf_token(get_settings(), "confirm")


def choices(session: Session, email: str) -> tuple[str, list[str], str]:
    """Status, the phrases of the profile a sign-up's interests become, and the frequency."""
    stored = subscriber_by_email(session, email)
    profiles = repository.profiles(session, stored.id)
    phrases = [p.phrases for p in profiles if p.name == service.FIRST_PROFILE]
    return stored.status, list(phrases[0]) if phrases else [], stored.frequency


def test_the_confirmation_email_counts_the_interests_and_only_the_confirm_page_shows_them(
    client: TestClient, inbox: Inbox
) -> None:
    """Anyone can fill in the form with any address: the email would carry a stranger's words (a
    link, "your mailbox will be closed") from this site to that inbox. Only the page the link
    opens, which the inbox's owner alone reaches, shows them."""
    lure = "URGENT your mailbox closes today keep it at https://evil.example/login"

    token = sign_up(client, inbox, "victim@example.org", f"{lure}, speech synthesis")

    message = inbox.messages[-1]
    for part in ("plain", "html"):
        body = message.get_body(preferencelist=(part,)).get_content()  # type: ignore[union-attr]
        assert "evil.example" not in body
        assert "speech synthesis" not in body
        assert "With 2 interests: the confirm page shows them." in body
    assert lure in client.get(f"/confirm/{token}").text

    sign_up(client, inbox, "one@example.org", "speech synthesis")
    one = inbox.messages[-1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "With 1 interest: the confirm page shows it." in one


def test_a_used_confirm_link_cannot_be_replayed(client: TestClient, inbox: Inbox) -> None:
    token = sign_up(client, inbox, "once@example.org")
    assert press_confirm(client, token)[0] == 200

    replay = client.post(f"/confirm/{token}", data={"csrf": _fresh_confirm_csrf()})
    page = client.get(f"/confirm/{token}")

    for response in (replay, page):
        assert response.status_code == 410
        assert "This confirmation link has already been used" in response.text
        assert 'action="/confirm/' not in response.text
        assert "You're subscribed" not in response.text


def test_an_old_link_confirms_only_the_choices_it_was_sent_for(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    owners = sign_up(client, inbox, "victim@example.org", "speech synthesis", "weekly")
    sign_up(client, inbox, "victim@example.org", "crypto scams", "daily")  # someone else, later

    page = client.get(f"/confirm/{owners}")
    assert "You asked for a weekly digest, favouring: speech synthesis." in page.text
    assert press_confirm(client, owners)[0] == 200

    assert choices(session, "victim@example.org") == ("confirmed", ["speech synthesis"], "weekly")
    session.expire_all()
    assert subscriber_by_email(session, "victim@example.org").send_days == [1], (
        "weekly: Mondays, not every day"
    )


def test_once_an_address_is_confirmed_no_other_link_of_its_sign_ups_confirms_not_even_a_newer_one(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    owners = sign_up(client, inbox, "victim@example.org", "speech synthesis", "weekly")
    strangers = sign_up(client, inbox, "victim@example.org", "crypto scams", "daily")  # later, anyone
    assert press_confirm(client, owners)[0] == 200

    page = client.get(f"/confirm/{strangers}")
    pressed = client.post(f"/confirm/{strangers}", data={"csrf": _fresh_confirm_csrf()})

    for response in (page, pressed):
        assert response.status_code == 410
        assert "another link for this address was confirmed" in response.text
        assert 'action="/confirm/' not in response.text, "no button that would start anything"
        assert "crypto scams" not in response.text
    assert choices(session, "victim@example.org") == ("confirmed", ["speech synthesis"], "weekly")


def test_a_pending_address_keeps_its_stored_choices_until_a_link_is_confirmed(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    first = sign_up(client, inbox, "pending@example.org", "agents", "weekly")
    stored = choices(session, "pending@example.org")
    second = sign_up(client, inbox, "pending@example.org", "crypto scams", "daily")

    assert choices(session, "pending@example.org") == stored
    assert stored[0] == SubscriberStatus.PENDING
    assert press_confirm(client, second)[0] == 200
    assert choices(session, "pending@example.org") == ("confirmed", ["crypto scams"], "daily")
    # The earlier link would switch the choices back: confirming a newer one retired it.
    assert press_confirm(client, first)[0] == 410
    assert choices(session, "pending@example.org") == ("confirmed", ["crypto scams"], "daily")


def test_signing_up_an_unsubscribed_address_again_changes_nothing_until_confirmed(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    token = sign_up(client, inbox, "left@example.org", "speech synthesis", "weekly")
    press_confirm(client, token)
    subscriber = subscriber_by_email(session, "left@example.org")
    leave = service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    older = service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)  # an earlier digest's link
    session.commit()
    assert client.post(f"/unsubscribe/{leave}").status_code == 200

    again = sign_up(client, inbox, "left@example.org", "crypto scams", "daily")
    assert choices(session, "left@example.org") == ("unsubscribed", ["speech synthesis"], "weekly")

    assert press_confirm(client, again)[0] == 200
    assert choices(session, "left@example.org") == ("confirmed", ["crypto scams"], "daily")
    # An old digest's unsubscribe link (a forward, a shared inbox) cannot end the new subscription.
    assert client.post(f"/unsubscribe/{older}").status_code == 410
    assert choices(session, "left@example.org") == ("confirmed", ["crypto scams"], "daily")


def test_new_interests_from_signing_up_again_replace_my_interests_whatever_its_case_and_retrain_it(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    """A reader who left and comes back with other interests: their first profile (renamed "my
    interests" meanwhile) takes the new phrases, no second one appears, and the model it learned
    from the old phrases is marked for training again, so the next digest ranks by the new ones."""
    press_confirm(client, sign_up(client, inbox, "back@example.org", "speech synthesis"))
    subscriber = subscriber_by_email(session, "back@example.org")
    session.execute(
        update(InterestProfile)
        .where(InterestProfile.subscriber_id == subscriber.id)
        .values(name="my interests", model={"trained": "on speech synthesis"}, model_stale=False)
    )
    leave = service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    session.commit()
    assert client.post(f"/unsubscribe/{leave}").status_code == 200

    assert press_confirm(client, sign_up(client, inbox, "back@example.org", "crypto scams"))[0] == 200

    session.expire_all()
    (profile,) = repository.profiles(session, subscriber.id)
    assert (profile.name, list(profile.phrases)) == ("my interests", ["crypto scams"])
    assert profile.model_stale


def test_a_confirmation_waiting_in_the_mailbox_dies_with_an_unsubscribe(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    first = sign_up(client, inbox, "both@example.org", "agents")
    waiting = sign_up(client, inbox, "both@example.org", "agents, speech")
    press_confirm(client, first)
    subscriber = subscriber_by_email(session, "both@example.org")
    leave = service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    session.commit()
    client.post(f"/unsubscribe/{leave}")

    assert press_confirm(client, waiting)[0] == 410
    assert choices(session, "both@example.org")[0] == SubscriberStatus.UNSUBSCRIBED


def test_a_confirmed_address_that_signs_up_again_keeps_its_choices_and_is_mailed_a_manage_link(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    press_confirm(client, sign_up(client, inbox, "kept@example.org", "agents", "weekly"))
    form = client.get("/subscribe")
    data = {
        "email": "kept@example.org",
        "interests": "crypto",
        "frequency": "daily",
        "csrf": csrf_from(form.text),
    }

    response = client.post("/subscribe", data=data)

    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert len(inbox.messages) == 2
    assert inbox.messages[-1]["Subject"] == "Manage your papertide digest"
    assert "/confirm/" not in inbox.messages[-1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    page = client.get(f"/manage/{link_token(inbox.messages[-1], 'manage')}")
    assert page.status_code == 200
    assert "Manage your digest" in page.text
    assert choices(session, "kept@example.org") == ("confirmed", ["agents"], "weekly")


def test_an_expired_confirm_link_says_so_and_shows_no_button(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    token = sign_up(client, inbox, "late@example.org", "agents")
    session.execute(
        update(SubscriberToken).values(created_at=SubscriberToken.created_at - service.CONFIRM_TOKEN_TTL)
    )
    session.commit()

    page = client.get(f"/confirm/{token}")
    pressed = client.post(f"/confirm/{token}", data={"csrf": _fresh_confirm_csrf()})

    for response in (page, pressed):
        assert response.status_code == 410
        assert "This confirmation link has expired (links work for 7 days)" in response.text
        assert 'action="/confirm/' not in response.text
    assert choices(session, "late@example.org")[0] == SubscriberStatus.PENDING


def test_a_one_click_unsubscribe_sent_twice_is_answered_ok_both_times(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    press_confirm(client, sign_up(client, inbox, "twice@example.org"))
    subscriber = subscriber_by_email(session, "twice@example.org")
    leave = service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    session.commit()
    one_click = {"data": {"List-Unsubscribe": "One-Click"}}

    first = client.post(f"/unsubscribe/{leave}", **one_click)  # type: ignore[arg-type]
    again = client.post(f"/unsubscribe/{leave}", **one_click)  # type: ignore[arg-type]

    assert (first.status_code, again.status_code) == (200, 200), "a provider's retry is not an error"
    assert "twice@example.org" in again.text
    assert choices(session, "twice@example.org")[0] == SubscriberStatus.UNSUBSCRIBED


def test_a_one_click_unsubscribe_sent_as_multipart_form_data_unsubscribes(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    """RFC 8058: a mail provider SHOULD send its one-click POST as multipart/form-data (MAY as
    urlencoded). Every other form here refuses multipart (a 415); this one reads no body at all."""
    press_confirm(client, sign_up(client, inbox, "multi@example.org"))
    subscriber = subscriber_by_email(session, "multi@example.org")
    leave = service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    session.commit()

    one_click = client.post(f"/unsubscribe/{leave}", files={"List-Unsubscribe": (None, b"One-Click")})

    assert one_click.status_code == 200
    assert "multi@example.org" in one_click.text
    assert choices(session, "multi@example.org")[0] == SubscriberStatus.UNSUBSCRIBED
    elsewhere = client.post("/subscribe", files={"email": (None, b"multi@example.org")})
    assert elsewhere.status_code == 415, "no other route takes multipart"


def test_no_old_digests_unsubscribe_link_ends_a_later_subscription(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    press_confirm(client, sign_up(client, inbox, "again@example.org"))
    subscriber = subscriber_by_email(session, "again@example.org")
    first, second = (service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE) for _ in range(2))
    session.commit()  # two digests, each with its own link
    assert client.post(f"/unsubscribe/{second}").status_code == 200
    assert client.post(f"/unsubscribe/{first}").status_code == 200, "already unsubscribed: fine"
    press_confirm(client, sign_up(client, inbox, "again@example.org"))  # back again

    replay = client.post(f"/unsubscribe/{first}", data={"List-Unsubscribe": "One-Click"})

    assert replay.status_code == 410
    assert choices(session, "again@example.org")[0] == SubscriberStatus.CONFIRMED


def test_a_used_unsubscribe_link_says_so_and_shows_no_button(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    press_confirm(client, sign_up(client, inbox, "bye@example.org"))
    subscriber = subscriber_by_email(session, "bye@example.org")
    leave = service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    session.commit()
    assert client.post(f"/unsubscribe/{leave}").status_code == 200
    press_confirm(client, sign_up(client, inbox, "bye@example.org"))  # back again, on purpose

    replay = client.post(f"/unsubscribe/{leave}")
    page = client.get(f"/unsubscribe/{leave}")

    for response in (replay, page):
        assert response.status_code == 410
        assert "This unsubscribe link has already been used" in response.text
        assert 'action="/unsubscribe/' not in response.text
    assert choices(session, "bye@example.org")[0] == SubscriberStatus.CONFIRMED


def test_a_sign_up_that_meets_an_unsubscribe_in_flight_waits_for_it_and_asks_to_confirm_again(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    token = sign_up(client, inbox, "leaving@example.org")
    assert press_confirm(client, token)[0] == 200
    subscriber_id = subscriber_by_email(session, "leaving@example.org").id
    session.rollback()
    outcomes: list[service.SubscribeOutcome] = []

    def sign_up_again() -> None:
        with db.unit_of_work() as other:
            outcomes.append(
                service.subscribe(other, email="leaving@example.org", interests="", frequency="daily")
            )

    with db.unit_of_work() as unsubscribing:  # an old digest's one-click unsubscribe, mid-commit
        leaving = repository.lock(unsubscribing, subscriber_id)
        assert leaving is not None
        thread = threading.Thread(target=sign_up_again)
        thread.start()
        wait_for_lock_waiters(1)
        service.stop(unsubscribing, subscriber=leaving, now=datetime.now(UTC))
    thread.join(timeout=30)

    [outcome] = outcomes
    assert outcome.subscriber.status == SubscriberStatus.UNSUBSCRIBED
    assert outcome.confirm_token is not None, "a confirmation, not a manage link for the ended subscription"
    assert outcome.manage_token is not None
    manage = client.get(f"/manage/{outcome.manage_token}")
    assert manage.status_code == 409, "the new link opens nothing until the address confirms again"
    assert "This address is not confirmed yet. Press Confirm in the email" in manage.text


def test_a_confirm_link_an_earlier_release_left_unused_beside_a_confirmed_address_confirms_nothing(
    client: TestClient, inbox: Inbox, session: Session
) -> None:
    """Before this release a confirm retired only the older links: a database can hold a newer
    one, unused, for an address confirmed since. It is spent like a used one."""
    owners = sign_up(client, inbox, "upgraded@example.org", "speech synthesis", "weekly")
    assert press_confirm(client, owners)[0] == 200
    subscriber = subscriber_by_email(session, "upgraded@example.org")
    left = service.new_token(
        session, subscriber, TokenPurpose.CONFIRM, interests=["crypto scams"], frequency=Frequency.DAILY
    )
    session.commit()

    page = client.get(f"/confirm/{left}")
    pressed = client.post(f"/confirm/{left}", data={"csrf": _fresh_confirm_csrf()})

    assert page.status_code == pressed.status_code == 410
    assert choices(session, "upgraded@example.org") == ("confirmed", ["speech synthesis"], "weekly")
