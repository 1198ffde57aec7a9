"""Subscribe (double opt-in), confirm by POST, unsubscribe (page, form and RFC 8058 one-click)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from papertide.digests.mailer import Mailer, MailError
from papertide.digests.render import confirmation_message
from papertide.models import TokenPurpose
from papertide.subscribers import service as subscriber_service
from papertide.web.deps import SessionDep, SettingsDep, check_csrf, csrf_token, templates

log = logging.getLogger(__name__)
router = APIRouter()
NOT_FOUND = "This link is not valid any more. It may have expired or been replaced by a newer email."


def _form_context(settings: SettingsDep, **values: object) -> dict[str, object]:
    defaults = {"email": "", "interests": "", "frequency": "daily", "error": None}
    return {**defaults, **values, "csrf_token": csrf_token(settings, "subscribe")}


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(request: Request, settings: SettingsDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "pages/subscribe.html", _form_context(settings))


@router.post("/subscribe", response_class=HTMLResponse)
def subscribe(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    interests: Annotated[str, Form(max_length=2000)] = "",
    frequency: Annotated[str, Form(max_length=16)] = "daily",
    csrf: Annotated[str | None, Form(max_length=500)] = None,
) -> HTMLResponse:
    check_csrf(settings, csrf, "subscribe")
    client = request.client.host if request.client else "unknown"
    if not request.app.state.subscribe_limiter.allow(client):
        raise HTTPException(
            status_code=429, detail="Too many sign-ups from your address. Please try again in an hour."
        )
    try:
        outcome = subscriber_service.subscribe(
            session,
            email=email,
            interests=interests,
            frequency=frequency,
            defaults=subscriber_service.DigestDefaults.from_settings(settings),
        )
    except subscriber_service.SubscriptionError as error:
        context = _form_context(
            settings, email=email, interests=interests, frequency=frequency, error=str(error)
        )
        return templates.TemplateResponse(request, "pages/subscribe.html", context, status_code=422)
    if outcome.confirm_token:
        _send_confirmation(request.app.state.mailer, settings, outcome)
    # The same page whether or not the address was already subscribed: nothing leaks who is on the list.
    return templates.TemplateResponse(
        request, "pages/subscribe_sent.html", {"email": outcome.subscriber.email}
    )


def _send_confirmation(
    mailer: Mailer, settings: SettingsDep, outcome: subscriber_service.SubscribeOutcome
) -> None:
    message = confirmation_message(
        sender=settings.mail_from,
        to=outcome.subscriber.email,
        confirm_url=f"{settings.base_url}/confirm/{outcome.confirm_token}",
        interests=outcome.subscriber.interests,
        frequency=outcome.subscriber.frequency,
    )
    try:
        mailer.send(message)
    except MailError as error:
        log.error("confirmation email failed: %s", error)
        raise HTTPException(
            status_code=503,
            detail="We could not send the confirmation email just now. Please try again later.",
        ) from error


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, session: SessionDep, settings: SettingsDep, token: str) -> HTMLResponse:
    """Shows a button; a GET (a mail scanner following the link) confirms nothing."""
    subscriber = subscriber_service.find_by_token(session, token, TokenPurpose.CONFIRM)
    if subscriber is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    context = {"email": subscriber.email, "token": token, "csrf_token": csrf_token(settings, "confirm")}
    return templates.TemplateResponse(request, "pages/confirm.html", context)


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: str,
    csrf: Annotated[str | None, Form(max_length=500)] = None,
) -> HTMLResponse:
    check_csrf(settings, csrf, "confirm")
    subscriber = subscriber_service.confirm(session, token)
    if subscriber is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return templates.TemplateResponse(request, "pages/confirmed.html", {"subscriber": subscriber})


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, session: SessionDep, token: str) -> HTMLResponse:
    """Shows a button; the GET itself changes nothing."""
    subscriber = subscriber_service.find_by_token(session, token, TokenPurpose.UNSUBSCRIBE)
    if subscriber is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return templates.TemplateResponse(
        request, "pages/unsubscribe.html", {"email": subscriber.email, "token": token}
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, session: SessionDep, token: str) -> HTMLResponse:
    """The page's button and the RFC 8058 one-click POST (`List-Unsubscribe=One-Click`) both land here.

    No CSRF token: mail clients send the one-click POST without one, and the unguessable token in
    the path is itself the proof that the request comes from the mailbox owner.
    """
    subscriber = subscriber_service.unsubscribe(session, token)
    if subscriber is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return templates.TemplateResponse(request, "pages/unsubscribed.html", {"email": subscriber.email})
