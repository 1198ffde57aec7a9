"""Subscribe (double opt-in), confirm by POST, unsubscribe (page, form and RFC 8058 one-click).

An address confirmed already that fills in the form again is emailed a manage link instead.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from papertide.db import unit_of_work
from papertide.digests import service as digest_service
from papertide.digests.mailer import Mailer, MailError
from papertide.digests.render import confirmation_message, manage_link_message
from papertide.models import SubscriberStatus, TokenPurpose
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers import service as subscriber_service
from papertide.subscribers.service import LinkState
from papertide.web import feeds
from papertide.web.deps import (
    SessionDep,
    SettingsDep,
    browser_on_this_machine,
    check_csrf,
    client_address,
    csrf_token,
    saved_now,
    templates,
)

log = logging.getLogger(__name__)
router = APIRouter()
NOT_FOUND = (
    "This link is not valid any more. It may have expired or been replaced by a newer email:"
    " use the link in the newest one."
)


def _form_context(settings: SettingsDep, **values: object) -> dict[str, object]:
    defaults = {"email": "", "interests": "", "frequency": "daily", "error": None}
    return {**defaults, **values, "csrf_token": csrf_token(settings, "subscribe")}


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(request: Request, settings: SettingsDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "pages/subscribe.html", _form_context(settings))


@router.post("/subscribe", response_class=HTMLResponse)
def subscribe(
    request: Request,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    interests: Annotated[str, Form(max_length=2000)] = "",
    frequency: Annotated[str, Form(max_length=16)] = "daily",
    csrf: Annotated[str | None, Form(max_length=500)] = None,
) -> HTMLResponse:
    check_csrf(request, settings, csrf, "subscribe")
    if problem := settings.base_url_problem():
        # Its emails' links would lead nowhere (and use up one of the inbox's emails of the hour).
        log.error("sign-up refused: %s", problem)
        raise HTTPException(status_code=503, detail=NO_SITE_ADDRESS)
    _count_sign_up(request, settings)
    now = datetime.now(UTC)
    try:
        # Committed before the confirmation email goes out: the link in it works, and no
        # transaction (nor the new address's row lock) is held while the mail server answers.
        with saved_now() as session:
            outcome = subscriber_service.subscribe(
                session,
                email=email,
                interests=interests,
                frequency=frequency,
                defaults=subscriber_service.DigestDefaults.from_settings(settings),
                now=now,
            )
            # Written before the commit: an address the email cannot carry leaves nothing stored.
            message = _email_for(settings, outcome)
    except subscriber_service.SubscriptionError as error:
        context = _form_context(
            settings, email=email, interests=interests, frequency=frequency, error=str(error)
        )
        return templates.TemplateResponse(request, "pages/subscribe.html", context, status_code=422)
    if message is not None:
        try:
            _send(request.app.state.mailer, message)
        except HTTPException:
            # Not sent: it does not count against the address's sign-up emails of the hour.
            with unit_of_work() as session:
                subscriber_service.email_not_sent(session, email=outcome.subscriber.email, now=now)
            raise
    # The same page whether or not the address was already subscribed: nothing leaks who is on the list.
    # The local default has no mail server: a browser on this machine is told where the mail is.
    outbox = not settings.smtp_url and browser_on_this_machine(request, settings)
    return templates.TemplateResponse(
        request, "pages/subscribe_sent.html", {"email": outcome.subscriber.email, "outbox": outbox}
    )


ADDRESS_NEEDS_SMTPUTF8 = (
    "This site's mail server cannot deliver to an address with characters beyond ASCII before the @."
    " Please use another address."
)
NO_SITE_ADDRESS = (
    "Sign-ups are closed until this site's public address is configured. Please try again later."
)


def _count_sign_up(request: Request, settings: SettingsDep) -> None:
    """429 once this client has used up its sign-ups for the hour, counted for every web process."""
    # Its own short transaction: the count's row lock lasts one statement, not the whole sign-up
    # (which sends an email), so a client's requests never queue behind each other on it.
    with unit_of_work() as session:
        allowance = subscriber_service.allow_sign_up(
            session,
            client=client_address(request, settings),
            limit=settings.subscribe_rate_limit_per_hour,
            now=datetime.now(UTC),
        )
    if not allowance.allowed:
        raise HTTPException(
            status_code=429,
            detail="Too many sign-ups from your address. Please try again in an hour.",
            headers={"Retry-After": str(allowance.retry_after_seconds)},
        )


def _email_for(settings: SettingsDep, outcome: subscriber_service.SubscribeOutcome) -> EmailMessage | None:
    """The confirmation, or a confirmed address's manage link; None when no email goes out. An
    address the email's headers cannot carry is a SubscriptionError, as a malformed one is."""
    if not (outcome.confirm_token or outcome.manage_token):
        return None
    try:
        return _confirmation(settings, outcome) if outcome.confirm_token else _manage_link(settings, outcome)
    except ValueError as error:  # the email package refuses a header it cannot write safely
        raise subscriber_service.SubscriptionError(
            f"That email address cannot be written in an email's To line: {error}"
        ) from None


def _confirmation(settings: SettingsDep, outcome: subscriber_service.SubscribeOutcome) -> EmailMessage:
    return confirmation_message(
        sender=settings.mail_from,
        to=outcome.subscriber.email,
        confirm_url=f"{settings.base_url}/confirm/{outcome.confirm_token}",
        manage_url=f"{settings.base_url}/manage/{outcome.manage_token}",
        interests=outcome.interests,
        frequency=outcome.frequency,
    )


def _manage_link(settings: SettingsDep, outcome: subscriber_service.SubscribeOutcome) -> EmailMessage:
    """For an address that is confirmed already: its owner changes the digest on the manage page."""
    return manage_link_message(
        sender=settings.mail_from,
        to=outcome.subscriber.email,
        manage_url=f"{settings.base_url}/manage/{outcome.manage_token}",
        days=subscriber_service.MANAGE_TOKEN_TTL.days,
    )


def _send(mailer: Mailer, message: EmailMessage) -> None:
    try:
        mailer.send(message)
    except MailError as error:
        log.error("sign-up email failed: %s", error)
        if error.address_unsupported:
            # Not "try again later": that would never work. It says nothing about who is subscribed.
            raise HTTPException(status_code=422, detail=ADDRESS_NEEDS_SMTPUTF8) from error
        # The same words for a confirmation and a manage link: a failure must not tell who is subscribed.
        raise HTTPException(
            status_code=503,
            detail="We could not send the confirmation email just now. Please try again later.",
        ) from error


def _link_problem(link: subscriber_service.Link) -> str:
    """What a person is told about a link that can no longer be used."""
    if link.state == LinkState.EXPIRED:
        days = subscriber_service.CONFIRM_TOKEN_TTL.days
        return f"This confirmation link has expired (links work for {days} days), so nothing was changed."
    if link.token.purpose == TokenPurpose.UNSUBSCRIBE:
        return (
            "This unsubscribe link has already been used, so nothing was changed. "
            "If digests still arrive, use the link in the newest one."
        )
    return (
        "This confirmation link has already been used, or another link for this address was"
        " confirmed. Each link works once, so nothing was changed; a confirmed digest is changed from"
        " the \u201cManage your digest\u201d link in any digest."
    )


def _confirm_page(
    request: Request, settings: SettingsDep, token: str, link: subscriber_service.Link | None
) -> HTMLResponse:
    """The confirm page: the choices and a button for a valid link, 410 and why for a spent one."""
    if link is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if link.state != LinkState.VALID:
        context: dict[str, object] = {
            "problem": _link_problem(link),
            "expired": link.state == LinkState.EXPIRED,
        }
        return templates.TemplateResponse(request, "pages/confirm.html", context, status_code=410)
    context = {
        "email": link.subscriber.email,
        "interests": link.token.interests or [],
        "frequency": link.token.frequency,
        "token": token,
        "csrf_token": csrf_token(settings, "confirm"),
    }
    return templates.TemplateResponse(request, "pages/confirm.html", context)


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, session: SessionDep, settings: SettingsDep, token: str) -> HTMLResponse:
    """Shows what the link confirms and a button; a GET (a mail scanner following the link) confirms nothing."""
    link = subscriber_service.read_link(session, token, TokenPurpose.CONFIRM)
    return _confirm_page(request, settings, token, link)


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: str,
    csrf: Annotated[str | None, Form(max_length=500)] = None,
) -> HTMLResponse:
    check_csrf(request, settings, csrf, "confirm")
    link = subscriber_service.confirm(session, token)
    if link is None or link.state != LinkState.VALID:
        return _confirm_page(request, settings, token, link)
    digest_service.mail_reached(session, subscriber=link.subscriber, link_made_at=link.token.created_at)
    # The manage link appears only now: before the address is confirmed nobody may change its digest.
    profiles = subscriber_repository.profiles(session, link.subscriber.id)
    context = {
        "subscriber": link.subscriber,
        "profiles": profiles,
        "manage_url": f"/manage/{subscriber_service.new_manage_token(session, link.subscriber)}",
        "feed_urls": feeds.profile_feed_urls(settings, link.subscriber, profiles),
        "next_digest": digest_service.next_digest(session, link.subscriber, now=datetime.now(UTC)),
    }
    return templates.TemplateResponse(request, "pages/confirmed.html", context)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, session: SessionDep, token: str) -> HTMLResponse:
    """Shows a button; the GET itself changes nothing."""
    link = subscriber_service.read_link(session, token, TokenPurpose.UNSUBSCRIBE)
    if link is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if link.state != LinkState.VALID:
        return templates.TemplateResponse(
            request, "pages/unsubscribe.html", {"problem": _link_problem(link)}, status_code=410
        )
    return templates.TemplateResponse(
        request, "pages/unsubscribe.html", {"email": link.subscriber.email, "token": token}
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, session: SessionDep, token: str) -> HTMLResponse:
    """The page's button and the RFC 8058 one-click POST (`List-Unsubscribe=One-Click`) both land here.

    No CSRF token: mail clients send the one-click POST without one, and the unguessable token in
    the path is itself the proof that the request comes from the mailbox owner.
    """
    link = subscriber_service.unsubscribe(session, token)
    if link is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if link.state == LinkState.USED and link.subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        # A mail provider may send its one-click POST again (a retry, a second click): what it asks
        # for holds, so it is told so, not an error. Once the address has subscribed again, the old
        # link is spent (410 below) and cannot end the new subscription.
        return templates.TemplateResponse(
            request, "pages/unsubscribed.html", {"email": link.subscriber.email}
        )
    if link.state != LinkState.VALID:
        return templates.TemplateResponse(
            request, "pages/unsubscribe.html", {"problem": _link_problem(link)}, status_code=410
        )
    return templates.TemplateResponse(request, "pages/unsubscribed.html", {"email": link.subscriber.email})
