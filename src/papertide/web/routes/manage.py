"""The manage page behind a magic link: interest profiles, digest size, schedule, pause, unsubscribe.

The link's token (TokenPurpose.MANAGE) is the reader's only credential: no password, no account.
A GET shows the page and changes none of the reader's choices (it only proves the link's email
arrived, which lifts a suppression recorded before the link was made); every change is a POST with
the page's CSRF token that answers 303 back to the page with a short notice, or the page again
(422) with the problem named next to its field and nothing saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from papertide.digests import service as digest_service
from papertide.models import Subscriber, SubscriberStatus, TokenPurpose
from papertide.subscribers import preferences
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers import service as subscriber_service
from papertide.subscribers.preferences import FieldError, UnknownProfile
from papertide.subscribers.service import LinkState
from papertide.web import feeds
from papertide.web.deps import SessionDep, SettingsDep, check_csrf, csrf_token, templates
from papertide.web.reader_cookie import reader_id, set_reader

router = APIRouter(prefix="/manage/{token}")
FORM = "manage"  # one CSRF token for every form on the page
NOT_FOUND = (
    "This manage link is not valid, or so old that it has been deleted. Use the “Manage your digest”"
    " link in your newest digest, or fill in the subscribe form with your address to get one by email."
)
UNSUBSCRIBED = (
    "This address has unsubscribed, so there is no digest to manage. Subscribe again to start a new one."
)
RETIRED = (
    "This manage link stopped working when the address unsubscribed, so nothing was changed. "
    "Use the “Manage your digest” link in your newest digest, or the one on the page that confirmed "
    "your new subscription."
)
ProfileId = Annotated[int, Path(ge=1, le=2**63 - 1)]
CsrfField = Annotated[str | None, Form(max_length=500)]
# The notice a redirect back to the page shows; only these fixed texts, never text from the URL.
SAVED = {
    "profile-added": "Saved: the new profile gets its own section from the next digest.",
    "profile": "Saved: the profile is updated.",
    "profile-deleted": "Saved: the profile and its section are gone.",
    "order": "Saved: the sections are in the new order.",
    "digest": "Saved: the next digest has the new size and mix.",
    "schedule": "Saved: the digest arrives on the new schedule.",
    "paused": "Paused: no digest is sent until you resume.",
    "resumed": "Resumed: the digest arrives on your schedule again.",
    "this-browser": "Saved: votes on paper pages in this browser now go to your profiles.",
}


def _subscriber(session: Session, token: str, *, lock: bool) -> Subscriber:
    link = subscriber_service.read_link(session, token, TokenPurpose.MANAGE, lock=lock)
    if link is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    subscriber = link.subscriber
    if link.state == LinkState.USED and subscriber.status == SubscriberStatus.CONFIRMED:
        # A manage link is used up only by an unsubscribe: this one belongs to a subscription
        # that ended, and a new one comes with its own links.
        raise HTTPException(status_code=410, detail=RETIRED)
    if link.state == LinkState.USED:
        raise HTTPException(status_code=410, detail=UNSUBSCRIBED)
    if link.state != LinkState.VALID:
        days = subscriber_service.MANAGE_TOKEN_TTL.days
        raise HTTPException(
            status_code=410,
            detail=f"This manage link has expired (links work for {days} days), so nothing was changed. "
            "Every digest carries a fresh one, or fill in the subscribe form with your address to get one by email.",
        )
    # An address that unsubscribed and has just signed up again is, like a new one, waiting for
    # its Confirm button: that is the next step to tell it, not that it has left.
    if subscriber.status == SubscriberStatus.PENDING or (
        subscriber.status == SubscriberStatus.UNSUBSCRIBED
        and subscriber_service.awaits_confirmation(session, subscriber=subscriber)
    ):
        raise HTTPException(
            status_code=409,
            detail="This address is not confirmed yet. Press Confirm in the email this link came with; "
            "then this link opens your preferences.",
        )
    if subscriber.status != SubscriberStatus.CONFIRMED:
        raise HTTPException(status_code=410, detail=UNSUBSCRIBED)
    digest_service.mail_reached(session, subscriber=subscriber, link_made_at=link.token.created_at)
    return subscriber


def reader(session: SessionDep, token: str) -> Subscriber:
    """The subscriber behind the link, for showing the page."""
    return _subscriber(session, token, lock=False)


def locked_reader(
    request: Request, session: SessionDep, settings: SettingsDep, token: str, csrf: CsrfField = None
) -> Subscriber:
    """For a form that changes something: the page's CSRF token checked first, then the subscriber
    behind the link, its row locked, so two forms sent at once apply one by one."""
    check_csrf(request, settings, csrf, FORM)
    return _subscriber(session, token, lock=True)


ReaderDep = Annotated[Subscriber, Depends(reader)]
LockedReaderDep = Annotated[Subscriber, Depends(locked_reader)]


def _page(
    request: Request,
    session: Session,
    settings: SettingsDep,
    *,
    token: str,
    subscriber: Subscriber,
    status_code: int = 200,
    saved: str | None = None,
    form: str | None = None,
    error: FieldError | None = None,
    values: Mapping[str, object] | None = None,
    other_reader: bool = False,
) -> HTMLResponse:
    """The page; after a refused form, that form shows what was sent and the problem by its field.
    `other_reader`: this browser votes as another subscriber; the page offers to make it this one's."""
    profiles = subscriber_repository.profiles(session, subscriber.id)
    context = {
        "token": token,
        "subscriber": subscriber,
        "profiles": profiles,
        "feed_urls": feeds.profile_feed_urls(settings, subscriber, profiles),
        "csrf_token": csrf_token(settings, FORM),
        "saved": SAVED.get(saved or ""),
        "form": form,
        "errors": {error.field: str(error)} if error else {},
        "values": values or {},
        "max_profiles": preferences.MAX_PROFILES,
        "manage_days": subscriber_service.MANAGE_TOKEN_TTL.days,
        "zones": preferences.time_zone_names(),
        "day_names": preferences.DAY_NAMES,
        "other_reader": other_reader,
        "zone_clock": preferences.zone_clock(subscriber.time_zone, datetime.now(UTC)),
        "next_digest": digest_service.next_digest(session, subscriber, now=datetime.now(UTC)),
        "suppressed": digest_service.suppression(session, subscriber.email),
    }
    return templates.TemplateResponse(request, "pages/manage.html", context, status_code=status_code)


def _refused(
    request: Request,
    session: Session,
    settings: SettingsDep,
    *,
    token: str,
    form: str,
    error: FieldError,
    values: Mapping[str, object],
) -> HTMLResponse:
    # Nothing of a refused form is kept, even a step the service took before it found the problem.
    session.rollback()
    subscriber = _subscriber(session, token, lock=False)
    return _page(
        request,
        session,
        settings,
        token=token,
        subscriber=subscriber,
        status_code=422,
        form=form,
        error=error,
        values=values,
    )


def _back(token: str, saved: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/manage/{token}?saved={saved}#{anchor}", status_code=303)


@router.get("", response_class=HTMLResponse)
def manage_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    subscriber: ReaderDep,
    token: str,
    saved: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """The reader's choices; also remembers this browser as the reader's, for votes on paper pages,
    unless it is another subscriber's already. Then only a press of the page's button makes it this
    one's: a page elsewhere that opens someone else's manage link in this browser (a link from a
    webmail is a cross-site navigation too) must not quietly turn its votes to their profiles."""
    current = reader_id(request, settings, session)
    other_reader = current is not None and current != subscriber.id
    response = _page(
        request, session, settings, token=token, subscriber=subscriber, saved=saved, other_reader=other_reader
    )
    if not other_reader:
        set_reader(response, settings, subscriber.id, subscribed=preferences.subscription_stamp(subscriber))
    return response


@router.post("/this-browser")
def use_this_browser(subscriber: LockedReaderDep, settings: SettingsDep, token: str) -> Response:
    """Votes on paper pages in this browser go to this reader's profiles from now on."""
    response = _back(token, "this-browser", "saved")
    set_reader(response, settings, subscriber.id, subscribed=preferences.subscription_stamp(subscriber))
    return response


def _not_theirs(error: UnknownProfile) -> HTTPException:
    return HTTPException(status_code=404, detail=str(error))


@router.post("/profiles", response_class=HTMLResponse)
def add_profile(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    subscriber: LockedReaderDep,
    token: str,
    name: Annotated[str, Form(max_length=200)] = "",
    phrases: Annotated[str, Form(max_length=2000)] = "",
    categories: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        profile = preferences.add_profile(
            session, subscriber=subscriber, name=name, phrases=phrases, categories=categories
        )
    except FieldError as error:
        values = {"name": name, "phrases": phrases, "categories": categories}
        return _refused(request, session, settings, token=token, form="new", error=error, values=values)
    return _back(token, "profile-added", f"profile-{profile.id}")


@router.post("/profiles/{profile_id}", response_class=HTMLResponse)
def edit_profile(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    subscriber: LockedReaderDep,
    token: str,
    profile_id: ProfileId,
    name: Annotated[str, Form(max_length=200)] = "",
    phrases: Annotated[str, Form(max_length=2000)] = "",
    categories: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        preferences.edit_profile(
            session,
            subscriber=subscriber,
            profile_id=profile_id,
            name=name,
            phrases=phrases,
            categories=categories,
        )
    except UnknownProfile as error:
        raise _not_theirs(error) from None
    except FieldError as error:
        values = {"name": name, "phrases": phrases, "categories": categories}
        form = f"profile-{profile_id}"
        return _refused(request, session, settings, token=token, form=form, error=error, values=values)
    return _back(token, "profile", f"profile-{profile_id}")


@router.post("/profiles/{profile_id}/delete")
def delete_profile(
    session: SessionDep,
    subscriber: LockedReaderDep,
    token: str,
    profile_id: ProfileId,
) -> Response:
    try:
        preferences.delete_profile(session, subscriber=subscriber, profile_id=profile_id)
    except UnknownProfile as error:
        raise _not_theirs(error) from None
    return _back(token, "profile-deleted", "profiles")


@router.post("/profiles/{profile_id}/up")
def move_profile_up(
    session: SessionDep,
    subscriber: LockedReaderDep,
    token: str,
    profile_id: ProfileId,
) -> Response:
    try:
        preferences.move_profile_up(session, subscriber=subscriber, profile_id=profile_id)
    except UnknownProfile as error:
        raise _not_theirs(error) from None
    return _back(token, "order", f"profile-{profile_id}")


@router.post("/digest", response_class=HTMLResponse)
def set_digest_size(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    subscriber: LockedReaderDep,
    token: str,
    papers_per_section: Annotated[str, Form(max_length=16)] = "",
    trending_papers: Annotated[str, Form(max_length=16)] = "",
    interest_mix: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    try:
        preferences.set_digest_size(
            subscriber=subscriber,
            papers_per_section=papers_per_section,
            trending_papers=trending_papers,
            interest_mix=interest_mix,
        )
    except FieldError as error:
        values = {
            "papers_per_section": papers_per_section,
            "trending_papers": trending_papers,
            "interest_mix": interest_mix,
        }
        return _refused(request, session, settings, token=token, form="digest", error=error, values=values)
    return _back(token, "digest", "digest")


@router.post("/schedule", response_class=HTMLResponse)
def set_schedule(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    subscriber: LockedReaderDep,
    token: str,
    frequency: Annotated[str, Form(max_length=16)] = "",
    days: Annotated[list[str] | None, Form(max_length=8)] = None,
    weekly_day: Annotated[str, Form(max_length=8)] = "1",
    send_hour: Annotated[str, Form(max_length=8)] = "",
    time_zone: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        preferences.set_schedule(
            subscriber=subscriber,
            frequency=frequency,
            days=days or [],
            weekly_day=weekly_day,
            send_hour=send_hour,
            time_zone=time_zone,
        )
    except FieldError as error:
        values: dict[str, object] = {
            "frequency": frequency,
            "days": days or [],
            "weekly_day": weekly_day,
            "send_hour": send_hour,
            "time_zone": time_zone,
        }
        return _refused(request, session, settings, token=token, form="schedule", error=error, values=values)
    return _back(token, "schedule", "schedule")


@router.post("/pause")
def pause(subscriber: LockedReaderDep, token: str) -> Response:
    preferences.pause(subscriber=subscriber, now=datetime.now(UTC))
    return _back(token, "paused", "pause")


@router.post("/resume")
def resume(subscriber: LockedReaderDep, token: str) -> Response:
    preferences.resume(subscriber=subscriber, now=datetime.now(UTC))
    return _back(token, "resumed", "pause")


@router.post("/unsubscribe", response_class=HTMLResponse)
def unsubscribe(
    request: Request,
    session: SessionDep,
    subscriber: LockedReaderDep,
) -> HTMLResponse:
    subscriber_service.stop(session, subscriber=subscriber, now=datetime.now(UTC))
    return templates.TemplateResponse(request, "pages/unsubscribed.html", {"email": subscriber.email})
