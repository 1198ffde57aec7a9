"""/dev/outbox: the messages written instead of sent (no SMTP configured), for a browser on this machine only."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from papertide.digests.mailer import list_outbox
from papertide.web.deps import SettingsDep, browser_on_this_machine, templates

router = APIRouter(prefix="/dev")


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request, settings: SettingsDep) -> HTMLResponse:
    """Every confirm and unsubscribe link is in here, so only a browser on this machine may read it:
    the Docker image listens on 0.0.0.0, where anyone could otherwise confirm someone else's address.
    """
    if settings.smtp_url:
        raise HTTPException(
            status_code=404, detail="The outbox is only kept when PAPERTIDE_SMTP_URL is unset."
        )
    if not browser_on_this_machine(request, settings):
        raise HTTPException(
            status_code=404,
            detail="The outbox is only shown to a browser on the server itself (127.0.0.1 or ::1), "
            "never through a proxy, and only under this machine's own name (localhost, or the site's).",
        )
    messages = []
    for path in list_outbox(settings.outbox_dir)[:100]:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        messages.append(
            {
                "name": path.name,
                "to": message["To"],
                "subject": message["Subject"],
                "date": path.stat().st_mtime,
                "text": text.get_content() if text else "",
                # Links open in a tab of their own: the site's pages refuse to be framed.
                "html": '<base target="_blank">' + html.get_content() if html else "",
            }
        )
    return templates.TemplateResponse(
        request, "pages/outbox.html", {"messages": messages, "directory": settings.outbox_dir}
    )
