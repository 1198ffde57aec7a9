"""Signed links in emails that need no stored row: a vote on one paper, the view-in-browser copy.

Each purpose has its own salt, so a link signed for one purpose never verifies as another, and
every link expires. The key is the site's SECRET_KEY (Settings.resolved_secret_key): rotating it
retires every outstanding signed link at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class LinkPurpose(StrEnum):
    VOTE = "vote"  # {"s": subscriber id, "p": profile id or None, "paper": paper id, "v": 1 | -1}
    VIEW = "view"  # {"d": delivery id}
    READER = "reader"  # {"s": subscriber id}: the browser cookie a manage link sets


# How long a link from an email keeps working.
MAX_AGE_SECONDS = {
    LinkPurpose.VOTE: 90 * 24 * 3600,
    LinkPurpose.VIEW: 90 * 24 * 3600,
    LinkPurpose.READER: 30 * 24 * 3600,
}


class LinkState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    FORGED = "forged"  # not signed by this site's key, or signed for another purpose


@dataclass(frozen=True)
class Verified:
    state: LinkState
    payload: dict[str, Any]


@lru_cache(maxsize=32)  # a digest signs a score of links: one serializer per key and purpose
def _serializer(secret: str, purpose: LinkPurpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"papertide-link-{purpose}")


def sign(secret: str, purpose: LinkPurpose, payload: dict[str, Any]) -> str:
    return _serializer(secret, purpose).dumps(payload)


def verify(secret: str, purpose: LinkPurpose, token: str, *, max_age: int | None = None) -> Verified:
    """The payload of a link signed for `purpose` and not older than its max age; never raises."""
    try:
        payload = _serializer(secret, purpose).loads(token, max_age=max_age or MAX_AGE_SECONDS[purpose])
    except SignatureExpired:
        return Verified(LinkState.EXPIRED, {})
    except BadSignature:
        return Verified(LinkState.FORGED, {})
    if not isinstance(payload, dict):
        return Verified(LinkState.FORGED, {})
    return Verified(LinkState.VALID, payload)
