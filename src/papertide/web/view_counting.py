"""Which page loads count as a view, and who the visitor is, without storing an address.

Views feed trending (local attention), so they must not be inflated by reloads, crawlers or a
browser fetching a link before anyone clicked it (issue 11). A view counts once per visitor per
paper per day; the visitor is a keyed hash of the client's address and user agent, under a key
derived from the secret key and the day: it changes at midnight UTC, so a stored hash cannot be
tied to an address, nor to the same reader on another day.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, date, datetime

from fastapi import Request

from papertide.config import Settings
from papertide.web.deps import client_address

# Crawlers, link previewers and monitors name themselves in the User-Agent (Googlebot, bingbot,
# Slurp, facebookexternalhit, Slackbot-LinkExpanding, Twitterbot, Discordbot, WhatsApp, ...).
AUTOMATED_AGENT = re.compile(
    r"bot|crawl|spider|slurp|facebookexternalhit|preview|fetch|scrape|monitor|headless"
    r"|whatsapp|embedly|python-requests|curl|wget|httpx|go-http-client|java/|libwww",
    re.IGNORECASE,
)
# What browsers send when they load a page that nobody has opened yet: Chrome's prefetch and
# prerender (Sec-Purpose, https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-Purpose),
# older Chrome and Safari (Purpose), Firefox (X-Moz) and Safari's top sites (X-Purpose).
PREFETCH_HEADERS = ("sec-purpose", "purpose", "x-moz", "x-purpose")
PREFETCH_VALUE = re.compile(r"prefetch|prerender|preview", re.IGNORECASE)
VISITOR_BYTES = 16


def today() -> date:
    """The day views are counted in (UTC), and the day the visitor key belongs to."""
    return datetime.now(UTC).date()


def counts_as_view(request: Request) -> bool:
    """A GET by a browser a person opened: not HEAD, not a crawler, not a prefetch."""
    if request.method != "GET":
        return False
    agent = request.headers.get("user-agent", "")
    if not agent or AUTOMATED_AGENT.search(agent):
        return False
    return not any(PREFETCH_VALUE.search(request.headers.get(name, "")) for name in PREFETCH_HEADERS)


def visitor(request: Request, settings: Settings, *, day: date) -> bytes:
    """The visitor on `day`: a keyed hash of the client's address (as deps.client_address finds it,
    behind a trusted proxy too) and user agent; the key changes every day."""
    key = hmac.new(settings.resolved_secret_key().encode(), f"views {day.isoformat()}".encode(), "sha256")
    who = f"{client_address(request, settings)}\n{request.headers.get('user-agent', '')}"
    return hmac.new(key.digest(), who.encode(), hashlib.sha256).digest()[:VISITOR_BYTES]
