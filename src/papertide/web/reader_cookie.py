"""The reader cookie: a manage link sets it, so the paper pages can offer this reader's votes.

It holds only the subscriber's id, signed (signing.LinkPurpose.READER) and expiring like the
manage link itself; HttpOnly, because no script ever needs it, and SameSite=Lax, so another site
cannot post a vote with it (the vote form carries a CSRF token as well).
"""

from __future__ import annotations

from fastapi import Request, Response

from papertide.config import Settings
from papertide.signing import MAX_AGE_SECONDS, LinkPurpose, LinkState, sign, verify

COOKIE_NAME = "papertide_reader"
VOTE_FORM = "paper-vote"  # the CSRF form name of the paper page's vote buttons
MAX_AGE = MAX_AGE_SECONDS[LinkPurpose.READER]


def set_reader(response: Response, settings: Settings, subscriber_id: int) -> None:
    response.set_cookie(
        COOKIE_NAME,
        sign(settings.resolved_secret_key(), LinkPurpose.READER, {"s": subscriber_id}),
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
    )


def reader_id(request: Request, settings: Settings) -> int | None:
    """The subscriber this browser belongs to, or None (no cookie, forged, expired)."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    verified = verify(settings.resolved_secret_key(), LinkPurpose.READER, value)
    subscriber_id = verified.payload.get("s")
    if verified.state != LinkState.VALID or type(subscriber_id) is not int:
        return None
    return subscriber_id
