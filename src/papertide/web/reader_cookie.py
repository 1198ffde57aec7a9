"""The reader cookie: a manage link sets it, so the paper pages can offer this reader's votes.

It holds only the subscriber's id and when that subscription was confirmed, signed
(signing.LinkPurpose.READER) and expiring like the manage link itself; the confirmation time ties it
to one subscription, so a cookie from before an unsubscribe does not speak for a later one
(preferences.current_reader checks it); HttpOnly, because no script ever needs it, and SameSite=Lax, so another site
cannot post a vote with it (the vote form carries a CSRF token as well).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.signing import MAX_AGE_SECONDS, LinkPurpose, LinkState, sign, verify
from papertide.subscribers import preferences

COOKIE_NAME = "papertide_reader"
VOTE_FORM = "paper-vote"  # the CSRF form name of the paper page's vote buttons
MAX_AGE = MAX_AGE_SECONDS[LinkPurpose.READER]


@dataclass(frozen=True)
class ReaderCookie:
    subscriber_id: int
    subscribed: int  # the subscription's confirmation time, microseconds since the epoch


def set_reader(response: Response, settings: Settings, subscriber_id: int, *, subscribed: int) -> None:
    response.set_cookie(
        COOKIE_NAME,
        sign(settings.resolved_secret_key(), LinkPurpose.READER, {"s": subscriber_id, "c": subscribed}),
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
    )


def reader_cookie(request: Request, settings: Settings) -> ReaderCookie | None:
    """The subscription this browser was marked with, or None (no cookie, forged, expired, or one
    written before cookies named their subscription)."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    verified = verify(settings.resolved_secret_key(), LinkPurpose.READER, value)
    subscriber_id, subscribed = verified.payload.get("s"), verified.payload.get("c")
    if verified.state != LinkState.VALID or type(subscriber_id) is not int or type(subscribed) is not int:
        return None
    return ReaderCookie(subscriber_id, subscribed)


def reader_id(request: Request, settings: Settings, session: Session) -> int | None:
    """The subscriber this browser belongs to now: its cookie, written for their present
    subscription; None without one, or for a subscription since ended."""
    cookie = reader_cookie(request, settings)
    if cookie is None:
        return None
    return preferences.current_reader(
        session, subscriber_id=cookie.subscriber_id, subscribed=cookie.subscribed
    )
