"""/dev/outbox: the messages the embedded default wrote instead of sending (no SMTP configured)."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from papertide.digests.mailer import list_outbox
from papertide.web.deps import SettingsDep, templates

router = APIRouter(prefix="/dev")


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request, settings: SettingsDep) -> HTMLResponse:
    if settings.smtp_url:
        raise HTTPException(
            status_code=404, detail="The outbox is only kept when PAPERTIDE_SMTP_URL is unset."
        )
    messages = []
    for path in list_outbox(settings.outbox_dir)[:100]:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        body = message.get_body(preferencelist=("plain",))
        messages.append(
            {
                "name": path.name,
                "to": message["To"],
                "subject": message["Subject"],
                "date": path.stat().st_mtime,
                "text": body.get_content() if body else "",
            }
        )
    return templates.TemplateResponse(
        request, "pages/outbox.html", {"messages": messages, "directory": settings.outbox_dir}
    )
