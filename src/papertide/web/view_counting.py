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
from papertide.web.head import HEAD_AS_GET

# Crawlers, link previewers and monitors name themselves in the User-Agent (Googlebot, bingbot,
# Slurp, facebookexternalhit, Slackbot-LinkExpanding, Twitterbot, Discordbot, WhatsApp, ...).
# "bot" only as a word's end or before a slash (Googlebot, bingbot/2.0, Slackbot-...), not inside a
# word: the phone maker CUBOT names itself "CUBOT_X50" and its owners are readers.
AUTOMATED_AGENT = re.compile(
    r"(?<!cu)bot\b|bot/|bot-|bot_|crawl|spider|slurp|facebookexternalhit|preview|fetch|scrape|monitor|headless"
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
    """A GET by a browser a person opened: not HEAD, not a crawler, not a prefetch, and not a page
    another site loads behind its reader's back (an <img>, an <iframe>, a fetch())."""
    if request.method != "GET" or request.scope.get(HEAD_AS_GET):
        return False
    agent = request.headers.get("user-agent", "")
    if not agent or AUTOMATED_AGENT.search(agent):
        return False
    if any(PREFETCH_VALUE.search(request.headers.get(name, "")) for name in PREFETCH_HEADERS):
        return False
    # Browsers say what a request is for (Fetch Metadata, https://www.w3.org/TR/fetch-metadata/):
    # a page someone opened is a top-level `document` navigation. Without these headers (older
    # browsers) the request is taken at its word.
    destination = request.headers.get("sec-fetch-dest")
    mode = request.headers.get("sec-fetch-mode")
    return destination in (None, "document") and mode in (None, "navigate")


def visitor(request: Request, settings: Settings, *, day: date) -> tuple[bytes, bytes]:
    """The visitor on `day` and its address: keyed hashes of the client's address (as
    deps.client_address finds it, behind a trusted proxy too) with its user agent, and of the
    address alone; the key changes every day."""
    key = hmac.new(settings.resolved_secret_key().encode(), f"views {day.isoformat()}".encode(), "sha256")
    address = client_address(request, settings)
    who = f"{address}\n{request.headers.get('user-agent', '')}"
    return (
        hmac.new(key.digest(), who.encode(), hashlib.sha256).digest()[:VISITOR_BYTES],
        hmac.new(key.digest(), f"address {address}".encode(), hashlib.sha256).digest()[:VISITOR_BYTES],
    )
