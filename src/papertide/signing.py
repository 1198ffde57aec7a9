"""Signed links in emails that need no stored row: a vote on one paper, the view-in-browser copy.

Each purpose has its own salt, so a link signed for one purpose never verifies as another, and
every link expires. The key is the site's SECRET_KEY (Settings.resolved_secret_key): rotating it
retires every outstanding signed link at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class LinkPurpose(StrEnum):
    VOTE = "vote"  # {"s": subscriber id, "p": profile id or None, "paper": paper id, "v": 1 | -1}
    # {"d": delivery id, "r": preferences.reader_key of the subscription it went to}: a vote on one
    # of that digest's items, its rank and direction in the path. One signature for a whole digest,
    # where a VOTE link is one per button.
    DIGEST_VOTE = "digest-vote"
    VIEW = "view"  # {"d": delivery id}
    READER = "reader"  # {"s": subscriber id}: the browser cookie a manage link sets


# How long a link from an email keeps working.
MAX_AGE_SECONDS = {
    LinkPurpose.VOTE: 90 * 24 * 3600,
    LinkPurpose.DIGEST_VOTE: 90 * 24 * 3600,
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


@lru_cache(maxsize=32)
def _signing_key(secret: str, purpose: LinkPurpose) -> bytes:
    return _serializer(secret, purpose).make_signer().derive_key()


def sign(secret: str, purpose: LinkPurpose, payload: dict[str, Any]) -> str:
    """The token URLSafeTimedSerializer.dumps makes (verify() reads it with that serializer), written
    here directly: a digest signs about twenty links, and dumps costs 25 µs a link (a key derived and
    a zlib attempt each time), this 5 µs. Our payloads are a few dozen bytes, which zlib never makes
    shorter, so the attempt is skipped; an uncompressed payload is a valid token either way."""
    body = _b64(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    value = body + b"." + _b64(int(time.time()).to_bytes(8, "big").lstrip(b"\x00"))
    signature = hmac.new(_signing_key(secret, purpose), value, hashlib.sha1).digest()
    return (value + b"." + _b64(signature)).decode("ascii")


def message_tag(secret: str, text: str) -> str:
    """16 lowercase letters and digits (80 bits) that only this site's key makes from `text`. A
    digest's Message-ID carries one (render.digest_message_id), and a delivery report must quote
    that id back to count (digests/reports.py): a report forged by someone who never saw the
    message, to suppress or unsubscribe somebody else's address, names no such id."""
    mac = hmac.new(_tag_key(secret), text.encode(), hashlib.sha256).digest()[:10]
    return base64.b32encode(mac).decode("ascii").lower()


@lru_cache(maxsize=8)
def _tag_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"papertide-message-id", hashlib.sha256).digest()


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


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
