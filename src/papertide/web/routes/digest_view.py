"""View in browser: a digest's signed link shows the digest as it was sent."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from papertide.digests import service as digest_service
from papertide.signing import MAX_AGE_SECONDS, LinkPurpose, LinkState, verify
from papertide.subscribers import preferences
from papertide.web.deps import SessionDep, SettingsDep

router = APIRouter()
NOT_FOUND = "This digest link is not valid. Open the digest from your inbox instead."
OLD_SUBSCRIPTION = (
    "This link came with a digest of an earlier subscription of this address, so it shows nothing now."
)
# The email's HTML styles itself with style attributes and may carry a <style> element: both are
# allowed here, and nothing else is: no script of any kind, no plugins, no framing, no forms
# posting elsewhere. The rest of the site's headers (nosniff, ...) come from web/headers.py.
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@router.get("/digest/{signed}", response_class=HTMLResponse)
def view_in_browser(session: SessionDep, settings: SettingsDep, signed: str) -> HTMLResponse:
    verified = verify(settings.resolved_secret_key(), LinkPurpose.VIEW, signed)
    if verified.state == LinkState.EXPIRED:
        days = MAX_AGE_SECONDS[LinkPurpose.VIEW] // 86400
        raise HTTPException(
            status_code=410, detail=f"This digest link has expired (they work for {days} days)."
        )
    # "r": whose subscription it went to; a link sent before view links named their reader has
    # none, and is shown as before for the 90 days it lives.
    delivery_id, key = verified.payload.get("d"), verified.payload.get("r")
    if verified.state != LinkState.VALID or type(delivery_id) is not int or not isinstance(key, str | None):
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    viewed = digest_service.view_html(session, delivery_id=delivery_id, settings=settings)
    if viewed is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if key is not None and not preferences.same_reader(key, viewed.reader_key):
        # Sent to an earlier subscription of the address (or, after a restore from a backup, the id
        # is another reader's digest now): as the digest's vote links answer (routes/votes.py).
        raise HTTPException(status_code=410, detail=OLD_SUBSCRIPTION)
    headers = {
        "content-security-policy": EMAIL_POLICY,
        # A copy of someone's mail: not for search engines or shared caches.
        "x-robots-tag": "noindex",
        "cache-control": "private, no-store",
    }
    return HTMLResponse(viewed.html, headers=headers)
